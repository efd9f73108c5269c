/**
 * D5 — tampering with the audit trail as the hub's runtime role: TRUNCATE, DISABLE TRIGGER, UPDATE/DELETE
 * on `config_audit_log`, hard DELETE / direct UPDATE on `service_configs`, `session_replication_role`.
 * Expected: refused, or audited. Unaudited changes: 0.
 *
 * The documented grants of the hub's runtime role (schema and tables owned by a separate migration role,
 * here `postgres`; the hub migrates at boot, so today the migration role runs `buildHub` once and the
 * runtime role runs the store):
 *
 *   GRANT USAGE ON SCHEMA <s> TO hub_runtime;
 *   GRANT SELECT, INSERT, UPDATE ON <s>.service_configs TO hub_runtime;   -- no DELETE (soft delete only)
 *   GRANT SELECT, INSERT ON <s>.config_audit_log TO hub_runtime;          -- append only; no UPDATE/DELETE/TRUNCATE
 *   GRANT SELECT, INSERT, UPDATE ON <s>.config_outbox TO hub_runtime;     -- relay marks published_at
 *   GRANT USAGE ON ALL SEQUENCES IN SCHEMA <s> TO hub_runtime;            -- audit/outbox ids
 *   (functions: EXECUTE is granted to PUBLIC by default; triggers run as the invoker)
 *
 * Not the owner → no ALTER TABLE … DISABLE TRIGGER, no DROP TRIGGER, no TRUNCATE; not superuser → no
 * session_replication_role = replica (which would skip every trigger).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { createPostgresStore } from '../../examples/hub/store/postgres.js';
import type { SqlStore } from '../../examples/hub/store/sql-store.js';
import { dropSchema, KEYS, PG_URL, startHub, uniqueSchema, withPg } from '../helpers/hub-fixtures.js';
import { recordFigure } from './figures.js';

const API = '/api/v1/config';
const RUNTIME_GRANTS = (s: string, role: string) => `
  GRANT USAGE ON SCHEMA "${s}" TO ${role};
  GRANT SELECT, INSERT, UPDATE ON "${s}".service_configs TO ${role};
  GRANT SELECT, INSERT ON "${s}".config_audit_log TO ${role};
  GRANT SELECT, INSERT, UPDATE ON "${s}".config_outbox TO ${role};
  GRANT USAGE ON ALL SEQUENCES IN SCHEMA "${s}" TO ${role};
`;

describe('D5: the audit trail against the hub runtime role', () => {
  const schema = uniqueSchema('chaos_d5');
  const role = `hub_rt_${randomBytes(4).toString('hex')}`;
  let hub: Hub;
  let runtimeStore: SqlStore | undefined;
  let runtime: pg.Client;

  beforeAll(async () => {
    ({ hub } = await startHub('postgres', { schema, seed: false }));
    const r = await hub.app.inject({
      method: 'POST',
      url: `${API}/d5-svc`,
      headers: { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' },
      payload: '{"a":1}',
    });
    expect(r.statusCode).toBe(201);
    await withPg(async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN`);
      await c.query(RUNTIME_GRANTS(schema, role));
    });
    const u = new URL(PG_URL);
    u.username = role;
    runtime = new pg.Client({ connectionString: u.toString(), options: `-c search_path=${schema}` });
    runtime.on('error', () => {});
    await runtime.connect();
    // Not `schema:` — that runs CREATE SCHEMA IF NOT EXISTS, which needs CREATE on the database; the
    // runtime role only gets the search_path.
    u.searchParams.set('options', `-c search_path=${schema}`);
    runtimeStore = await createPostgresStore({ connectionString: u.toString() });
  });
  afterAll(async () => {
    await runtime?.end().catch(() => {});
    await runtimeStore?.close().catch(() => {});
    await hub?.close();
    await dropSchema(schema);
    await withPg(async (c) => {
      await c.query(`DROP OWNED BY ${role}`);
      await c.query(`DROP ROLE IF EXISTS ${role}`);
    });
  });

  it('D5: the runtime role can do everything the hub does, and every tampering attempt is refused or audited', async () => {
    const store = runtimeStore!;
    // The grants are enough for the hub's own work: replace, patch, rollback, soft delete, relay.
    for (const command of [
      { kind: 'replace' as const, service: 'd5-svc', config: { a: 2 }, changedBy: 'rt' },
      { kind: 'patch' as const, service: 'd5-svc', merge: (c: Record<string, unknown>) => ({ ...c, b: 1 }), changedBy: 'rt' },
      { kind: 'rollback' as const, service: 'd5-svc', toRevision: 1, changedBy: 'rt' },
      { kind: 'replace' as const, service: 'd5-new', config: { x: 1 }, changedBy: 'rt' },
      { kind: 'delete' as const, service: 'd5-new', changedBy: 'rt' },
    ]) {
      expect((await store.write(command)).kind).toBe('ok');
    }
    expect(await store.publishPending(async () => {})).toBeGreaterThan(0);

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

    // Documented limit: the hub migrates at boot, which needs ownership; the runtime role cannot boot it.
    await expect(runtimeStore!.migrate()).rejects.toMatchObject({ code: '42501' });
  });
});
