import { afterAll, describe, expect, it } from 'vitest';
import { createPgliteStore } from '../../examples/hub/store/pglite.js';
import { createPostgresStore } from '../../examples/hub/store/postgres.js';
import type { SqlStore } from '../../examples/hub/store/sql-store.js';
import { buildHub } from '../../examples/hub/server.js';
import { ORIGINAL_SCHEMA_SQL } from '../helpers/hub-original-schema.js';
import { dropSchema, PG_URL, STORE_KINDS, type StoreKind, uniqueSchema } from '../helpers/hub-fixtures.js';

describe.each(STORE_KINDS)('hub migrations over the original schema on %s', (kind: StoreKind) => {
  const schema = uniqueSchema('hubmig');
  afterAll(async () => {
    if (kind === 'postgres') await dropSchema(schema);
  });

  const open = (): Promise<SqlStore> =>
    kind === 'postgres' ? createPostgresStore({ connectionString: PG_URL, schema }) : createPgliteStore({ schema });

  it('applies cleanly over the original tables and rows, is idempotent, and replaces the original triggers', async () => {
    const store = await open();
    try {
      await store.sql.exec(ORIGINAL_SCHEMA_SQL);
      const before = await store.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM config_audit_log');
      expect(before[0]!.n).toBe(2);

      expect(await store.migrate()).toEqual([
        '001_service_configs.sql',
        '002_revision_audit.sql',
        '003_outbox.sql',
        '004_outbox_dead_letter.sql',
        '005_fleet.sql',
        '006_change_notify.sql',
      ]);
      expect(await store.migrate()).toEqual([]); // recorded: skipped
      expect(await store.migrate({ force: true })).toHaveLength(6); // executed again: a no-op

      const row = await store.get('legacy-service');
      expect(row).toMatchObject({ version: '1.1.0', config: { operational: { batch_size: 150 } }, revision: 1, active: true, tags: ['legacy'] });

      const triggers = await store.sql.query<{ tgname: string }>(
        `SELECT tgname FROM pg_trigger WHERE tgrelid = 'service_configs'::regclass AND NOT tgisinternal ORDER BY tgname`,
      );
      expect(triggers.map((t) => t.tgname)).toEqual(['hub_after_delete', 'hub_after_write', 'hub_before_write', 'hub_notify_change', 'hub_notify_truncate']);
      const overloads = await store.sql.query<{ proname: string; args: string }>(
        `SELECT proname, oidvectortypes(proargtypes) AS args FROM pg_proc
         WHERE proname IN ('rollback_config', 'get_config_history') AND pronamespace = current_schema()::regnamespace ORDER BY proname`,
      );
      expect(overloads).toEqual([
        { proname: 'get_config_history', args: 'text, integer' },
        { proname: 'rollback_config', args: 'text, bigint, text, text, text' },
      ]);

      // A write after the migration: revision 2, exactly one new audit row.
      const w = await store.write({ kind: 'replace', service: 'legacy-service', config: { operational: { batch_size: 200 } }, changedBy: 't' });
      expect(w).toMatchObject({ kind: 'ok', row: { revision: 2 } });
      // A rollback to the original's first version: exactly one audit row, action 'rollback'.
      const countBefore = (await store.history('legacy-service', 100)).total;
      const rb = await store.write({ kind: 'rollback', service: 'legacy-service', toVersion: '1.0.0', changedBy: 't' });
      expect(rb).toMatchObject({ kind: 'ok', row: { revision: 3, version: '1.0.0', config: { operational: { batch_size: 100 } } } });
      const h = await store.history('legacy-service', 100);
      expect(h.total).toBe(countBefore + 1);
      expect(h.entries.map((e) => [e.action, e.revision])).toEqual([
        ['rollback', 3],
        ['updated', 2],
        ['updated', null],
        ['created', null],
      ]);

      // Rerun once more with data present: nothing changes.
      await store.migrate({ force: true });
      expect((await store.history('legacy-service', 100)).total).toBe(4);
      expect((await store.get('legacy-service'))?.revision).toBe(3);

      // The audit trail is append-only.
      await expect(store.sql.query('DELETE FROM config_audit_log')).rejects.toThrow(/append-only/);
      await expect(store.sql.query(`UPDATE config_audit_log SET action = 'updated'`)).rejects.toThrow(/append-only/);
    } finally {
      await store.close();
    }
  });

  it.runIf(kind === 'postgres')('a hub started over the migrated schema serves the original row and seeds the rest', async () => {
    const hub = await buildHub({ databaseUrl: PG_URL, pgSchema: schema, disableAuth: true });
    try {
      const r = await hub.app.inject({ method: 'GET', url: '/api/v1/config/legacy-service' });
      expect(r.json()).toMatchObject({ service_name: 'legacy-service', revision: 3 });
      const list = await hub.app.inject({ method: 'GET', url: '/api/v1/config/' });
      expect(list.json().total).toBe(4);
    } finally {
      await hub.close();
    }
  });
});
