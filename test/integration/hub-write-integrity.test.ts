/**
 * Issue 10.2: `updated_at` grows with `revision` whatever the writers' timing; `rollback_config()` says
 * "not found" when there is no row to roll back; a body that is not valid UTF-8 is refused, not stored
 * with U+FFFD in it.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { KEYS, PG_URL, STORE_KINDS, type StoreKind, uniqueService, useSuiteHub } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';
const admin = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };

async function auditTimes(hub: Hub, service: string): Promise<{ revision: number; changed_ms: number }[]> {
  const rows = await hub.store.sql.query<{ revision: number | string; changed_ms: number | string }>(
    `SELECT revision, hub_epoch_ms(changed_at) AS changed_ms FROM config_audit_log WHERE service_name = $1 ORDER BY revision`,
    [service],
  );
  return rows.map((r) => ({ revision: Number(r.revision), changed_ms: Number(r.changed_ms) }));
}

describe.each(STORE_KINDS)('hub write integrity on %s', (kind: StoreKind) => {
  let hub: Hub;
  let schema: string | undefined;
  useSuiteHub(kind, { seed: false }, (started, pgSchema) => {
    hub = started;
    schema = pgSchema;
  });

  const post = (service: string, body: unknown) =>
    hub.app.inject({ method: 'POST', url: `${API}/${service}`, headers: admin, payload: JSON.stringify(body) });

  it.runIf(kind === 'postgres')(
    'W1: updated_at grows with revision even when the later revision comes from a transaction that began first',
    async () => {
      const service = uniqueService('mono');
      expect((await post(service, { n: 1 })).statusCode).toBe(201);
      const early = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
      await early.connect();
      try {
        // This writer's transaction starts now (NOW() is fixed here) but writes after a later one committed.
        await early.query('BEGIN');
        await early.query('SELECT now()');
        await new Promise((r) => setTimeout(r, 30));
        const second = await post(service, { n: 2 });
        expect(second.json()).toMatchObject({ revision: 2 });
        await early.query(`UPDATE service_configs SET config_json = '{"n":3}', updated_by = 'early' WHERE service_name = $1`, [service]);
        await early.query('COMMIT');
      } finally {
        await early.end();
      }
      // Committed past the hub: its reads from memory learn of it through the NOTIFY (ms later); the revision
      // the test knows was committed, sent as a client told of it does, makes the hub read its database.
      const third = (await hub.app.inject({ method: 'GET', url: `${API}/${service}`, headers: { ...admin, 'x-config-min-revision': '3' } })).json();
      expect(third).toMatchObject({ revision: 3, config: { n: 3 } });
      const times = await auditTimes(hub, service);
      expect(times.map((t) => t.revision)).toEqual([1, 2, 3]);
      expect(times[2]!.changed_ms).toBeGreaterThan(times[1]!.changed_ms);
      expect(times[1]!.changed_ms).toBeGreaterThan(times[0]!.changed_ms);
      expect(third.updated_at).toBe(times[2]!.changed_ms);
    },
  );

  it('W1: updated_at strictly grows with revision under concurrent writers (property over 8 writers x 25 writes)', async () => {
    const service = uniqueService('mono-conc');
    expect((await post(service, { w: -1 })).statusCode).toBe(201);
    let committed = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 25; i++) {
          const r = await post(service, { w, i });
          if (r.statusCode === 200) committed++;
        }
      }),
    );
    const times = await auditTimes(hub, service);
    const backwards = times.filter((t, i) => i > 0 && t.changed_ms <= times[i - 1]!.changed_ms);
    console.log(`[hub-write-integrity ${kind}] concurrent_writes_committed=${committed} revisions=${times.length} not_increasing=${backwards.length}`);
    expect(committed).toBeGreaterThan(0);
    expect(times).toHaveLength(committed + 1);
    expect(backwards).toEqual([]);
  });

  it('W1: rollback_config() raises "service not found" when the service has history but no row', async () => {
    const service = uniqueService('gone');
    expect((await post(service, { a: 1 })).statusCode).toBe(201);
    expect((await post(service, { a: 2 })).statusCode).toBe(200);
    // A hard DELETE (an operator with SQL; the hub deletes softly): the audit trail keeps revisions 1-3.
    await hub.store.sql.query('DELETE FROM service_configs WHERE service_name = $1', [service]);
    await expect(
      hub.store.sql.query(`SELECT * FROM rollback_config($1::text, 1::bigint, NULL::text, 'op'::text, NULL::text)`, [service]),
    ).rejects.toThrow(`service ${service} not found`);
    await expect(
      hub.store.sql.query(`SELECT * FROM rollback_config($1::text, 99::bigint, NULL::text, 'op'::text, NULL::text)`, [service]),
    ).rejects.toThrow(/no such revision or version/);
    const r = await hub.app.inject({
      method: 'POST',
      url: `${API}/rollback/${service}`,
      headers: admin,
      payload: JSON.stringify({ revision: 1 }),
    });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toEqual({ detail: expect.any(String) });
  });

  it('W1: a body that is not valid UTF-8 is refused with 400 {detail} and nothing is stored', async () => {
    const service = uniqueService('utf8');
    // {"a":"<0xff>"}, {"a":"<lone continuation byte>"}, {"a":"<truncated 3-byte sequence>"}, overlong "/"
    const bodies = [
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0x80, 0x22, 0x7d]),
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe2, 0x82, 0x22, 0x7d]),
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]),
    ];
    for (const payload of bodies) {
      for (const method of ['POST', 'PATCH'] as const) {
        const r = await hub.app.inject({ method, url: `${API}/${service}`, headers: admin, payload });
        expect(r.statusCode, `${method} ${payload.toString('hex')}`).toBe(400);
        expect(r.json()).toEqual({ detail: 'body is not valid UTF-8' });
      }
    }
    expect((await hub.app.inject({ method: 'GET', url: `${API}/${service}`, headers: admin })).statusCode).toBe(404);
    // Valid multi-byte UTF-8 still round-trips.
    const ok = await hub.app.inject({ method: 'POST', url: `${API}/${service}`, headers: admin, payload: Buffer.from('{"a":"été €𝄞"}', 'utf8') });
    expect(ok.statusCode).toBe(201);
    expect((await hub.app.inject({ method: 'GET', url: `${API}/${service}`, headers: admin })).json().config).toEqual({ a: 'été €𝄞' });
  });
});
