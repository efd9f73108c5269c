import fc from 'fast-check';
import pg from 'pg';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildHub, type Hub } from '../../examples/hub/server.js';
import { ChangeFeed, type ChangeNotice } from '../../examples/hub/store/change-feed.js';
import { createPostgresStore } from '../../examples/hub/store/postgres.js';
import { ReadCache } from '../../examples/hub/store/read-cache.js';
import type { SqlStore } from '../../examples/hub/store/sql-store.js';
import { dropSchema, PG_URL, STORE_KINDS, type StoreKind, uniqueSchema, uniqueService } from '../helpers/hub-fixtures.js';
import { startPostgres } from '../helpers/lab/postgres-cluster.js';

/**
 * The hub's reads from memory (issue 13): GET / 304 without a database round trip while the LISTEN on the
 * commits' NOTIFY (migration 006) works; read-your-writes; a replica never serves a revision older than
 * one it has been notified of; reads go to the database whenever the feed is not listening.
 */

const API = '/api/v1/config';

async function call(base: string, method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}) {
  const res = await request(`${base}${path}`, {
    method: method as 'GET',
    headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, etag: res.headers.etag as string | undefined, json: text === '' ? undefined : JSON.parse(text) };
}

const reads = async (base: string) => (await call(base, 'GET', '/health')).json.reads as Record<string, number | string | boolean>;

describe.each(STORE_KINDS)('hub reads from memory on %s', (kind: StoreKind) => {
  const schema = kind === 'postgres' ? uniqueSchema('hubreads') : undefined;
  let hub: Hub;
  let url: string;
  beforeAll(async () => {
    hub = await buildHub({ disableAuth: true, ...(kind === 'postgres' ? { databaseUrl: PG_URL, pgSchema: schema } : {}) });
    url = await hub.listen({ port: 0 });
  });
  afterAll(async () => {
    await hub?.close();
    if (schema !== undefined) await dropSchema(schema);
  });

  it('serves repeated GETs and 304s from memory: one database read per revision, the same bytes and ETag', async () => {
    const service = uniqueService('mem');
    await call(url, 'POST', `${API}/${service}`, { body: { a: 1 } });
    const before = await reads(url);
    const first = await call(url, 'GET', `${API}/${service}`);
    const answers = await Promise.all(Array.from({ length: 50 }, () => call(url, 'GET', `${API}/${service}`)));
    const notModified = await Promise.all(Array.from({ length: 50 }, () => call(url, 'GET', `${API}/${service}`, { headers: { 'if-none-match': first.etag! } })));
    const after = await reads(url);
    expect(answers.every((a) => a.status === 200 && a.etag === first.etag && JSON.stringify(a.json) === JSON.stringify(first.json))).toBe(true);
    expect(notModified.every((a) => a.status === 304 && a.etag === first.etag)).toBe(true);
    expect(after.source).toBe('memory');
    // The write held its own row (read-your-writes): every GET since was a hit.
    expect(Number(after.hits) - Number(before.hits)).toBe(101);
    expect(Number(after.misses) - Number(before.misses)).toBe(0);
  });

  it('read-your-writes: a GET right after each write on the same hub answers the written revision', async () => {
    const service = uniqueService('ryw');
    for (let i = 1; i <= 20; i++) {
      const w = await call(url, 'POST', `${API}/${service}`, { body: { i } });
      const r = await call(url, 'GET', `${API}/${service}`);
      expect(r.json).toMatchObject({ revision: w.json.revision, config: { i } });
    }
  });

  it('a write made in SQL, past the hub (and a hard DELETE), reaches the reads through the NOTIFY', async () => {
    const service = uniqueService('sql');
    await call(url, 'POST', `${API}/${service}`, { body: { v: 1 } });
    expect((await call(url, 'GET', `${API}/${service}`)).json.config).toEqual({ v: 1 });
    const started = performance.now();
    await hub.store.sql.query(`UPDATE service_configs SET config_json = '{"v": 2}'::jsonb WHERE service_name = $1`, [service]);
    await vi.waitFor(async () => expect((await call(url, 'GET', `${API}/${service}`)).json.config).toEqual({ v: 2 }), { interval: 1 });
    console.log(`[hub-read-cache] ${kind}: a direct SQL write served after ${(performance.now() - started).toFixed(1)} ms`);
    await hub.store.sql.query('DELETE FROM service_configs WHERE service_name = $1', [service]);
    await vi.waitFor(async () => expect((await call(url, 'GET', `${API}/${service}`)).status).toBe(404), { interval: 1 });
    expect(Number((await reads(url)).invalidations)).toBeGreaterThan(0);
  });
});

describe('two hub replicas on one PostgreSQL', () => {
  const schema = uniqueSchema('hubreplicas');
  let a: Hub;
  let b: Hub;
  let urlA: string;
  let urlB: string;
  beforeAll(async () => {
    a = await buildHub({ disableAuth: true, databaseUrl: PG_URL, pgSchema: schema });
    b = await buildHub({ disableAuth: true, databaseUrl: PG_URL, pgSchema: schema });
    urlA = await a.listen({ port: 0 });
    urlB = await b.listen({ port: 0 });
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await dropSchema(schema);
  });

  it('a write on one replica reaches the other through the NOTIFY, within a bounded, measured time', async () => {
    const service = uniqueService('rep');
    await call(urlA, 'POST', `${API}/${service}`, { body: { n: 0 } });
    await call(urlB, 'GET', `${API}/${service}`);
    const delays: number[] = [];
    for (let n = 1; n <= 20; n++) {
      const w = await call(urlA, 'POST', `${API}/${service}`, { body: { n } });
      const started = performance.now();
      await vi.waitFor(async () => expect((await call(urlB, 'GET', `${API}/${service}`)).json.revision).toBe(w.json.revision), { interval: 1, timeout: 2000 });
      delays.push(performance.now() - started);
    }
    delays.sort((x, y) => x - y);
    console.log(`[hub-read-cache] replica B serves A's write after: p50 ${delays[10]!.toFixed(1)} ms, max ${delays[19]!.toFixed(1)} ms (20 writes)`);
    expect(Number((await reads(urlB)).notifications)).toBeGreaterThanOrEqual(20);
  });

  it('x-config-min-revision: right after a write on one replica, the other answers at least that revision, every time', async () => {
    const service = uniqueService('minrev');
    await call(urlA, 'POST', `${API}/${service}`, { body: { n: 0 } });
    await call(urlB, 'GET', `${API}/${service}`);
    for (let n = 1; n <= 30; n++) {
      const w = await call(urlA, 'POST', `${API}/${service}`, { body: { n } });
      const r = await call(urlB, 'GET', `${API}/${service}`, { headers: { 'x-config-min-revision': String(w.json.revision) } });
      expect(r.json.revision).toBeGreaterThanOrEqual(w.json.revision);
    }
    // A malformed hint is ignored, never an error.
    for (const bad of ['-1', 'abc', '1e3', '99999999999999999999']) {
      expect((await call(urlB, 'GET', `${API}/${service}`, { headers: { 'x-config-min-revision': bad } })).status).toBe(200);
    }
  });
});

describe('no replica serves a revision older than one it has been notified of (fast-check, real PostgreSQL)', () => {
  const schema = uniqueSchema('hubnotified');
  let writer: SqlStore;
  let reader: SqlStore;
  let sql: pg.Client;
  beforeAll(async () => {
    writer = await createPostgresStore({ connectionString: PG_URL, schema });
    await writer.migrate();
    reader = await createPostgresStore({ connectionString: PG_URL, schema });
    sql = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    await Promise.all([writer?.close(), reader?.close()]);
    await dropSchema(schema);
  });

  it('interleaved hub writes, SQL writes, reads and feed restarts: every read is at least the newest notified revision', async () => {
    const services = ['p-0', 'p-1', 'p-2'];
    for (const s of services) await writer.write({ kind: 'replace', service: s, config: { n: 0 }, changedBy: 't' });
    const counters = { runs: 0, reads: 0, notices: 0, writes: 0, restarts: 0, hits: 0, misses: 0 };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), service: fc.constantFrom(...services), sql: fc.boolean() }),
      fc.record({ kind: fc.constant('read' as const), service: fc.constantFrom(...services), parallel: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant('restart' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (ops) => {
        counters.runs++;
        // The newest revision the feed delivered per service, recorded before the cache sees the notice.
        const notified = new Map<string, number>();
        const cache = new ReadCache({ load: (s) => reader.get(s), render: (row) => ({ etag: String(row.revision), body: '' }) });
        const makeFeed = () =>
          new ChangeFeed({
            driver: reader,
            onChange: (notice: ChangeNotice) => {
              counters.notices++;
              if (notice.kind === 'service' && notice.revision !== null) {
                notified.set(notice.service, Math.max(notified.get(notice.service) ?? 0, notice.revision));
              }
              cache.changed(notice);
            },
            onState: (listening) => cache.setServing(listening),
          });
        let feed = makeFeed();
        await feed.start();
        const pending: Promise<void>[] = [];
        try {
          for (const o of ops) {
            if (o.kind === 'write') {
              counters.writes++;
              // Not awaited: writes race the reads and the notices.
              pending.push(
                (o.sql
                  ? sql.query(`UPDATE service_configs SET config_json = jsonb_build_object('n', revision + 1) WHERE service_name = $1`, [o.service])
                  : writer.write({ kind: 'patch', service: o.service, merge: (c) => ({ ...c, w: Date.now() }), changedBy: 't' })
                ).then(() => undefined),
              );
            } else if (o.kind === 'read') {
              const reads = Array.from({ length: o.parallel }, async () => {
                const floor = notified.get(o.service) ?? 0;
                const row = await cache.get(o.service);
                counters.reads++;
                expect(row!.revision).toBeGreaterThanOrEqual(floor);
              });
              pending.push(...reads);
            } else {
              counters.restarts++;
              await feed.close();
              feed = makeFeed();
              await feed.start();
            }
          }
          await Promise.all(pending);
          // Quiescent: the reads converge on the database's revision (the last notices arrive, or the entry was never held).
          const latest = await sql.query<{ service_name: string; revision: string }>('SELECT service_name, revision FROM service_configs');
          for (const r of latest.rows) {
            await vi.waitFor(async () => expect((await cache.get(r.service_name))!.revision).toBe(Number(r.revision)), { interval: 2 });
          }
          const stats = cache.stats();
          counters.hits += stats.hits;
          counters.misses += stats.misses;
        } finally {
          await feed.close();
        }
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 40) },
    );
    console.log(`[hub-read-cache] notified-revision property: ${JSON.stringify(counters)}`);
    // The paths ran: notices were heard, reads were served both from memory and from the database.
    expect(counters.notices).toBeGreaterThan(0);
    expect(counters.reads).toBeGreaterThan(0);
    expect(counters.hits).toBeGreaterThan(0);
    expect(counters.misses).toBeGreaterThan(0);
    expect(counters.restarts).toBeGreaterThan(0);
  }, 120_000);
});

