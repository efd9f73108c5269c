import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyResponseSchema, writeResponseSchema, configDocumentSchema } from '../../src/hub/wire.js';
import type { Hub } from '../../examples/hub/server.js';
import { dropSchema, json, KEYS, STORE_KINDS, type StoreKind, startHub, uniqueService } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';
const SEED = 'polygon-historical-downloader';
const admin = { 'x-api-key': KEYS.admin.key };

describe.each(STORE_KINDS)('hub routes on %s', (kind: StoreKind) => {
  let hub: Hub;
  let schema: string | undefined;

  beforeAll(async () => {
    const started = await startHub(kind);
    hub = started.hub;
    schema = started.schema;
  });
  afterAll(async () => {
    await hub?.close();
    if (schema !== undefined) await dropSchema(schema);
  });

  const inject = (opts: InjectOptions): Promise<LightMyRequestResponse> => hub.app.inject(opts);
  const post = (service: string, body: unknown, headers: Record<string, string> = {}, query = '') =>
    inject({ method: 'POST', url: `${API}/${service}${query}`, ...json(body), headers: { ...admin, 'content-type': 'application/json', ...headers } });

  it('runs the seed curl flow: GET seed, POST update, history shows created + updated (total 2)', async () => {
    const got = await inject({ method: 'GET', url: `${API}/${SEED}`, headers: admin });
    expect(got.statusCode).toBe(200);
    const doc = configDocumentSchema.parse(got.json());
    expect(doc.version).toBe('1.0.0');
    expect(doc.revision).toBe(1);
    expect(got.headers.etag).toBe(`"1-${got.json().updated_at.toString(36)}"`);
    expect(typeof got.json().updated_at).toBe('number');
    expect(got.json()).toMatchObject({ description: expect.any(String), tags: expect.any(Array), active: true });

    const updated = await post(SEED, { operational: { batch_size: 150, gap_check_interval_hours: 3 } }, {}, '?version=1.0.1&change_reason=tune');
    expect(updated.statusCode).toBe(200);
    const w = writeResponseSchema.parse(updated.json());
    expect(w).toMatchObject({ status: 'updated', version: '1.0.1', updated_by: 'admin', broadcast: 'unavailable', revision: 2 });

    const history = await inject({ method: 'GET', url: `${API}/history/${SEED}`, headers: admin });
    expect(history.statusCode).toBe(200);
    const h = historyResponseSchema.parse(history.json());
    expect(h.total).toBe(2);
    expect(h.limit).toBe(10);
    expect(h.history.map((e) => [e.action, e.changed_by, e.revision])).toEqual([
      ['updated', 'admin', 2],
      ['created', 'system', 1],
    ]);
    expect(h.history[0]!.change_reason).toBe('tune');
  });

  it('creates (201), updates (200), conditional GET (304) and If-Match (412 with the current revision)', async () => {
    const s = uniqueService();
    const created = await post(s, { a: 1 });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ status: 'created', revision: 1, version: '1.0.0', config: { a: 1 } });
    const tag = String(created.headers.etag);
    const notModified = await inject({ method: 'GET', url: `${API}/${s}`, headers: { ...admin, 'if-none-match': tag } });
    expect(notModified.statusCode).toBe(304);
    // The revision alone is not the ETag: a hub restored from a backup reuses revision numbers for other content.
    const bare = await inject({ method: 'GET', url: `${API}/${s}`, headers: { ...admin, 'if-none-match': '"1"' } });
    expect(bare.statusCode).toBe(200);
    const ok = await post(s, { a: 2 }, { 'if-match': '"1"' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().revision).toBe(2);
    const stale = await post(s, { a: 3 }, { 'if-match': '"1"' });
    expect(stale.statusCode).toBe(412);
    expect(stale.json()).toEqual({ detail: expect.any(String), revision: 2 });
    const createOnly = await post(s, { a: 4 }, { 'if-match': '"0"' });
    expect(createOnly.statusCode).toBe(412);
    const fresh = await inject({ method: 'GET', url: `${API}/${s}`, headers: { ...admin, 'if-none-match': tag } });
    expect(fresh.statusCode).toBe(200);
    expect(fresh.json().config).toEqual({ a: 2 });
  });

  it('PATCH applies an RFC 7396 merge patch (merge-patch+json and json)', async () => {
    const s = uniqueService();
    await post(s, { keep: 1, nested: { a: 1, b: 2 }, list: [1, 2] });
    const r = await inject({
      method: 'PATCH',
      url: `${API}/${s}?version=2.0.0`,
      headers: { ...admin, 'content-type': 'application/merge-patch+json', 'if-match': '"1"' },
      payload: JSON.stringify({ nested: { b: null, c: 3 }, list: [9] }),
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ status: 'updated', version: '2.0.0', revision: 2, config: { keep: 1, nested: { a: 1, c: 3 }, list: [9] } });
    const r2 = await inject({ method: 'PATCH', url: `${API}/${s}`, ...json({ keep: null }), headers: { ...admin, 'content-type': 'application/json' } });
    expect(r2.json().config).toEqual({ nested: { a: 1, c: 3 }, list: [9] });
    const missing = await inject({ method: 'PATCH', url: `${API}/${uniqueService()}`, ...json({ a: 1 }), headers: { ...admin, 'content-type': 'application/json' } });
    expect(missing.statusCode).toBe(404);
  });

  it('DELETE is soft (404 afterwards, audit "deleted"); a POST brings the service back', async () => {
    const s = uniqueService();
    await post(s, { a: 1 });
    const del = await inject({ method: 'DELETE', url: `${API}/${s}`, headers: { ...admin, 'if-match': '"1"' } });
    expect(del.statusCode).toBe(200);
    expect(del.json()).toMatchObject({ status: 'deleted', revision: 2 });
    expect((await inject({ method: 'GET', url: `${API}/${s}`, headers: admin })).statusCode).toBe(404);
    expect((await inject({ method: 'DELETE', url: `${API}/${s}`, headers: { ...admin, 'if-match': '"2"' } })).statusCode).toBe(404);
    const list = await inject({ method: 'GET', url: `${API}/`, headers: admin });
    expect(list.json().services.map((x: { service_name: string }) => x.service_name)).not.toContain(s);
    const h = await inject({ method: 'GET', url: `${API}/history/${s}`, headers: admin });
    expect(h.json().history[0].action).toBe('deleted');
    const back = await post(s, { a: 5 });
    expect(back.statusCode).toBe(201);
    expect(back.json().revision).toBe(3);
  });

  it('lists services with revision and updated_at', async () => {
    const r = await inject({ method: 'GET', url: `${API}/`, headers: admin });
    expect(r.statusCode).toBe(200);
    expect((await inject({ method: 'GET', url: API, headers: admin })).json()).toEqual(r.json());
    const names = r.json().services.map((x: { service_name: string }) => x.service_name);
    expect(names).toEqual(expect.arrayContaining(['tick-aggregator', 'data-bridge']));
    for (const svc of r.json().services) {
      expect(svc).toMatchObject({ revision: expect.any(Number), updated_at: expect.any(Number) });
    }
  });

  it('history: newest first, limit default 10, clamped to 100, 404 for an unknown service', async () => {
    const s = uniqueService();
    for (let i = 0; i < 12; i++) await post(s, { i });
    const d = await inject({ method: 'GET', url: `${API}/history/${s}`, headers: admin });
    expect(d.json()).toMatchObject({ total: 12, limit: 10 });
    expect(d.json().history.map((e: { revision: number }) => e.revision)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    const big = await inject({ method: 'GET', url: `${API}/history/${s}?limit=10000000`, headers: admin });
    expect(big.json()).toMatchObject({ total: 12, limit: 100 });
    expect(big.json().history).toHaveLength(12);
    expect((await inject({ method: 'GET', url: `${API}/history/${s}?limit=abc`, headers: admin })).statusCode).toBe(400);
    expect((await inject({ method: 'GET', url: `${API}/history/${uniqueService()}`, headers: admin })).statusCode).toBe(404);
  });

  it('rollback by revision and by version: a versioned write with exactly one audit row', async () => {
    const s = uniqueService();
    await post(s, { v: 1 }, {}, '?version=1.0.0');
    await post(s, { v: 2 }, {}, '?version=2.0.0');
    await post(s, { v: 3 }, {}, '?version=3.0.0');
    const rb = await inject({ method: 'POST', url: `${API}/rollback/${s}?change_reason=bad`, ...json({ revision: 1 }), headers: { ...admin, 'content-type': 'application/json', 'if-match': '"3"' } });
    expect(rb.statusCode).toBe(200);
    expect(rb.json()).toMatchObject({ status: 'rollback', config: { v: 1 }, version: '1.0.0', revision: 4 });
    const stale = await inject({ method: 'POST', url: `${API}/rollback/${s}`, ...json({ revision: 2 }), headers: { ...admin, 'content-type': 'application/json', 'if-match': '"3"' } });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().revision).toBe(4);
    const byVersion = await inject({ method: 'POST', url: `${API}/rollback/${s}`, ...json({ version: '2.0.0' }), headers: { ...admin, 'content-type': 'application/json' } });
    expect(byVersion.json()).toMatchObject({ config: { v: 2 }, revision: 5 });
    const h = (await inject({ method: 'GET', url: `${API}/history/${s}`, headers: admin })).json();
    expect(h.total).toBe(5);
    expect(h.history.map((e: { action: string }) => e.action)).toEqual(['rollback', 'rollback', 'updated', 'updated', 'created']);
    expect(h.history[1].change_reason).toBe('bad');
    const missing = await inject({ method: 'POST', url: `${API}/rollback/${s}`, ...json({ revision: 99 }), headers: { ...admin, 'content-type': 'application/json' } });
    expect(missing.statusCode).toBe(404);
    for (const body of [{}, { revision: 0 }, { revision: 1, version: '1' }, { revision: 'x' }, []]) {
      const bad = await inject({ method: 'POST', url: `${API}/rollback/${s}`, ...json(body), headers: { ...admin, 'content-type': 'application/json' } });
      expect(bad.statusCode, JSON.stringify(body)).toBe(400);
    }
    const rows = await hub.store.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM config_audit_log WHERE service_name = $1 AND action = 'rollback'`,
      [s],
    );
    expect(rows[0]!.n).toBe(2);
  });

  it('health reports store, db and nats (+ the outbox: pending, dead, lag_ms)', async () => {
    const r = await inject({ method: 'GET', url: '/health' });
    expect(r.statusCode).toBe(200);
    // Without NATS there is no relay: rows stay pending, and that is not a degradation.
    expect(r.json()).toEqual({
      status: 'ok',
      store: kind,
      db: true,
      nats: false,
      outbox: { pending: expect.any(Number), dead: 0, lag_ms: expect.any(Number) },
      // The fleet's write-behind (docs/fleet.md §5): what waits, what was dropped; no flush error.
      fleet: { pending: expect.any(Number), dropped: 0 },
      // The read path (issue 13): from memory while the LISTEN on the commits' NOTIFY works.
      reads: expect.objectContaining({ source: 'memory', listening: true, feed_lost: 0 }),
    });
  });

  it('"health", "history" and "rollback" stay valid service names under /api/v1/config', async () => {
    for (const s of ['health', 'history', 'rollback']) {
      expect((await post(s, { x: 1 })).statusCode).toBe(201);
      const r = await inject({ method: 'GET', url: `${API}/${s}`, headers: admin });
      expect(r.json()).toMatchObject({ service_name: s, config: { x: 1 } });
    }
  });

  describe('bad input', () => {
    const badNames = ['Upper', 'a.b', 'a*', 'a>', 'a%20b', '%C3%A9t%C3%A9', 'a%2Fb', 'x'.repeat(101), 'a_b'];
    it.each(badNames)('service name %s → 400 before any SQL', async (name) => {
      for (const method of ['GET', 'POST', 'PATCH', 'DELETE'] as const) {
        const r = await inject({ method, url: `${API}/${name}`, ...(method === 'GET' || method === 'DELETE' ? { headers: admin } : { ...json({ a: 1 }), headers: { ...admin, 'content-type': 'application/json' } }) });
        expect(r.statusCode, `${method} ${name}`).toBe(400);
        expect(r.json()).toEqual({ detail: expect.any(String) });
      }
      expect((await inject({ method: 'GET', url: `${API}/history/${name}`, headers: admin })).statusCode).toBe(400);
    });

    it('a 100-character name is fine', async () => {
      expect((await post('a'.repeat(100), { a: 1 })).statusCode).toBe(201);
    });

    const s = 'bad-input-target';
    const raw = (payload: string, contentType = 'application/json') =>
      inject({ method: 'POST', url: `${API}/${s}`, payload, headers: { ...admin, 'content-type': contentType } });

    it.each([
      ['invalid JSON', '{"a":'],
      ['an array', '[1,2]'],
      ['null', 'null'],
      ['a string', '"x"'],
      ['a number', '42'],
      ['__proto__ key', '{"__proto__":{"polluted":true}}'],
      ['nested constructor key', '{"a":{"b":{"constructor":{"prototype":{}}}}}'],
      ['prototype key', '{"prototype":1}'],
      ['1e309', '{"a":1e309}'],
      ['100 000-deep nesting', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
      ['65-deep objects', `${'{"a":'.repeat(65)}1${'}'.repeat(65)}`],
      ['an empty body', ''],
    ])('%s → 400', async (_label, payload) => {
      const r = await raw(payload);
      expect(r.statusCode).toBe(400);
      expect(r.json()).toEqual({ detail: expect.any(String) });
      expect(JSON.stringify(r.json())).not.toMatch(/at .*\.(ts|js):\d+/);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/merge-patch+json'])('content type %s on POST → 415', async (type) => {
      const r = await raw('{"a":1}', type);
      expect(r.statusCode).toBe(415);
      expect(r.json()).toEqual({ detail: expect.any(String) });
    });

    it('a body over 1 MiB → 413', async () => {
      const r = await raw(JSON.stringify({ blob: 'x'.repeat(1024 * 1024 + 10) }));
      expect(r.statusCode).toBe(413);
      expect(r.json()).toEqual({ detail: expect.any(String) });
    });

    it.each([
      { database: { password: 'x' } },
      { secret: 1 },
      { auth: { token: 'x' } },
      { tls: { private_key: 'x' } },
      { 'api-key': 'x' },
      { apiKey: 'x' },
      { aws: { credentials: {} } },
      { list: [{ db_password: 'x' }] },
      { cert: '-----BEGIN RSA PRIVATE KEY-----\nMII...' },
    ])('secret-looking %j → 422, nothing written', async (body) => {
      const r = await raw(JSON.stringify(body));
      expect(r.statusCode).toBe(422);
      expect(r.json().detail).toMatch(/secret/);
      expect((await inject({ method: 'GET', url: `${API}/${s}`, headers: admin })).statusCode).toBe(404);
    });

    it('PATCH with a secret → 422; version over 20 chars → 400; bad If-Match → 400', async () => {
      const t = uniqueService();
      await post(t, { a: 1 });
      const p = await inject({ method: 'PATCH', url: `${API}/${t}`, ...json({ b: { password: 'x' } }), headers: { ...admin, 'content-type': 'application/json' } });
      expect(p.statusCode).toBe(422);
      const removal = await inject({ method: 'PATCH', url: `${API}/${t}`, ...json({ b: { password: null } }), headers: { ...admin, 'content-type': 'application/json' } });
      expect(removal.statusCode).toBe(200);
      expect((await post(t, { a: 1 }, {}, `?version=${'9'.repeat(21)}`)).statusCode).toBe(400);
      expect((await post(t, { a: 1 }, { 'if-match': 'abc' })).statusCode).toBe(400);
    });

    it('a malformed percent-encoding → 400 {detail} without echoing the URL', async () => {
      const r = await inject({ method: 'GET', url: `${API}/%E0%A4%A`, headers: admin });
      expect(r.statusCode).toBe(400);
      expect(r.json()).toEqual({ detail: 'malformed URL' });
    });

    it('an unknown route → 404 {detail}', async () => {
      const r = await inject({ method: 'GET', url: '/nope' });
      expect(r.statusCode).toBe(404);
      expect(r.json()).toEqual({ detail: expect.any(String) });
    });
  });

  describe('auth', () => {
    it('missing or unknown key → 401 with one uniform body', async () => {
      const bodies = new Set<string>();
      for (const headers of [{}, { 'x-api-key': 'nope' }, { 'x-api-key': '' }, { 'x-api-key': KEYS.admin.key.slice(0, -1) }]) {
        const r = await inject({ method: 'GET', url: `${API}/${SEED}`, headers, remoteAddress: '10.0.0.1' });
        expect(r.statusCode).toBe(401);
        bodies.add(r.body);
      }
      expect(bodies.size).toBe(1);
      expect([...bodies][0]).not.toContain(KEYS.admin.key.slice(0, 8));
    });

    it('scopes: 403 outside them (read other service, write with a read key, history of another service)', async () => {
      const polygon = { 'x-api-key': KEYS.polygon.key };
      const reader = { 'x-api-key': KEYS.reader.key };
      expect((await inject({ method: 'GET', url: `${API}/${SEED}`, headers: polygon })).statusCode).toBe(200);
      expect((await inject({ method: 'GET', url: `${API}/tick-aggregator`, headers: polygon })).statusCode).toBe(403);
      expect((await inject({ method: 'GET', url: `${API}/history/tick-aggregator`, headers: polygon })).statusCode).toBe(403);
      expect((await post('tick-aggregator', { a: 1 }, polygon)).statusCode).toBe(403);
      expect((await post(SEED, { a: 1 }, reader)).statusCode).toBe(403);
      expect((await inject({ method: 'DELETE', url: `${API}/${SEED}`, headers: reader })).statusCode).toBe(403);
      expect((await inject({ method: 'POST', url: `${API}/rollback/${SEED}`, ...json({ revision: 1 }), headers: { ...reader, 'content-type': 'application/json' } })).statusCode).toBe(403);
      const list = await inject({ method: 'GET', url: `${API}/`, headers: polygon });
      expect(list.json().services.map((x: { service_name: string }) => x.service_name)).toEqual([SEED]);
    });

    it('changed_by is the key name; updated_by in the query is ignored with auth on', async () => {
      const s = uniqueService('polygon');
      const r = await post(s, { a: 1 }, { 'x-api-key': KEYS.polygon.key }, '?updated_by=mallory');
      expect(r.json().updated_by).toBe('polygon-rw');
    });

    it('repeated failures from one address → 429 with Retry-After', async () => {
      let last = 0;
      for (let i = 0; i < 25; i++) {
        const r = await inject({ method: 'GET', url: `${API}/${SEED}`, headers: { 'x-api-key': `wrong-${i}` }, remoteAddress: '10.9.9.9' });
        last = r.statusCode;
      }
      expect(last).toBe(429);
      const blocked = await inject({ method: 'GET', url: `${API}/${SEED}`, headers: { 'x-api-key': `wrong` }, remoteAddress: '10.9.9.9' });
      expect(blocked.headers['retry-after']).toBeDefined();
      const other = await inject({ method: 'GET', url: `${API}/${SEED}`, headers: admin, remoteAddress: '10.9.9.10' });
      expect(other.statusCode).toBe(200);
    });
  });
});

describe('hub with auth disabled', () => {
  it('honours updated_by and answers without a key', async () => {
    const { hub, stop } = await startHub('pglite', { disableAuth: true });
    try {
      const s = uniqueService();
      const r = await hub.app.inject({ method: 'POST', url: `${API}/${s}?updated_by=alice`, ...json({ a: 1 }) });
      expect(r.statusCode).toBe(201);
      expect(r.json().updated_by).toBe('alice');
      const h = await hub.app.inject({ method: 'GET', url: `${API}/history/${s}` });
      expect(h.json().history[0].changed_by).toBe('alice');
    } finally {
      await stop();
    }
  });
});
