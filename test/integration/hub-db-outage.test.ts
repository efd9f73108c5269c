import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildHub, type Hub } from '../../examples/hub/server.js';
import { dropSchema, TcpProxy, uniqueSchema } from '../helpers/hub-fixtures.js';

/** The hub's PostgreSQL goes away (a TCP proxy the test owns drops every connection): 503, never a hang. */
describe('hub with its database down (PostgreSQL behind a test-owned proxy, real sockets)', () => {
  const schema = uniqueSchema('hubdown');
  let proxy: TcpProxy;
  let hub: Hub;
  let url: string;

  beforeAll(async () => {
    proxy = new TcpProxy(5432);
    const port = await proxy.listen();
    hub = await buildHub({
      databaseUrl: `postgres://postgres@127.0.0.1:${port}/test`,
      pgSchema: schema,
      disableAuth: true,
      connectionTimeoutMs: 1000,
      statementTimeoutMs: 1000,
      changeFeedPingMs: 200,
    });
    url = await hub.listen({ port: 0 });
  });
  afterAll(async () => {
    await hub?.close();
    await proxy?.close();
    await dropSchema(schema);
  });

  const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const started = Date.now();
    const res = await request(`${url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: 10_000,
    });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text(), ms: Date.now() - started };
  };

  // GET answers from memory while the LISTEN on the commits' NOTIFY works (issue 13): a database that is
  // gone or hung ends that within the feed's ping (200 ms here), and reads go to the database (503).
  const untilUnavailable = async (path: string): Promise<number> => {
    const started = Date.now();
    await vi.waitFor(async () => expect((await call('GET', path)).status).toBe(503), { timeout: 5000, interval: 20 });
    return Date.now() - started;
  };

  it('answers 503 with Retry-After and no stack trace while the database is down, and recovers', async () => {
    expect((await call('GET', '/api/v1/config/data-bridge')).status).toBe(200);
    proxy.cut();
    console.log(`[hub-db-outage] cut: GET from memory ended after ${await untilUnavailable('/api/v1/config/data-bridge')} ms`);
    const results = [
      await call('GET', '/api/v1/config/data-bridge'),
      await call('POST', '/api/v1/config/data-bridge', { a: 1 }),
      await call('GET', '/api/v1/config/history/data-bridge'),
      await call('GET', '/api/v1/config/'),
    ];
    for (const r of results) {
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBeDefined();
      expect(JSON.parse(r.text)).toEqual({ detail: expect.any(String) });
      expect(r.text).not.toMatch(/\.ts:|\.js:|node_modules|SELECT|ECONN/);
      expect(r.ms).toBeLessThan(5000);
    }
    const health = await call('GET', '/health');
    expect(health.status).toBe(503);
    expect(JSON.parse(health.text)).toMatchObject({ status: 'unavailable', db: false, store: 'postgres' });
    console.log(`[hub-db-outage] 503 latencies ms: ${results.map((r) => r.ms).join(', ')}; health ${health.ms} ms`);

    proxy.restore();
    let recovered = 0;
    for (let i = 0; i < 50 && recovered !== 200; i++) {
      recovered = (await call('GET', '/api/v1/config/data-bridge')).status;
      if (recovered !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(200);
  });

  it('answers 503 within its deadlines while the database hangs (accepts, never answers)', async () => {
    expect((await call('GET', '/api/v1/config/tick-aggregator')).status).toBe(200);
    proxy.hang();
    const ended = await untilUnavailable('/api/v1/config/tick-aggregator');
    console.log(`[hub-db-outage] hang: GET from memory ended after ${ended} ms`);
    // The ping (200 ms) unanswered for its timeout (200 ms), plus the 503's own deadline.
    expect(ended).toBeLessThan(4000);
    const results = await Promise.all([
      call('GET', '/api/v1/config/tick-aggregator'),
      call('POST', '/api/v1/config/tick-aggregator', { a: 1 }),
    ]);
    console.log(`[hub-db-outage] hung database: statuses ${results.map((r) => r.status).join(', ')}, ms ${results.map((r) => r.ms).join(', ')}`);
    for (const r of results) {
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBeDefined();
      expect(r.ms).toBeLessThan(6000);
    }
    proxy.restore();
    let recovered = 0;
    for (let i = 0; i < 50 && recovered !== 200; i++) {
      recovered = (await call('GET', '/api/v1/config/tick-aggregator')).status;
      if (recovered !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(200);
  });
});
