import { connect, type NatsConnection } from 'nats';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { dropSchema, KEYS, SHARED_NATS_URL, startHub, uniqueSchema, uniqueService, waitFor, withPg } from '../helpers/hub-fixtures.js';

const admin = { 'x-api-key': KEYS.admin.key };

/** Two hub replicas on one PostgreSQL schema, over real sockets (port 0, undici), sharing NATS. */
describe('two hub replicas on one PostgreSQL schema (real sockets)', () => {
  const schema = uniqueSchema('hubrep');
  let a: Hub;
  let b: Hub;
  let urlA: string;
  let urlB: string;
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connect({ servers: SHARED_NATS_URL });
    // Started together: the migrations serialize on an advisory lock.
    [{ hub: a }, { hub: b }] = await Promise.all([
      startHub('postgres', { schema, natsUrl: SHARED_NATS_URL, relayIntervalMs: 25 }),
      startHub('postgres', { schema, natsUrl: SHARED_NATS_URL, relayIntervalMs: 25 }),
    ]);
    [urlA, urlB] = await Promise.all([a.listen({ host: '127.0.0.1', port: 0 }), b.listen({ host: '127.0.0.1', port: 0 })]);
    await waitFor(() => a.broadcaster.connected && b.broadcaster.connected);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await nc?.close();
    await dropSchema(schema);
  });

  async function call(base: string, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await request(`${base}/api/v1/config/${path}`, {
      method,
      headers: { ...admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: text.length > 0 ? JSON.parse(text) : undefined };
  }

  // The other replica serves from memory (issue 13): it learns of the commit through PostgreSQL's NOTIFY
  // (ms later, measured in hub-read-cache.test.ts); a client told of the change sends the revision it heard
  // (x-config-min-revision), and with it the other replica answers the write at once.
  it('the seed is there once, and a write through one replica is read through the other at once (x-config-min-revision)', async () => {
    const seed = await call(urlB, 'GET', 'tick-aggregator');
    expect(seed.status).toBe(200);
    expect(seed.body.revision).toBe(1);
    const service = uniqueService('rep');
    for (let i = 0; i < 20; i++) {
      const [writer, reader] = i % 2 === 0 ? [urlA, urlB] : [urlB, urlA];
      const w = await call(writer, 'POST', service, { i });
      expect(w.status).toBe(i === 0 ? 201 : 200);
      const r = await call(reader, 'GET', service, undefined, { 'x-config-min-revision': String(i + 1) });
      expect(r.body).toMatchObject({ config: { i }, revision: i + 1 });
      expect(r.headers.etag).toMatch(new RegExp(`^"${i + 1}-[0-9a-z]+"$`));
      const cond = await call(reader, 'GET', service, undefined, { 'if-none-match': String(r.headers.etag) });
      expect(cond.status).toBe(304);
    }
  });

  it('If-Match across replicas: a stale write through the other replica gets 412', async () => {
    const service = uniqueService('rep');
    await call(urlA, 'POST', service, { v: 1 });
    expect((await call(urlB, 'POST', service, { v: 2 }, { 'if-match': '"1"' })).status).toBe(200);
    const stale = await call(urlA, 'PATCH', service, { v: 3 }, { 'if-match': '"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body).toEqual({ detail: expect.any(String), revision: 2 });
  });

  it('every committed revision is published exactly once, by writes on both replicas and by both relays', async () => {
    const service = uniqueService('relay');
    const seen = new Map<number, number>();
    const sub = nc.subscribe(`config.update.${service}`, {
      callback: (_err, m) => {
        const rev = (m.json() as { revision: number }).revision;
        seen.set(rev, (seen.get(rev) ?? 0) + 1);
      },
    });
    await nc.flush();
    const publishedBefore = a.broadcaster.published + b.broadcaster.published;

    // 20 writes through each replica at once (last writer wins: no If-Match) ...
    const writes = await Promise.all(
      Array.from({ length: 40 }, (_, i) => call(i % 2 === 0 ? urlA : urlB, 'POST', service, { i })),
    );
    expect(writes.every((w) => w.status === 200 || w.status === 201)).toBe(true);
    // ... and 40 changes straight into the database, which only the relays can publish, racing each other.
    await withPg(async (c) => {
      for (let i = 0; i < 40; i++) {
        await c.query(`UPDATE service_configs SET config_json = $2::jsonb, updated_by = 'psql' WHERE service_name = $1`, [
          service,
          JSON.stringify({ sql: i }),
        ]);
      }
    }, schema);

    await waitFor(() => seen.size >= 80, 15_000);
    await new Promise((r) => setTimeout(r, 300)); // let a duplicate, if any, arrive
    sub.unsubscribe();
    const duplicates = [...seen.values()].filter((n) => n > 1).length;
    const publishedNow = a.broadcaster.published + b.broadcaster.published - publishedBefore;
    const pending = await a.store.pendingOutboxCount();
    console.log(
      `[hub-replicas] revisions=${seen.size} duplicates=${duplicates} published_by_replicas=${publishedNow} ` +
        `(a=${a.broadcaster.published}, b=${b.broadcaster.published}) broadcast_statuses=${JSON.stringify(
          writes.reduce<Record<string, number>>((acc, w) => {
            acc[w.body.broadcast] = (acc[w.body.broadcast] ?? 0) + 1;
            return acc;
          }, {}),
        )} pending_after=${pending}`,
    );
    expect([...seen.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    expect(duplicates).toBe(0);
    expect(pending).toBe(0);
  });
});