describe('the feed on a PostgreSQL that dies and comes back (a private cluster)', () => {
  let cluster: Awaited<ReturnType<typeof startPostgres>>;
  let hub: Hub;
  let url: string;
  beforeAll(async () => {
    cluster = await startPostgres();
    hub = await buildHub({ disableAuth: true, databaseUrl: cluster.url, changeFeedPingMs: 200, connectionTimeoutMs: 1000, statementTimeoutMs: 1000 });
    url = await hub.listen({ port: 0 });
  }, 60_000);
  afterAll(async () => {
    await hub?.close();
    await cluster?.destroy();
  });

  it('stops serving from memory when the database goes (503, /health degraded → unavailable) and resumes, current, when it is back', async () => {
    const service = uniqueService('die');
    await call(url, 'POST', `${API}/${service}`, { body: { v: 1 } });
    expect((await call(url, 'GET', `${API}/${service}`)).status).toBe(200);
    expect(await reads(url)).toMatchObject({ source: 'memory', listening: true });
    await cluster.stopImmediate();
    await vi.waitFor(async () => expect((await call(url, 'GET', `${API}/${service}`)).status).toBe(503), { timeout: 5000, interval: 20 });
    const down = await call(url, 'GET', '/health');
    expect(down.json).toMatchObject({ status: 'unavailable', reads: { source: 'database', listening: false } });
    await cluster.start();
    // Changed while the feed was away: the hub must not serve what it held before.
    const pgc = new pg.Client({ connectionString: cluster.url });
    await pgc.connect();
    await pgc.query(`UPDATE service_configs SET config_json = '{"v": 2}'::jsonb WHERE service_name = $1`, [service]);
    await pgc.end();
    await vi.waitFor(async () => expect(await reads(url)).toMatchObject({ source: 'memory', listening: true }), { timeout: 10_000, interval: 50 });
    expect((await call(url, 'GET', `${API}/${service}`)).json.config).toEqual({ v: 2 });
    expect(Number((await reads(url)).feed_lost)).toBeGreaterThanOrEqual(1);
    expect((await call(url, 'GET', '/health')).json.status).toBe('ok');
  }, 60_000);
});
