/**
 * D5 — tampering with the audit trail as the hub's runtime role: TRUNCATE, DISABLE TRIGGER, UPDATE/DELETE
 * on `config_audit_log`, hard DELETE / direct UPDATE on `service_configs`, `session_replication_role`.
 * Expected: refused, or audited. Unaudited changes: 0.
 *
 * The hub itself runs as the runtime role here: the migration role (`postgres`, owner of the schema and
 * tables) applies the migrations once, the hub boots with `migrate: false` (HUB_SKIP_MIGRATIONS=true),
 * which only checks `hub_schema_migrations`, and serves every route, seeds and relays/prunes the outbox
 * with these grants (the ones examples/hub/README.md documents):
 *
 *   GRANT USAGE ON SCHEMA <s> TO hub_runtime;
 *   GRANT SELECT, INSERT, UPDATE ON <s>.service_configs TO hub_runtime;         -- no DELETE (soft delete only)
 *   GRANT SELECT, INSERT ON <s>.config_audit_log TO hub_runtime;                -- append only; no UPDATE/DELETE/TRUNCATE
 *   GRANT SELECT, INSERT, UPDATE, DELETE ON <s>.config_outbox TO hub_runtime;   -- relay marks published_at; retention deletes
 *   GRANT SELECT, INSERT, UPDATE, DELETE ON <s>.config_instances TO hub_runtime; -- fleet reports; expired rows deleted
 *   GRANT SELECT, INSERT ON <s>.config_schemas TO hub_runtime;                  -- consumer schemas (content-addressed)
 *   GRANT SELECT ON <s>.hub_schema_migrations TO hub_runtime;                   -- the boot check
 *   GRANT USAGE ON ALL SEQUENCES IN SCHEMA <s> TO hub_runtime;                  -- audit/outbox ids
 *   (functions: EXECUTE is granted to PUBLIC by default; triggers run as the invoker)
 *
 * Not the owner → no ALTER TABLE … DISABLE TRIGGER, no DROP TRIGGER, no TRUNCATE; not superuser → no
 * session_replication_role = replica (which would skip every trigger).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHub, type Hub } from '../../examples/hub/server.js';
import { createPostgresStore } from '../../examples/hub/store/postgres.js';
import { dropSchema, KEYS, PG_URL, uniqueSchema, withPg } from '../helpers/hub-fixtures.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const API = '/api/v1/config';
const admin = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };
const RUNTIME_GRANTS = (s: string, role: string) => `
  GRANT USAGE ON SCHEMA "${s}" TO ${role};
  GRANT SELECT, INSERT, UPDATE ON "${s}".service_configs TO ${role};
  GRANT SELECT, INSERT ON "${s}".config_audit_log TO ${role};
  GRANT SELECT, INSERT, UPDATE, DELETE ON "${s}".config_outbox TO ${role};
  GRANT SELECT, INSERT, UPDATE, DELETE ON "${s}".config_instances TO ${role};
  GRANT SELECT, INSERT ON "${s}".config_schemas TO ${role};
  GRANT SELECT ON "${s}".hub_schema_migrations TO ${role};
  GRANT USAGE ON ALL SEQUENCES IN SCHEMA "${s}" TO ${role};
`;

/** Migrates `schema` as the owner (`postgres`), the migration role's one job. */
async function migrateAsOwner(schema: string): Promise<void> {
  const owner = await createPostgresStore({ connectionString: PG_URL, schema });
  try {
    await owner.migrate();
  } finally {
    await owner.close();
  }
}

