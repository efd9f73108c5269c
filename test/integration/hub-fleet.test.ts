/**
 * Issue 11 (docs/fleet.md §4): writes checked against the schemas of the live consumers, over real sockets,
 * on PGlite and PostgreSQL. Consumers are simulated with hand-built reports and schema uploads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { answered, BATCH_SCHEMA, call, consumers, report, reportHeader, schemaUpload } from '../helpers/fleet-http.js';
import { dropSchema, STORE_KINDS, type StoreKind, startHub, uniqueService } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';

describe.each(STORE_KINDS)('hub fleet: writes checked against live consumers on %s', (kind: StoreKind) => {
  let hub: Hub;
  let base: string;
  let schema: string | undefined;

  beforeAll(async () => {
    const started = await startHub(kind, { seed: false });
    hub = started.hub;
    schema = started.schema;
    base = await hub.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await hub?.close();
    if (schema !== undefined) await dropSchema(schema);
    expect(answered.count).toBeGreaterThan(0);
  });

  /** Rows the service has in the audit log and the outbox. */
  const written = async (service: string) => {
    const [audit] = await hub.store.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM config_audit_log WHERE service_name = $1', [service]);
    const [outbox] = await hub.store.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM config_outbox WHERE service_name = $1', [service]);
    return { audit: audit!.n, outbox: outbox!.n };
  };

  /** A service at revision 1 with `{ operational: { batch_size: 10 } }` and three live consumers of BATCH_SCHEMA. */
  async function servedService(prefix: string) {
    const service = uniqueService(prefix);
    expect((await call(base, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 10 } } })).status).toBe(201);
    const upload = schemaUpload(BATCH_SCHEMA, [{ path: 'operational', kind: 'refinement' }]);
    await consumers(base, service, upload, ['c-1', 'c-2', 'c-3']);
    return { service, upload };
  }

  it('a write its live consumers would reject is refused with 422 naming the consumers, and nothing is written', async () => {
    const { service, upload } = await servedService('refuse');
    const before = await written(service);
    const refused = await call(base, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 0 } } });
    expect(refused.status).toBe(422);
    expect(refused.body).toEqual({
      detail: '1 consumer (3 instances) would reject this config',
      issues: [{ path: 'operational.batch_size', message: 'must be > 0', keyword: 'exclusiveMinimum' }],
      consumers: [
        {
          schema_hash: upload.hash,
          instances: 3,
          instance_ids: ['c-1', 'c-2', 'c-3'],
          issues: [{ path: 'operational.batch_size', message: 'must be > 0', keyword: 'exclusiveMinimum' }],
        },
      ],
      unchecked: [{ schema_hash: upload.hash, path: 'operational', kind: 'refinement' }],
      unknown_schemas: [],
    });
    // No row, no audit row, no outbox row: the value served is unchanged.
    expect(await written(service)).toEqual(before);
    const served = await call(base, 'GET', `${API}/${service}`);
    expect(served.body).toMatchObject({ revision: 1, config: { operational: { batch_size: 10 } } });
    // A config they accept goes through.
    const ok = await call(base, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 20 } } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ revision: 2 });
    expect(ok.body.forced).toBeUndefined();
  });

  it('schemas the hub does not hold are listed as unknown_schemas and not checked; instances without a schema are not consumers', async () => {
    const service = uniqueService('unknown');
    await call(base, 'POST', `${API}/${service}`, { body: { a: 1 } });
    const missing = 'b'.repeat(64);
    await call(base, 'GET', `${API}/${service}`, { headers: reportHeader(report('u-1', { [service]: { schema: missing } })) });
    await call(base, 'GET', `${API}/${service}`, { headers: reportHeader(report('u-2', { [service]: { schema: null } })) });
    const dry = await call(base, 'POST', `${API}/${service}/validate`, { body: { anything: 'goes' } });
    expect(dry).toMatchObject({ status: 200, body: { valid: true, consumers: [], unchecked: [], unknown_schemas: [missing] } });
    expect((await call(base, 'POST', `${API}/${service}`, { body: { anything: 'goes' } })).status).toBe(200);
  });

  it('hashes nobody uploaded (any read key can report them) never crowd held schemas out of the checked set', async () => {
    const { service, upload } = await servedService('crowd');
    // 250 hashes the hub does not hold, four live instances each: more than the real consumer's three.
    await hub.store.sql.query(
      `INSERT INTO config_instances (service_name, instance_id, host, pid, client_version, revision, source, stale,
                                     last_error, schema_hash, last_seen, expires_at)
       SELECT $1, 'flood-' || i, 'h', 1, '0.1.0', 1, 'hub', false, NULL, lpad(to_hex(i / 4), 64, '0'), now(), now() + interval '1 hour'
       FROM generate_series(0, 999) AS i`,
      [service],
    );
    const refused = await call(base, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 0 } } });
    expect(refused.status).toBe(422);
    expect(refused.body.consumers).toEqual([expect.objectContaining({ schema_hash: upload.hash, instances: 3 })]);
    expect(refused.body.unknown_schemas.length).toBeGreaterThan(100);
    expect(refused.body.unknown_schemas).not.toContain(upload.hash);
  });

  it('a dry run answers 200 valid or the same 422 as the write, runs the secret check first, and writes nothing', async () => {
    const { service, upload } = await servedService('dry');
    const before = await written(service);
    const valid = await call(base, 'POST', `${API}/${service}/validate`, { body: { operational: { batch_size: 5 } } });
    expect(valid.status).toBe(200);
    expect(valid.body).toEqual({
      valid: true,
      consumers: [{ schema_hash: upload.hash, instances: 3, instance_ids: ['c-1', 'c-2', 'c-3'], issues: [] }],
      unchecked: [{ schema_hash: upload.hash, path: 'operational', kind: 'refinement' }],
      unknown_schemas: [],
    });
    const invalid = await call(base, 'POST', `${API}/${service}/validate`, { body: { operational: {} } });
    expect(invalid.status).toBe(422);
    expect(invalid.body).toMatchObject({
      detail: '1 consumer (3 instances) would reject this config',
      issues: [{ path: 'operational.batch_size', keyword: 'required' }],
      consumers: [{ schema_hash: upload.hash, instances: 3 }],
    });
    const secret = await call(base, 'POST', `${API}/${service}/validate`, { body: { operational: { batch_size: 5 }, db_password: 'x' } });
    expect(secret.status).toBe(422);
    expect(secret.body).toMatchObject({ paths: ['db_password'] });
    expect((await call(base, 'POST', `${API}/${service}/validate`, { body: [1] })).status).toBe(400);
    expect((await call(base, 'POST', `${API}/${service}/validate`, { raw: '{', headers: {} })).status).toBe(400);
    expect(await written(service)).toEqual(before);
  });

  it('?force=true needs a change_reason (400), then commits anyway, answers forced + issues, and history records the override', async () => {
    const { service, upload } = await servedService('force');
    const noReason = await call(base, 'POST', `${API}/${service}?force=true`, { body: { operational: { batch_size: -1 } } });
    expect(noReason.status).toBe(400);
    expect(noReason.body.detail).toMatch(/change_reason/);
    expect((await call(base, 'POST', `${API}/${service}?force=yes&change_reason=x`, { body: {} })).status).toBe(400);
    const forced = await call(base, 'POST', `${API}/${service}?force=true&change_reason=incident-42`, { body: { operational: { batch_size: -1 } } });
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({
      status: 'updated',
      revision: 2,
      forced: true,
      issues: [{ path: 'operational.batch_size', keyword: 'exclusiveMinimum' }],
      consumers: [{ schema_hash: upload.hash, instances: 3 }],
    });
    const history = await call(base, 'GET', `${API}/history/${service}`);
    expect(history.body.history.map((h: { revision: number; change_reason: string | null }) => [h.revision, h.change_reason])).toEqual([
      [2, 'incident-42'],
      [1, null],
    ]);
    expect(history.body.history[0].override).toMatchObject({
      forced: true,
      issues: [{ path: 'operational.batch_size', message: 'must be > 0', keyword: 'exclusiveMinimum' }],
      consumers: [{ schema_hash: upload.hash, instances: 3, instance_ids: ['c-1', 'c-2', 'c-3'] }],
    });
    expect(history.body.history[1].override).toBeNull();
  });

  it('a PATCH is checked on the merged result, not on the patch alone', async () => {
    const { service } = await servedService('patch');
    // The patch alone lacks operational.batch_size; the merged result keeps it: accepted.
    const fine = await call(base, 'PATCH', `${API}/${service}`, { body: { operational: { mode: 'fast' } } });
    expect(fine.status).toBe(200);
    expect(fine.body.config).toEqual({ operational: { batch_size: 10, mode: 'fast' } });
    // Removing it with a merge patch leaves a config the consumers reject.
    const removing = await call(base, 'PATCH', `${API}/${service}`, { body: { operational: { batch_size: null } } });
    expect(removing.status).toBe(422);
    expect(removing.body).toMatchObject({ issues: [{ path: 'operational.batch_size', keyword: 'required' }] });
    expect((await call(base, 'GET', `${API}/${service}`)).body).toMatchObject({ revision: 2, config: { operational: { batch_size: 10 } } });
  });

  it('a rollback, and the restore of a deleted service, are checked against the consumers', async () => {
    const service = uniqueService('rollback');
    await call(base, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 0 } } }); // revision 1: before any consumer
    await call(base, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 8 } } }); // revision 2
    await consumers(base, service, schemaUpload(BATCH_SCHEMA), ['r-1'], 2);
    const back = await call(base, 'POST', `${API}/rollback/${service}`, { body: { revision: 1 } });
    expect(back.status).toBe(422);
    expect(back.body).toMatchObject({ detail: '1 consumer (1 instance) would reject this config', consumers: [{ instance_ids: ['r-1'] }] });
    expect((await call(base, 'GET', `${API}/${service}`)).body.revision).toBe(2);
    // Deleted, then restored: to revision 1 refused, to revision 2 fine.
    expect((await call(base, 'DELETE', `${API}/${service}`, { headers: { 'if-match': '"2"' } })).status).toBe(200);
    const restoreBad = await call(base, 'POST', `${API}/rollback/${service}`, { body: { revision: 1 } });
    expect(restoreBad.status).toBe(422);
    expect((await call(base, 'GET', `${API}/${service}`)).status).toBe(404);
    const restored = await call(base, 'POST', `${API}/rollback/${service}`, { body: { revision: 2 } });
    expect(restored).toMatchObject({ status: 200, body: { status: 'rollback', revision: 4, config: { operational: { batch_size: 8 } } } });
  });

  it('the list route adds instances { total, on_latest, behind, rejected } to each service', async () => {
    const service = uniqueService('list');
    await call(base, 'POST', `${API}/${service}`, { body: { a: 1 } });
    await call(base, 'POST', `${API}/${service}`, { body: { a: 2 } }); // revision 2
    const send = (id: string, s: { revision: number; error?: string | null }) =>
      call(base, 'POST', `${API}/${service}/instances`, { body: report(id, { [service]: s }) });
    await send('l-1', { revision: 2 });
    await send('l-2', { revision: 2 });
    await send('l-3', { revision: 1 });
    await send('l-4', { revision: 1, error: 'CONFIG_INVALID' });
    const other = uniqueService('list-empty');
    await call(base, 'POST', `${API}/${other}`, { body: { b: 1 } });
    const list = await call(base, 'GET', API);
    expect(list.status).toBe(200);
    const entry = (name: string) => list.body.services.find((s: { service_name: string }) => s.service_name === name);
    expect(entry(service).instances).toEqual({ total: 4, on_latest: 2, behind: 1, rejected: 1 });
    expect(entry(other).instances).toEqual({ total: 0, on_latest: 0, behind: 0, rejected: 0 });
  });
});
