/**
 * Issue 12: the reference hub's `GET /metrics` (examples/hub/metrics/, README "Metrics"), over real
 * sockets against real hubs on PGlite (one case on PostgreSQL), with the shared nats-server on 4222 and a
 * private one for the outage. The text is parsed strictly (test/helpers/prom-text.ts) and the counters
 * are compared with the exact numbers of requests made.
 */
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Hub, HubOptions } from '../../examples/hub/server.js';
import { call, report, reportHeader } from '../helpers/fleet-http.js';
import {
  dropSchema,
  KEYS,
  PrivateNats,
  SHARED_NATS_URL,
  type StoreKind,
  startHub,
  uniqueService,
  waitFor,
} from '../helpers/hub-fixtures.js';
import { type Family, parsePrometheusText, sampleValue, samplesOf } from '../helpers/prom-text.js';

const API = '/api/v1/config';
const started: Array<{ hub: Hub; schema: string | undefined }> = [];

async function hubOn(kind: StoreKind, options: HubOptions = {}): Promise<{ hub: Hub; base: string }> {
  const s = await startHub(kind, { seed: false, metricsCacheMs: 0, relayIntervalMs: 100, ...options });
  started.push(s);
  return { hub: s.hub, base: await s.hub.listen({ host: '127.0.0.1', port: 0 }) };
}

afterEach(async () => {
  vi.restoreAllMocks();
  for (const s of started.splice(0)) {
    await s.hub.close();
    if (s.schema !== undefined) await dropSchema(s.schema);
  }
});