describe('D5: the audit trail against the hub runtime role', () => {
  const schema = uniqueSchema('chaos_d5');
  const emptySchema = uniqueSchema('chaos_d5_empty');
  const role = `hub_rt_${randomBytes(4).toString('hex')}`;
  const runtimeUrl = (() => {
    const u = new URL(PG_URL);
    u.username = role;
    return u.toString();
  })();
  /** A hub as the runtime role, without migrations. */
  const runtimeHub = (pgSchema: string, options: Parameters<typeof buildHub>[0] = {}) =>
    buildHub({ databaseUrl: runtimeUrl, pgSchema, migrate: false, apiKeys: Object.values(KEYS), ...options });
  let hub: Hub;
  let runtime: pg.Client;

  beforeAll(async () => {
    await migrateAsOwner(schema);
    await withPg(async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN`);
      await c.query(RUNTIME_GRANTS(schema, role));
      await c.query(`CREATE SCHEMA "${emptySchema}"`);
      await c.query(`GRANT USAGE ON SCHEMA "${emptySchema}" TO ${role}`);
    });
    // Seeding stays on: it needs INSERT on service_configs (and what the triggers write), all granted.
    // No NATS: the outbox is relayed and pruned by hand below; retention 0 = prune whatever is published.
    hub = await runtimeHub(schema, { outboxRetentionMs: 0 });
    runtime = new pg.Client({ connectionString: runtimeUrl, options: `-c search_path=${schema}` });
    runtime.on('error', () => {});
    await runtime.connect();
  });
  afterAll(async () => {
    await runtime?.end().catch(() => {});
    await hub?.close();
    await dropSchema(schema);
    await dropSchema(emptySchema);
    await withPg(async (c) => {
      await c.query(`DROP OWNED BY ${role}`);
      await c.query(`DROP ROLE IF EXISTS ${role}`);
    });
  });

  it('D5: the runtime role cannot migrate, and a hub with migrate: false refuses a schema that is not migrated', async () => {
    // The default (migrate: true) needs DDL rights the runtime role does not have.
    let refused = 0;
    await expect(buildHub({ databaseUrl: runtimeUrl, pgSchema: emptySchema, apiKeys: [] })).rejects.toMatchObject({
      code: '42501',
    });
    refused++;
    await expect(runtimeHub(emptySchema)).rejects.toMatchObject({
      code: 'HUB_SCHEMA_NOT_MIGRATED',
      message: expect.stringMatching(/not migrated: no table hub_schema_migrations in schema chaos_d5_empty_.*run the migrations first/),
    });
    refused++;
    // A schema that does not exist at all (migrate: false does not create it).
    await expect(runtimeHub(`${emptySchema}_absent`)).rejects.toMatchObject({ code: 'HUB_SCHEMA_NOT_MIGRATED' });
    refused++;
    // Migrated, but the runtime role may not read the migrations table.
    await migrateAsOwner(emptySchema);
    await expect(runtimeHub(emptySchema)).rejects.toMatchObject({
      message: expect.stringMatching(/cannot read .*hub_schema_migrations.*GRANT SELECT/),
    });
    refused++;
    // Readable, but a file is missing (an older hub migrated this schema).
    await withPg(async (c) => {
      await c.query(`GRANT SELECT ON "${emptySchema}".hub_schema_migrations TO ${role}`);
      await c.query(`DELETE FROM "${emptySchema}".hub_schema_migrations WHERE name = '003_outbox.sql'`);
    });
    await expect(runtimeHub(emptySchema)).rejects.toMatchObject({
      message: expect.stringMatching(/out of date \(not applied: 003_outbox\.sql\)/),
    });
    refused++;
    expectLive('D5', 'hub start-ups refused (no DDL right, not migrated, absent, unreadable, out of date)', refused, 5);
  });

  it('D5: a hub running as the runtime role serves every route, writes the audit trail, relays and prunes the outbox', async () => {
    const seeded = await hub.app.inject({ method: 'GET', url: `${API}/data-bridge`, headers: admin });
    expect(seeded.statusCode).toBe(200);
    expect(seeded.json()).toMatchObject({ revision: 1 });

    const send = async (method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, extra: Record<string, string> = {}) => {
      const r = await hub.app.inject({
        method,
        url: `${API}/${url}`,
        headers: { ...admin, ...extra },
        ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
      });
      return { status: r.statusCode, body: r.json() as Record<string, unknown> };
    };
    expect(await send('POST', 'd5-svc', { a: 1 })).toMatchObject({ status: 201, body: { status: 'created', revision: 1 } });
    expect(await send('POST', 'd5-svc', { a: 2 }, { 'if-match': '"1"' })).toMatchObject({ status: 200, body: { revision: 2 } });
    expect(await send('POST', 'd5-svc', { a: 3 }, { 'if-match': '"1"' })).toMatchObject({ status: 412 });
    expect(await send('PATCH', 'd5-svc', { b: 1 }, { 'content-type': 'application/merge-patch+json' })).toMatchObject({
      status: 200,
      body: { config: { a: 2, b: 1 }, revision: 3 },
    });
    expect(await send('POST', 'rollback/d5-svc', { revision: 1 })).toMatchObject({
      status: 200,
      body: { status: 'rollback', config: { a: 1 }, revision: 4 },
    });
    expect(await send('POST', 'd5-new', { x: 1 })).toMatchObject({ status: 201 });
    expect(await send('DELETE', 'd5-new', undefined, { 'if-match': '"1"' })).toMatchObject({ status: 200, body: { status: 'deleted', revision: 2 } });

    const got = await hub.app.inject({ method: 'GET', url: `${API}/d5-svc`, headers: admin });
    expect(got.json()).toMatchObject({ config: { a: 1 }, revision: 4 });
    expect((await hub.app.inject({ method: 'GET', url: `${API}/d5-new`, headers: admin })).statusCode).toBe(404);
    const history = await hub.app.inject({ method: 'GET', url: `${API}/history/d5-svc`, headers: admin });
    expect(history.statusCode).toBe(200);
    expect((history.json() as { history: { action: string }[] }).history.map((h) => h.action)).toEqual([
      'rollback',
      'updated',
      'updated',
      'created',
    ]);
    const list = await hub.app.inject({ method: 'GET', url: `${API}/`, headers: admin });
    expect(JSON.stringify(list.json())).toContain('d5-svc');

    // The audit rows, read by the owner: one per change, by the API key's name.
    const audit = await withPg(
      (c) =>
        c.query<{ service_name: string; action: string; revision: string; changed_by: string }>(
          `SELECT service_name, action, revision, changed_by FROM config_audit_log WHERE service_name LIKE 'd5-%' ORDER BY id`,
        ),
      schema,
    );
    expect(audit.rows.map((r) => [r.service_name, r.action, Number(r.revision), r.changed_by])).toEqual([
      ['d5-svc', 'created', 1, 'admin'],
      ['d5-svc', 'updated', 2, 'admin'],
      ['d5-svc', 'updated', 3, 'admin'],
      ['d5-svc', 'rollback', 4, 'admin'],
      ['d5-new', 'created', 1, 'admin'],
      ['d5-new', 'deleted', 2, 'admin'],
    ]);
    expectLive('D5', 'audit rows written through the runtime role', audit.rows.length, 6);

    // Relay (UPDATE published_at) and retention (DELETE) under the grants: 3 seed rows + 6 changes.
    expect((await hub.store.publishPending(async () => {}, { limit: 100 })).published).toBe(9);
    expect(await send('PATCH', 'd5-svc', { c: 1 }, { 'content-type': 'application/merge-patch+json' })).toMatchObject({ status: 200 });
    expect(await hub.broadcaster.prune()).toBe(9);
    const outbox = await withPg(
      (c) => c.query<{ n: string; pending: string }>('SELECT count(*) AS n, count(*) FILTER (WHERE published_at IS NULL) AS pending FROM config_outbox'),
      schema,
    );
    expect(outbox.rows[0]).toEqual({ n: '1', pending: '1' });
  });

  it('D5: every tampering attempt as the runtime role is refused or audited', async () => {
    const snapshot = async () =>
      (
        await withPg((c) =>
          c.query<{ n: string; h: string }>(
            `SELECT count(*) AS n, md5(string_agg(id || ':' || service_name || ':' || revision || ':' || config_json::text || ':' || action, ',' ORDER BY id)) AS h FROM config_audit_log`,
          ),
        schema)
      ).rows[0]!;
    const before = await snapshot();

    const attempts: [string, string][] = [
      ['TRUNCATE audit', 'TRUNCATE config_audit_log'],
      ['DISABLE TRIGGER on audit', 'ALTER TABLE config_audit_log DISABLE TRIGGER ALL'],
      ['DISABLE TRIGGER on configs', 'ALTER TABLE service_configs DISABLE TRIGGER hub_after_write'],
      ['DROP TRIGGER', 'DROP TRIGGER hub_audit_append_only ON config_audit_log'],
      ['UPDATE audit', "UPDATE config_audit_log SET change_reason = 'tampered'"],
      ['DELETE audit', 'DELETE FROM config_audit_log'],
      ['hard DELETE config', "DELETE FROM service_configs WHERE service_name = 'd5-svc'"],
      ['replication role', 'SET session_replication_role = replica'],
      ['replace trigger function', 'CREATE OR REPLACE FUNCTION hub_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$'],
    ];
    const allowed: string[] = [];
    for (const [what, sql] of attempts) {
      try {
        await runtime.query(sql);
        allowed.push(what);
      } catch (error) {
        expect((error as { code?: string }).code, what).toMatch(/^(42501|42P01)$/);
      }
    }
    const after = await snapshot();
    // A direct UPDATE (granted: the hub updates rows) is not refused but audited by the trigger.
    const rev = (await runtime.query<{ revision: string }>("SELECT revision FROM service_configs WHERE service_name = 'd5-svc'")).rows[0]!.revision;
    await runtime.query(`UPDATE service_configs SET config_json = '{"direct":true}' WHERE service_name = 'd5-svc'`);
    const audited = await runtime.query<{ n: string }>(
      "SELECT count(*) AS n FROM config_audit_log WHERE service_name = 'd5-svc' AND revision = $1 AND config_json = '{\"direct\":true}'",
      [Number(rev) + 1],
    );
    const unaudited =
      allowed.length + (before.n === after.n && before.h === after.h ? 0 : 1) + (Number(audited.rows[0]!.n) === 1 ? 0 : 1);
    console.log(`[D5] role=${role} refused=${attempts.length - allowed.length}/${attempts.length} allowed=[${allowed.join(', ')}] direct_update_audited=${audited.rows[0]!.n}`);
    recordFigure({ row: 'D5', name: 'unaudited changes as the runtime role', value: unaudited, unit: 'count' });
    recordFigure({ row: 'D5', name: 'tampering statements refused', value: `${attempts.length - allowed.length}/${attempts.length}` });
    expect(allowed).toEqual([]);
    expect(after).toEqual(before);
    expect(unaudited).toBe(0);
    expectLive('D5', 'tampering statements tried and refused', attempts.length - allowed.length, attempts.length);
    expectLive('D5', 'direct UPDATEs audited by the trigger', Number(audited.rows[0]!.n), 1);
    // And the runtime role still cannot migrate.
    await expect(hub.store.migrate()).rejects.toMatchObject({ code: '42501' });
  });
});
