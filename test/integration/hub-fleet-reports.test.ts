/**
 * Issue 11 (docs/fleet.md §1–§3, §5): instance reports, schema uploads and the fleet view, over real
 * sockets, on PGlite and PostgreSQL, with hand-built headers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { MAX_SCHEMA_BYTES } from '../../src/fleet/wire.js';
import { answered, BATCH_SCHEMA, call, report, reportHeader, schemaUpload } from '../helpers/fleet-http.js';
import { dropSchema, KEYS, STORE_KINDS, type StoreKind, startHub, uniqueService, waitFor } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';

describe.each(STORE_KINDS)('hub fleet: reports, schemas and the fleet view on %s', (kind: StoreKind) => {
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

  const created = async (prefix: string) => {
    const service = uniqueService(prefix);
    expect((await call(base, 'POST', `${API}/${service}`, { body: { a: 1 } })).status).toBe(201);
    return service;
  };
  const view = async (service: string) => {
    const v = await call(base, 'GET', `${API}/${service}/instances`);
    expect(v.status).toBe(200);
    return v.body;
  };
  const rows = async (table: string) =>
    (await hub.store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;

  it('a GET with a report header lists the instance in the fleet view (also on the 304 path); old clients without it are not listed', async () => {
    const service = await created('view');
    const plain = await call(base, 'GET', `${API}/${service}`);
    expect(plain.status).toBe(200);
    const r = report('v-1', { [service]: { revision: 1 } }, { poll_ms: 30_000 });
    const got = await call(base, 'GET', `${API}/${service}`, { headers: reportHeader(r) });
    expect(got.status).toBe(200);
    expect(got.headers['x-config-report-error']).toBeUndefined();
    const cond = await call(base, 'GET', `${API}/${service}`, {
      headers: { ...reportHeader(report('v-2', { [service]: { revision: 1, source: 'cache', stale: true } })), 'if-none-match': String(plain.headers.etag) },
    });
    expect(cond.status).toBe(304);
    const v = await view(service);
    expect(v).toMatchObject({ service_name: service, revision: 1, summary: { total: 2, on_latest: 2, behind: 0, rejected: 0 }, truncated: false });
    expect(v.instances).toEqual([
      {
        instance_id: 'v-1',
        host: 'host-v-1',
        pid: 4242,
        client_version: '0.1.0',
        revision: 1,
        source: 'hub',
        stale: false,
        last_seen: expect.any(Number),
        expires_at: expect.any(Number),
        last_error: null,
        schema_hash: null,
      },
      expect.objectContaining({ instance_id: 'v-2', source: 'cache', stale: true }),
    ]);
    expect(v.instances[0].expires_at - v.instances[0].last_seen).toBe(90_000);
    expect(Math.abs(v.instances[0].last_seen - Date.now())).toBeLessThan(60_000);
  });

  it('a bad report header never fails the request: the answer is normal, with x-config-report-error', async () => {
    const service = await created('badhdr');
    const bad = [
      '{not json',
      JSON.stringify({ ...report('b-1', { [service]: {} }), v: 2 }),
      `{"v":1,"id":"${'x'.repeat(9000)}"}`,
      JSON.stringify(report('b-1', { [service]: { schema: 'NOT-A-HASH' } })),
    ];
    for (const header of bad) {
      const r = await call(base, 'GET', `${API}/${service}`, { headers: { 'x-config-report': header } });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ service_name: service, config: { a: 1 } });
      expect(String(r.headers['x-config-report-error'])).toMatch(/^(report is|invalid report)/);
    }
    expect((await view(service)).instances).toEqual([]);
  });

  it('a GET records only the reported services the key may read; unknown schema hashes are named in x-config-schema-unknown until uploaded', async () => {
    const polygon = uniqueService('polygon');
    const other = await created('scoped');
    await call(base, 'POST', `${API}/${polygon}`, { body: { a: 1 } });
    const upload = schemaUpload(BATCH_SCHEMA);
    const r = report('s-1', { [polygon]: { schema: upload.hash }, [other]: { schema: upload.hash } });
    const got = await call(base, 'GET', `${API}/${polygon}`, { key: KEYS.polygon.key, headers: reportHeader(r) });
    expect(got.status).toBe(200);
    expect(got.headers['x-config-schema-unknown']).toBe(upload.hash);
    expect((await view(polygon)).instances.map((i: { instance_id: string }) => i.instance_id)).toEqual(['s-1']);
    expect((await view(other)).instances).toEqual([]);
    // The upload carries the report too: its answer does not call the hash it just stored unknown.
    const put = await call(base, 'PUT', `/api/v1/schemas/${upload.hash}`, { key: KEYS.polygon.key, body: upload.body, headers: reportHeader(r) });
    expect(put).toMatchObject({ status: 201, body: { hash: upload.hash, created: true } });
    expect(put.headers['x-config-schema-unknown']).toBeUndefined();
    const again = await call(base, 'GET', `${API}/${polygon}`, { key: KEYS.polygon.key, headers: reportHeader(r) });
    expect(again.headers['x-config-schema-unknown']).toBeUndefined();
  });

  it('a GET of a service records only that service from the header (and names only its hash unknown); a report POST records every service it lists', async () => {
    const a = await created('only-a');
    const b = await created('only-b');
    const upload = schemaUpload({ type: 'object', title: b });
    const header = reportHeader(report('g-1', { [a]: {}, [b]: { schema: upload.hash } }));
    const got = await call(base, 'GET', `${API}/${a}`, { headers: header });
    expect(got.status).toBe(200);
    expect(got.headers['x-config-schema-unknown']).toBeUndefined(); // b's hash: b was not asked for
    // Requests other than the GET of a service record nothing of the header.
    await call(base, 'GET', `${API}/${b}/instances`, { headers: header });
    await call(base, 'GET', API, { headers: header });
    const listed = async (service: string) => (await view(service)).instances.map((i: { instance_id: string }) => i.instance_id);
    expect([await listed(a), await listed(b)]).toEqual([['g-1'], []]);
    expect(await call(base, 'POST', `${API}/${a}/instances`, { body: report('g-1', { [a]: {}, [b]: {} }) })).toMatchObject({ status: 202, body: { accepted: 2 } });
    expect(await listed(b)).toEqual(['g-1']);
  });

  it('a hash whose upload was refused is not named in x-config-schema-unknown again (for 10 minutes), and is refused again alike', async () => {
    const service = await created('refused');
    const broken = schemaUpload({ type: 'nonsense', title: service });
    const headers = reportHeader(report('n-1', { [service]: { schema: broken.hash } }));
    expect((await call(base, 'GET', `${API}/${service}`, { headers })).headers['x-config-schema-unknown']).toBe(broken.hash);
    const first = await call(base, 'PUT', `/api/v1/schemas/${broken.hash}`, { body: broken.body, headers });
    expect(first).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/does not compile/) } });
    // The client would upload it again every 30 s while the hash is named: it is not named any more.
    expect((await call(base, 'GET', `${API}/${service}`, { headers })).headers['x-config-schema-unknown']).toBeUndefined();
    const again = await call(base, 'PUT', `/api/v1/schemas/${broken.hash}`, { body: broken.body });
    expect([again.status, again.body]).toEqual([first.status, first.body]);
    // Not held: listed as unknown by the write check.
    const dry = await call(base, 'POST', `${API}/${service}/validate`, { body: { a: 1 } });
    expect(dry.body).toMatchObject({ valid: true, unknown_schemas: [broken.hash] });
  });

  it('a schema over 64 KiB of canonical JSON (within the 256 KiB body bound) is 413 { detail }, and remembered', async () => {
    const service = await created('big');
    const big = schemaUpload({ type: 'object', title: service, description: 'x'.repeat(70 * 1024) });
    const headers = reportHeader(report('b-1', { [service]: { schema: big.hash } }));
    expect((await call(base, 'GET', `${API}/${service}`, { headers })).headers['x-config-schema-unknown']).toBe(big.hash);
    const put = await call(base, 'PUT', `/api/v1/schemas/${big.hash}`, { body: big.body });
    expect(put).toMatchObject({ status: 413, body: { detail: expect.stringMatching(/more than this hub's 65536/) } });
    expect((await call(base, 'GET', `${API}/${service}`, { headers })).headers['x-config-schema-unknown']).toBeUndefined();
  });

  it("/health tells the fleet's state (pending, dropped) and says degraded, with the last flush error, while flushes to config_instances keep failing", async () => {
    const service = await created('health');
    await hub.fleet.instances.flush();
    const ok = await call(base, 'GET', '/health');
    expect(ok).toMatchObject({ status: 200, body: { status: 'ok', fleet: { pending: 0, dropped: 0 } } });
    expect(ok.body.fleet).not.toHaveProperty('last_flush_error');
    await hub.store.sql.query('ALTER TABLE config_instances RENAME TO config_instances_away');
    try {
      await call(base, 'POST', `${API}/${service}/instances`, { body: report('h-1', { [service]: {} }) });
      await hub.fleet.instances.flush();
      const once = await call(base, 'GET', '/health');
      expect(once.body).toMatchObject({ status: 'ok', fleet: { pending: 1, last_flush_error: expect.stringMatching(/config_instances/) } });
      await hub.fleet.instances.flush();
      await hub.fleet.instances.flush();
      const failing = await call(base, 'GET', '/health');
      expect(failing).toMatchObject({ status: 200, body: { status: 'degraded', db: true, fleet: { pending: 1, last_flush_error: expect.stringMatching(/config_instances/) } } });
    } finally {
      await hub.store.sql.query('ALTER TABLE config_instances_away RENAME TO config_instances');
    }
    await hub.fleet.instances.flush();
    const back = await call(base, 'GET', '/health');
    expect(back.body).toMatchObject({ status: 'ok', fleet: { pending: 0, dropped: 0 } });
    expect(back.body.fleet).not.toHaveProperty('last_flush_error');
  });

  it('schema uploads: 201 created, then 200; hash mismatch, non-compiling schema, bad hash and bad shape are 400; over 256 KiB is 413', async () => {
    const upload = schemaUpload({ type: 'object', properties: { n: { type: 'integer' } } }, [{ path: 'n', kind: 'refinement' }]);
    expect(await call(base, 'PUT', `/api/v1/schemas/${upload.hash}`, { body: upload.body })).toMatchObject({ status: 201, body: { created: true } });
    expect(await call(base, 'PUT', `/api/v1/schemas/${upload.hash}`, { body: upload.body })).toMatchObject({ status: 200, body: { created: false } });
    const mismatch = await call(base, 'PUT', `/api/v1/schemas/${'0'.repeat(64)}`, { body: upload.body });
    expect(mismatch).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/hash mismatch/) } });
    const broken = schemaUpload({ type: 'nonsense' });
    expect(await call(base, 'PUT', `/api/v1/schemas/${broken.hash}`, { body: broken.body })).toMatchObject({
      status: 400,
      body: { detail: expect.stringMatching(/does not compile/) },
    });
    expect((await call(base, 'PUT', '/api/v1/schemas/ABC', { body: upload.body })).status).toBe(400);
    const shapeless = { schema: { type: 'object' }, unrepresented: [], extra: 1 };
    expect((await call(base, 'PUT', `/api/v1/schemas/${'1'.repeat(64)}`, { body: shapeless })).status).toBe(400);
    const huge = schemaUpload({ type: 'object', description: 'x'.repeat(MAX_SCHEMA_BYTES) });
    const tooBig = await call(base, 'PUT', `/api/v1/schemas/${huge.hash}`, { body: huge.body });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body).toEqual({ detail: expect.any(String) });
  });

  it('unauthenticated schema uploads and report requests are 401 and cost no work: no parse, no row', async () => {
    const service = await created('stranger');
    const upload = schemaUpload({ type: 'object', title: 'stranger' });
    await hub.fleet.instances.flush(); // what earlier tests reported
    const [schemasBefore, instancesBefore, seenBefore] = [await rows('config_schemas'), await rows('config_instances'), hub.fleet.reportsSeen];
    const header = reportHeader(report('x-1', { [service]: {} }));
    const attempts = [
      await call(base, 'PUT', `/api/v1/schemas/${upload.hash}`, { key: null, body: upload.body, headers: header }),
      await call(base, 'PUT', `/api/v1/schemas/${upload.hash}`, { key: 'wrong-key', body: upload.body }),
      await call(base, 'POST', `${API}/${service}/instances`, { key: null, body: report('x-1', { [service]: {} }), headers: header }),
      await call(base, 'GET', `${API}/${service}`, { key: 'wrong-key', headers: header }),
      await call(base, 'PUT', `/api/v1/schemas/${upload.hash}`, { key: null, raw: '{'.repeat(100_000) }),
    ];
    expect(attempts.map((a) => [a.status, a.body])).toEqual(attempts.map(() => [401, { detail: 'missing or invalid API key' }]));
    await hub.fleet.instances.flush();
    expect([await rows('config_schemas'), await rows('config_instances'), hub.fleet.reportsSeen]).toEqual([schemasBefore, instancesBefore, seenBefore]);
    expect((await view(service)).instances).toEqual([]);
  });

  it('the report request: 202 { accepted }; the path service must be listed (400); the key must read every listed service (403); a bad body is 400', async () => {
    const a = await created('rep-a');
    const b = await created('rep-b');
    const both = report('p-1', { [a]: {}, [b]: { revision: null, source: 'defaults' } });
    expect(await call(base, 'POST', `${API}/${a}/instances`, { body: both })).toMatchObject({ status: 202, body: { accepted: 2 } });
    expect((await view(b)).instances).toEqual([expect.objectContaining({ instance_id: 'p-1', revision: null, source: 'defaults' })]);
    expect((await call(base, 'POST', `${API}/${a}/instances`, { body: report('p-2', { [b]: {} }) })).status).toBe(400);
    expect((await call(base, 'POST', `${API}/${a}/instances`, { body: { ...both, v: 9 } })).status).toBe(400);
    expect((await call(base, 'POST', `${API}/${a}/instances`, { raw: 'null' })).status).toBe(400);
    const polygon = uniqueService('polygon');
    const denied = await call(base, 'POST', `${API}/${polygon}/instances`, { key: KEYS.polygon.key, body: report('p-3', { [polygon]: {}, [a]: {} }) });
    expect(denied).toMatchObject({ status: 403, body: { detail: expect.stringMatching(/may not read/) } });
    expect((await view(a)).instances.map((i: { instance_id: string }) => i.instance_id)).toEqual(['p-1']);
    expect((await call(base, 'GET', `${API}/${polygon}/instances`, { key: KEYS.polygon.key })).body.revision).toBeNull();
  });

  it('a rejection reported by POST is in the fleet view at once and in the database within 1 s', async () => {
    const service = await created('reject');
    // The worst case: a flush has just written j-0 (flushed at once: the last flush was over 1 s ago), so
    // the rejection below waits for the next one, a second later.
    await new Promise((r) => setTimeout(r, 1100));
    await call(base, 'POST', `${API}/${service}/instances`, { body: report('j-0', { [service]: {} }) });
    const count = async (where: string) =>
      (await hub.store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM config_instances WHERE service_name = $1 AND ${where}`, [service]))[0]!.n;
    await waitFor(async () => (await count('true')) === 1, 1000, 5);
    const sent = Date.now();
    const r = await call(base, 'POST', `${API}/${service}/instances`, { body: report('j-1', { [service]: { revision: 1, error: 'CONFIG_INVALID' } }) });
    expect(r.status).toBe(202);
    expect((await view(service)).summary).toEqual({ total: 2, on_latest: 1, behind: 0, rejected: 1 });
    await waitFor(async () => (await count(`last_error = 'CONFIG_INVALID'`)) === 1, 2000, 5);
    const afterMs = Date.now() - sent;
    console.log(`[fleet] ${kind}: rejection in config_instances ${afterMs} ms after the report was sent`);
    // One flush interval (1 s) plus one write; the margin is for timers on a loaded 2-core machine.
    expect(afterMs).toBeLessThanOrEqual(1250);
  });

  it('instances expire after 3 × poll_ms of silence (poll_ms 1000 → 3 s), in the view and in the counts', async () => {
    const service = await created('expire');
    await call(base, 'GET', `${API}/${service}`, { headers: reportHeader(report('e-1', { [service]: {} }, { poll_ms: 1000 })) });
    await call(base, 'GET', `${API}/${service}`, { headers: reportHeader(report('e-2', { [service]: {} }, { poll_ms: 0 })) });
    const listed = async () => (await view(service)).instances.map((i: { instance_id: string }) => i.instance_id);
    expect(await listed()).toEqual(['e-1', 'e-2']);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await listed()).toEqual(['e-1', 'e-2']);
    await waitFor(async () => (await listed()).length === 1, 2000, 50);
    expect(await listed()).toEqual(['e-2']); // poll_ms 0: 180 s
    const list = await call(base, 'GET', API);
    expect(list.body.services.find((s: { service_name: string }) => s.service_name === service).instances.total).toBe(1);
  });
});