async function scrape(base: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string }> {
  const res = await request(`${base}/metrics`, { headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
  return { status: res.statusCode, type: String(res.headers['content-type']), text: await res.body.text() };
}

async function metrics(base: string): Promise<Map<string, Family>> {
  const r = await scrape(base);
  expect(r.status).toBe(200);
  expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheusText(r.text);
}

const requests = (m: Map<string, Family>, route: string, method: string, status: number) =>
  sampleValue(m, 'hub_http_requests_total', { route, method, status: String(status) });

/** What a series grew by between two scrapes (a series absent before counts from 0). */
function grew(before: Map<string, Family>, after: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const of = (m: Map<string, Family>) => samplesOf(m, name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  const sum = (m: Map<string, Family>) => of(m).reduce((n, s) => n + s.value, 0);
  if (of(after).length === 0) throw new Error(`no ${name}${JSON.stringify(labels)} in the second scrape`);
  return sum(after) - sum(before);
}

/** A key of its own for the leak test: its name must never show in /metrics. */
const LEAK_KEY = { name: 'scraper-owner-7f3q', key: 'secretive-key-9d1x-0123456789', scopes: ['read:*', 'write:*'] };

/** A service created with `{ a: 1 }` (revision 1). */
async function created(base: string, prefix: string): Promise<string> {
  const service = uniqueService(prefix);
  expect((await call(base, 'POST', `${API}/${service}`, { body: { a: 1 } })).status).toBe(201);
  return service;
}

describe('hub /metrics on PGlite', () => {
  // One hub for the tests that measure what they did (what grew between two scrapes); the tests that need
  // a hub configured otherwise, or an untouched one, start their own.
  let shared: { hub: Hub; base: string; schema: string | undefined };
  beforeAll(async () => {
    const s = await startHub('pglite', { seed: false, metricsCacheMs: 0, apiKeys: [...Object.values(KEYS), LEAK_KEY] });
    shared = { hub: s.hub, schema: s.schema, base: await s.hub.listen({ host: '127.0.0.1', port: 0 }) };
  });
  afterAll(async () => {
    await shared?.hub.close();
  });

  it('counts every request exactly, by route pattern (never the URL), method and status; unknown routes as "unmatched"', async () => {
    const { base } = shared;
    const before = await metrics(base);
    const service = await created(base, 'count');
    const get = await call(base, 'GET', `${API}/${service}`);
    for (let i = 0; i < 2; i++) expect((await call(base, 'GET', `${API}/${service}`)).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      expect((await call(base, 'GET', `${API}/${service}`, { headers: { 'if-none-match': String(get.headers.etag) } })).status).toBe(304);
    }
    expect((await call(base, 'PATCH', `${API}/${service}`, { body: { b: 2 } })).status).toBe(200);
    expect((await call(base, 'POST', `${API}/${service}`, { body: { db: { password: 'x' } } })).status).toBe(422);
    expect((await call(base, 'POST', `${API}/${service}`, { body: { a: 3 }, headers: { 'if-match': '"1"' } })).status).toBe(412);
    expect((await call(base, 'GET', `${API}/${uniqueService('absent')}`)).status).toBe(404);
    expect((await call(base, 'GET', `/no/such/${service}`)).status).toBe(404);
    expect((await call(base, 'DELETE', `/no/such/${service}`)).status).toBe(404);
    expect((await call(base, 'GET', `${API}/`)).status).toBe(200);
    expect((await call(base, 'GET', `${API}/history/${service}`)).status).toBe(200);
    expect((await call(base, 'GET', `${API}/${service}`, { key: null })).status).toBe(401);

    const m = await metrics(base);
    const pattern = `${API}/:service`;
    const counted = (route: string, method: string, status: number) =>
      grew(before, m, 'hub_http_requests_total', { route, method, status: String(status) });
    expect(counted(pattern, 'POST', 201)).toBe(1);
    expect(counted(pattern, 'GET', 200)).toBe(3);
    expect(counted(pattern, 'GET', 304)).toBe(2);
    expect(counted(pattern, 'PATCH', 200)).toBe(1);
    expect(counted(pattern, 'POST', 422)).toBe(1);
    expect(counted(pattern, 'POST', 412)).toBe(1);
    expect(counted(pattern, 'GET', 404)).toBe(1);
    expect(counted(pattern, 'GET', 401)).toBe(1);
    expect(counted('unmatched', 'GET', 404)).toBe(1);
    expect(counted('unmatched', 'DELETE', 404)).toBe(1);
    expect(counted(API, 'GET', 200)).toBe(1);
    expect(counted(`${API}/history/:service`, 'GET', 200)).toBe(1);
    // The first scrape, counted once it had answered.
    expect(counted('/metrics', 'GET', 200)).toBe(1);
    // Nothing else was counted.
    expect(grew(before, m, 'hub_http_requests_total')).toBe(16);
    // Bounded cardinality: patterns only; no service name, no query, in any label.
    for (const s of samplesOf(m, 'hub_http_requests_total')) {
      expect(s.labels.route === 'unmatched' || s.labels.route!.startsWith('/')).toBe(true);
      expect(JSON.stringify(s.labels)).not.toContain(service);
    }
    // The duration histogram saw the same requests per (route, method).
    expect(grew(before, m, 'hub_http_request_duration_seconds_count', { route: pattern, method: 'GET' })).toBe(7);
    expect(grew(before, m, 'hub_http_request_duration_seconds_count', { route: pattern, method: 'POST' })).toBe(3);
    expect(grew(before, m, 'hub_http_request_duration_seconds_sum', { route: pattern, method: 'GET' })).toBeGreaterThan(0);
  });

  it('counts committed, refused (422) and conflicting (412) writes by action, and the write histogram times each committed write', async () => {
    const { base } = shared;
    const before = await metrics(base);
    const service = await created(base, 'writes'); // replace, committed (revision 1)
    expect((await call(base, 'PATCH', `${API}/${service}`, { body: { b: 2 } })).status).toBe(200); // patch, committed (2)
    expect((await call(base, 'PATCH', `${API}/${service}`, { body: { token: 'x' } })).status).toBe(422); // patch, refused
    expect((await call(base, 'POST', `${API}/${service}`, { body: { api_key: 'x' } })).status).toBe(422); // replace, refused
    expect((await call(base, 'PATCH', `${API}/${service}`, { body: { c: 3 }, headers: { 'if-match': '"1"' } })).status).toBe(412); // patch, conflict
    expect((await call(base, 'POST', `${API}/rollback/${service}`, { body: { revision: 1 } })).status).toBe(200); // rollback, committed (3)
    expect((await call(base, 'DELETE', `${API}/${service}`, { headers: { 'if-match': '"2"' } })).status).toBe(412); // delete, conflict
    expect((await call(base, 'DELETE', `${API}/${service}`, { headers: { 'if-match': '"3"' } })).status).toBe(200); // delete, committed
    // Not writes the hub refused: a bad request is only an HTTP 400/428.
    expect((await call(base, 'DELETE', `${API}/${service}`)).status).toBe(428);

    const m = await metrics(base);
    const writes = (action: string, outcome: string) => grew(before, m, 'hub_writes_total', { action, outcome });
    expect({
      replace: [writes('replace', 'committed'), writes('replace', 'refused'), writes('replace', 'conflict')],
      patch: [writes('patch', 'committed'), writes('patch', 'refused'), writes('patch', 'conflict')],
      rollback: [writes('rollback', 'committed'), writes('rollback', 'refused'), writes('rollback', 'conflict')],
      delete: [writes('delete', 'committed'), writes('delete', 'refused'), writes('delete', 'conflict')],
    }).toEqual({ replace: [1, 1, 0], patch: [1, 1, 1], rollback: [1, 0, 0], delete: [1, 0, 1] });
    for (const action of ['replace', 'patch', 'rollback', 'delete']) {
      expect(grew(before, m, 'hub_write_duration_seconds_count', { action })).toBe(1);
      expect(grew(before, m, 'hub_write_duration_seconds_sum', { action })).toBeGreaterThan(0);
      expect(grew(before, m, 'hub_write_duration_seconds_bucket', { action, le: '+Inf' })).toBe(1);
    }
  });

  it('reports the outbox from the store: without NATS every write stays pending and the lag grows', async () => {
    const { base } = shared;
    const before = await metrics(base);
    const service = await created(base, 'outbox');
    expect((await call(base, 'PATCH', `${API}/${service}`, { body: { b: 2 } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    const m = await metrics(base);
    expect(sampleValue(m, 'hub_outbox_stats_up')).toBe(1);
    expect(grew(before, m, 'hub_outbox_pending')).toBe(2);
    expect(sampleValue(m, 'hub_outbox_dead')).toBe(0);
    expect(sampleValue(m, 'hub_outbox_lag_seconds')).toBeGreaterThanOrEqual(0.05);
    expect(m.get('hub_outbox_lag_seconds')?.type).toBe('gauge');
  });

  it('hub_nats_connected is 1 with NATS (and every notice published is counted), 0 without; hub_nats_state names the state', async () => {
    const withNats = await hubOn('pglite', { natsUrl: SHARED_NATS_URL });
    await waitFor(() => withNats.hub.broadcaster.connected);
    const service = await created(withNats.base, 'nats');
    expect((await call(withNats.base, 'PATCH', `${API}/${service}`, { body: { b: 2 } })).status).toBe(200);
    const on = await metrics(withNats.base);
    expect(sampleValue(on, 'hub_nats_connected')).toBe(1);
    expect(sampleValue(on, 'hub_nats_state', { state: 'connected' })).toBe(1);
    expect(samplesOf(on, 'hub_nats_state').filter((s) => s.value === 1)).toHaveLength(1);
    expect(sampleValue(on, 'hub_notices_published_total')).toBe(2);
    expect(sampleValue(on, 'hub_outbox_pending')).toBe(0);
    expect(sampleValue(on, 'hub_nats_reconnects_total')).toBe(0);

    const off = await metrics(shared.base);
    expect(sampleValue(off, 'hub_nats_connected')).toBe(0);
    expect(sampleValue(off, 'hub_nats_state', { state: 'off' })).toBe(1);
    expect(samplesOf(off, 'hub_nats_state').filter((s) => s.value === 1)).toHaveLength(1);
  });

  it('a NATS outage shows: hub_nats_connected 0 and the state reconnecting while down, 1 and one reconnect after', async () => {
    const nats = await PrivateNats.start();
    try {
      const { hub, base } = await hubOn('pglite', { natsUrl: nats.url });
      await waitFor(() => hub.broadcaster.connected);
      await nats.stop();
      await waitFor(() => !hub.broadcaster.connected);
      await waitFor(() => hub.broadcaster.natsState === 'reconnecting');
      const down = await metrics(base);
      expect(sampleValue(down, 'hub_nats_connected')).toBe(0);
      expect(sampleValue(down, 'hub_nats_state', { state: 'reconnecting' })).toBe(1);
      await nats.start();
      await waitFor(() => hub.broadcaster.connected, 15_000);
      const up = await metrics(base);
      expect(sampleValue(up, 'hub_nats_connected')).toBe(1);
      expect(sampleValue(up, 'hub_nats_state', { state: 'connected' })).toBe(1);
      expect(sampleValue(up, 'hub_nats_reconnects_total')).toBe(1);
    } finally {
      await nats.dispose();
    }
  });

  it('hub_instances counts the reporting instances by service and state (on_latest, behind, rejected) after their reports', async () => {
    const { base } = shared;
    const service = await created(base, 'fleet');
    expect((await call(base, 'PATCH', `${API}/${service}`, { body: { b: 2 } })).status).toBe(200); // revision 2
    const reports = [
      report('i-1', { [service]: { revision: 2 } }),
      report('i-2', { [service]: { revision: 2 } }),
      report('i-3', { [service]: { revision: 1 } }),
      report('i-4', { [service]: { revision: 1, error: 'CONFIG_INVALID' } }),
    ];
    for (const r of reports) expect((await call(base, 'GET', `${API}/${service}`, { headers: reportHeader(r) })).status).toBe(200);
    const m = await metrics(base);
    expect(sampleValue(m, 'hub_instances_stats_up')).toBe(1);
    expect(sampleValue(m, 'hub_instances', { service, state: 'on_latest' })).toBe(2);
    expect(sampleValue(m, 'hub_instances', { service, state: 'behind' })).toBe(1);
    expect(sampleValue(m, 'hub_instances', { service, state: 'rejected' })).toBe(1);
    // Instance ids and hosts are never labels.
    expect(JSON.stringify(samplesOf(m, 'hub_instances'))).not.toMatch(/i-1|host-/);
  });

  it('hub_instances names at most metricsMaxServices services (most instances first); the others are summed as service="_other"', async () => {
    const { base } = await hubOn('pglite', { metricsMaxServices: 2 });
    const services = [await created(base, 'big'), await created(base, 'mid'), await created(base, 'small'), await created(base, 'tiny')];
    const sizes = [4, 3, 2, 1];
    for (const [i, service] of services.entries()) {
      for (let n = 0; n < sizes[i]!; n++) {
        const r = report(`${service}-${n}`, { [service]: { revision: 1 } });
        expect((await call(base, 'GET', `${API}/${service}`, { headers: reportHeader(r) })).status).toBe(200);
      }
    }
    const m = await metrics(base);
    const listed = new Set(samplesOf(m, 'hub_instances').map((s) => s.labels.service));
    expect(listed).toEqual(new Set([services[0], services[1], '_other']));
    expect(sampleValue(m, 'hub_instances', { service: services[0]!, state: 'on_latest' })).toBe(4);
    expect(sampleValue(m, 'hub_instances', { service: services[1]!, state: 'on_latest' })).toBe(3);
    expect(sampleValue(m, 'hub_instances', { service: '_other', state: 'on_latest' })).toBe(3);
    expect(samplesOf(m, 'hub_instances')).toHaveLength(9);
  });

  it('a database that fails or hangs on scrape: still 200, hub_outbox_stats_up 0 and no outbox values (never a stale or a false 0)', async () => {
    const { hub, base } = shared;
    vi.spyOn(hub.store, 'outboxStats').mockRejectedValue(new Error('connection terminated'));
    vi.spyOn(hub.fleet.instances, 'counts').mockRejectedValue(new Error('connection terminated'));
    const failed = await metrics(base);
    expect(sampleValue(failed, 'hub_outbox_stats_up')).toBe(0);
    expect(samplesOf(failed, 'hub_outbox_pending')).toEqual([]);
    expect(samplesOf(failed, 'hub_outbox_dead')).toEqual([]);
    expect(samplesOf(failed, 'hub_outbox_lag_seconds')).toEqual([]);
    expect(sampleValue(failed, 'hub_instances_stats_up')).toBe(0);
    expect(samplesOf(failed, 'hub_instances')).toEqual([]);
    // The rest of the scrape is whole.
    expect(sampleValue(failed, 'hub_nats_state', { state: 'off' })).toBe(1);

    vi.spyOn(hub.store, 'outboxStats').mockReturnValue(new Promise(() => {}));
    const t0 = Date.now();
    const hung = await metrics(base);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(sampleValue(hung, 'hub_outbox_stats_up')).toBe(0);

    vi.restoreAllMocks();
    const back = await metrics(base);
    expect(sampleValue(back, 'hub_outbox_stats_up')).toBe(1);
    expect(sampleValue(back, 'hub_outbox_pending')).toBeGreaterThanOrEqual(0);
  });

  it('a scrape storm reads the database once per cache period (metricsCacheMs)', async () => {
    const { hub, base } = await hubOn('pglite', { metricsCacheMs: 60_000 });
    const stats = vi.spyOn(hub.store, 'outboxStats');
    const counts = vi.spyOn(hub.fleet.instances, 'counts');
    const all = await Promise.all(Array.from({ length: 20 }, () => scrape(base)));
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
    for (let i = 0; i < 5; i++) await metrics(base);
    expect(stats).toHaveBeenCalledTimes(1);
    expect(counts).toHaveBeenCalledTimes(1);
  });

  it('two hubs in one process count apart (a registry each), and both serve the process metrics (prefix hub_)', async () => {
    const a = shared;
    const b = await hubOn('pglite');
    const service = await created(a.base, 'apart');
    expect((await call(a.base, 'GET', `${API}/${service}`)).status).toBe(200);
    const ma = await metrics(a.base);
    const mb = await metrics(b.base);
    expect(requests(ma, `${API}/:service`, 'GET', 200)).toBeGreaterThanOrEqual(1);
    expect(samplesOf(mb, 'hub_http_requests_total')).toEqual([]);
    expect(sampleValue(mb, 'hub_writes_total', { action: 'replace', outcome: 'committed' })).toBe(0);
    for (const m of [ma, mb]) {
      expect(sampleValue(m, 'hub_process_cpu_user_seconds_total')).toBeGreaterThan(0);
      expect(sampleValue(m, 'hub_process_start_time_seconds')).toBeGreaterThan(0);
      expect(sampleValue(m, 'hub_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
      expect(m.get('hub_nodejs_eventloop_lag_seconds')?.type).toBe('gauge');
    }
  });

  it('never exposes a config value or an API key name', async () => {
    const { base } = shared;
    const service = uniqueService('leak');
    const opts = { key: LEAK_KEY.key };
    expect((await call(base, 'POST', `${API}/${service}`, { ...opts, body: { marker: 'VALUE-zq8w' } })).status).toBe(201);
    expect((await call(base, 'GET', `${API}/${service}`, opts)).status).toBe(200);
    expect((await call(base, 'GET', `${API}/${service}`, { key: 'wrong-key' })).status).toBe(401);
    const text = (await scrape(base)).text;
    parsePrometheusText(text);
    for (const leak of ['VALUE-zq8w', 'marker', 'scraper-owner-7f3q', 'secretive-key', 'wrong-key']) expect(text).not.toContain(leak);
  });

  it('with metricsApiKey, /metrics needs that key as Authorization: Bearer or X-API-Key (401 otherwise; the API keys do not open it)', async () => {
    const key = 'metrics-key-5b2c-0123456789';
    const { base } = await hubOn('pglite', { metricsApiKey: key });
    const open = await scrape(base);
    expect(open.status).toBe(401);
    expect(JSON.parse(open.text)).toEqual({ detail: 'missing or invalid metrics key' });
    const none = await request(`${base}/metrics`);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="hub metrics"');
    await none.body.dump();
    expect((await scrape(base, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await scrape(base, { authorization: `Basic ${key}` })).status).toBe(401);
    expect((await scrape(base, { 'x-api-key': KEYS.admin.key })).status).toBe(401);
    expect((await scrape(base, { authorization: `Bearer ${KEYS.admin.key}` })).status).toBe(401);
    const bearer = await scrape(base, { authorization: `Bearer ${key}` });
    expect(bearer.status).toBe(200);
    parsePrometheusText(bearer.text);
    expect((await scrape(base, { 'x-api-key': key })).status).toBe(200);
    // The API is unaffected: the metrics key opens nothing there.
    expect((await call(base, 'GET', `${API}/`, { key })).status).toBe(401);
  });

  it('refuses bad metrics options at build time', async () => {
    const { buildHub } = await import('../../examples/hub/server.js');
    await expect(buildHub({ metricsApiKey: '' })).rejects.toThrow(/metricsApiKey/);
    await expect(buildHub({ metricsCacheMs: -1 })).rejects.toThrow(/metricsCacheMs/);
    await expect(buildHub({ metricsMaxServices: 1.5 })).rejects.toThrow(/metricsMaxServices/);
  });
});

describe('hub /metrics on PostgreSQL', () => {
  it('on PostgreSQL with NATS: exact request and write counts, the outbox read from the database (published: none pending), NATS 1', async () => {
    const { hub, base } = await hubOn('postgres', { natsUrl: SHARED_NATS_URL });
    await waitFor(() => hub.broadcaster.connected);
    const service = await created(base, 'pg');
    expect((await call(base, 'GET', `${API}/${service}`)).status).toBe(200);
    expect((await call(base, 'POST', `${API}/${service}`, { body: { a: 2 }, headers: { 'if-match': '"7"' } })).status).toBe(412);
    expect((await call(base, 'POST', `${API}/${service}`, { body: { password: 'x' } })).status).toBe(422);
    const m = await metrics(base);
    expect(requests(m, `${API}/:service`, 'POST', 201)).toBe(1);
    expect(requests(m, `${API}/:service`, 'GET', 200)).toBe(1);
    expect(requests(m, `${API}/:service`, 'POST', 412)).toBe(1);
    expect(requests(m, `${API}/:service`, 'POST', 422)).toBe(1);
    expect(sampleValue(m, 'hub_writes_total', { action: 'replace', outcome: 'committed' })).toBe(1);
    expect(sampleValue(m, 'hub_writes_total', { action: 'replace', outcome: 'conflict' })).toBe(1);
    expect(sampleValue(m, 'hub_writes_total', { action: 'replace', outcome: 'refused' })).toBe(1);
    expect(sampleValue(m, 'hub_write_duration_seconds_count', { action: 'replace' })).toBe(1);
    expect(sampleValue(m, 'hub_outbox_stats_up')).toBe(1);
    expect(sampleValue(m, 'hub_outbox_pending')).toBe(0);
    expect(sampleValue(m, 'hub_outbox_dead')).toBe(0);
    expect(sampleValue(m, 'hub_nats_connected')).toBe(1);
    expect(sampleValue(m, 'hub_instances_stats_up')).toBe(1);
  });
});
