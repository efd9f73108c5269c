/**
 * Client rows against the reference hub as a child process (`examples/hub/main.ts` on a private database of
 * the shared PostgreSQL, the seed services): C2 hub hung at startup (SIGSTOP), H1 hub SIGKILL + restart under 200 clients, H2 hub hung
 * (SIGSTOP) under load. Scaled timings: H2's "30 s" hang is 5 s against a 300 ms request deadline (the
 * property — deadlines fire, no socket pile-up — only needs the hang to outlast many deadlines).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigClient, type ConfigClientOptions } from '../../src/index.js';
import { adminSql, type FetchStats as CountedStats, countingDispatcher } from '../helpers/chaos.js';
import { cleanupLab, type HubProcess, sleep, startHubProcess, startTcpProxy, type TcpProxy, waitFor } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const SERVICE = 'data-bridge'; // a seed service
// A private database on the shared PostgreSQL (PGlite boots too slowly on a loaded 2-core box for restarts).
const DB_NAME = `chaos_client_${process.pid}_${Date.now().toString(36)}`;
const DB_URL = `postgres://postgres@127.0.0.1:5432/${DB_NAME}`;

let hub: HubProcess;
let proxy: TcpProxy;
let snapshotRoot: string;
let clients: Array<{ close(): Promise<void> }> = [];
let agents: Dispatcher[] = [];

/** Counted requests with their start times (H1's histogram). */
type FetchStats = CountedStats & { starts: number[] };

function countingAgent(stats: FetchStats): Dispatcher {
  const agent = new Agent({ connect: { timeout: 300 }, headersTimeout: 300, bodyTimeout: 300, keepAliveTimeout: 2_000 });
  agents.push(agent);
  return countingDispatcher(agent, stats);
}

function makeClient(hubUrl: string, overrides: Partial<ConfigClientOptions> = {}) {
  const client = new ConfigClient({
    hubUrl,
    snapshotDir: join(snapshotRoot, String(clients.length)),
    cacheTtlMs: 600_000,
    startupTimeoutMs: 1_000,
    pollIntervalMs: false,
    transport: { requestTimeoutMs: 300, connectTimeoutMs: 300, retries: 1, retryBaseDelayMs: 10, retryMaxDelayMs: 50 },
    recovery: { minDelayMs: 100, maxDelayMs: 500 },
    ...overrides,
    services: { [SERVICE]: {} },
  });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  snapshotRoot = await mkdtemp(join(tmpdir(), 'chaos-hubproc-'));
  await adminSql(`CREATE DATABASE ${DB_NAME}`);
  hub = await startHubProcess({ DISABLE_AUTH: 'true', HUB_LOG_LEVEL: 'warn', DATABASE_URL: DB_URL, NATS_URL: undefined }, { timeoutMs: 60_000 });
  proxy = await startTcpProxy({ target: { port: hub.port } });
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(agents.map((a) => a.close()));
  clients = [];
  agents = [];
  if (hub.paused) hub.resume();
  if (!hub.running) hub = await hub.restart();
});

afterAll(async () => {
  await proxy?.close();
  await cleanupLab();
  await adminSql(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`).catch(() => undefined);
  await rm(snapshotRoot, { recursive: true, force: true });
});

describe('client against the hub as a child process', () => {
  it('C2: hub hung (SIGSTOP) at startup → first get bounded by our deadline; no sockets left open', async () => {
    hub.pause();
    const connectionsBefore = proxy.totalConnections;
    let servedWhileHung = 0;
    const latencies: number[] = [];
    for (let i = 0; i < 3; i++) {
      const client = makeClient(proxy.url(), { snapshotDir: false });
      const t0 = performance.now();
      const cfg = await client.get(SERVICE);
      latencies.push(performance.now() - t0);
      expect(cfg).toEqual({});
      expect(client.status(SERVICE)).toMatchObject({ source: 'defaults', stale: true });
      if (hub.paused) servedWhileHung++;
      await client.close();
    }
    await waitFor('sockets closed', () => proxy.connections === 0, { timeoutMs: 3_000 });
    hub.resume();
    expect(Math.max(...latencies)).toBeLessThan(1_000 + 300);
    recordFigure({ row: 'C2', name: 'first get latency, hub hung (startup budget 1 s; median of 3)', value: Math.round([...latencies].sort((a, b) => a - b)[1]!), unit: 'ms' });
    recordFigure({ row: 'C2', name: 'first get latency (max of 3)', value: Math.round(Math.max(...latencies)), unit: 'ms' });
    recordFigure({ row: 'C2', name: 'open sockets after close()', value: proxy.connections, unit: 'count' });
    expectLive('C2', 'first gets served from defaults while the hub was hung (SIGSTOP)', servedWhileHung, 3);
    expectLive('C2', 'connections the clients opened to the hung hub', proxy.totalConnections - connectionsBefore, 3);
  });

  it('H2: hub hung 5 s under 20 clients → deadlines fire, no socket pile-up, status stale, recovery after SIGCONT', async () => {
    const stats: FetchStats = { total: 0, inFlight: 0, maxInFlight: 0, starts: [] };
    const fleet = Array.from({ length: 20 }, () =>
      makeClient(proxy.url(), {
        cacheTtlMs: 200,
        pollIntervalMs: 200,
        transport: { dispatcher: countingAgent(stats), retries: 1, retryBaseDelayMs: 10, retryMaxDelayMs: 50, requestTimeoutMs: 300 },
      }),
    );
    const values = await Promise.all(fleet.map((c) => c.get(SERVICE)));
    hub.pause();
    const requestsBeforeHang = stats.total;
    const hungAt = Date.now();
    let maxSockets = 0;
    let slowGets = 0;
    let wrong = 0;
    while (Date.now() - hungAt < 5_000) {
      maxSockets = Math.max(maxSockets, proxy.connections);
      const t0 = performance.now();
      const got = await Promise.all(fleet.map((c) => c.get(SERVICE)));
      if (performance.now() - t0 > 50) slowGets++;
      wrong += got.filter((v, i) => v !== values[i]).length;
      await sleep(50);
    }
    const staleCount = fleet.filter((c) => c.status(SERVICE).stale).length;
    const errorCodes = new Set(fleet.map((c) => c.status(SERVICE).lastErrorCode));
    const requestsIntoTheHang = stats.total - requestsBeforeHang;
    hub.resume();
    const resumed = Date.now();
    await waitFor('all fresh again', () => fleet.every((c) => !c.status(SERVICE).stale), { timeoutMs: 5_000 });
    recordFigure({ row: 'H2', name: 'max open sockets per client during the hang', value: maxSockets / fleet.length, unit: 'sockets' });
    recordFigure({ row: 'H2', name: 'clients stale during the hang', value: `${staleCount}/${fleet.length}` });
    recordFigure({ row: 'H2', name: 'time to all fresh after SIGCONT', value: Date.now() - resumed, unit: 'ms' });
    expect(staleCount).toBe(fleet.length);
    expect([...errorCodes]).toEqual(['HUB_UNREACHABLE']);
    // Per client: the fetch, one retry, and a fleet report request (docs/fleet.md) that the hang caught.
    expect(maxSockets).toBeLessThanOrEqual(fleet.length * 3);
    expect(slowGets).toBe(0);
    expect(wrong).toBe(0);
    expectLive('H2', 'requests sent into the hung hub (deadlines had something to cut)', requestsIntoTheHang, fleet.length);
  });

  it('H1: hub SIGKILL + restart with 200 clients → caches served, re-fetches spread by jitter, single-flight per client', async () => {
    const total: FetchStats = { total: 0, inFlight: 0, maxInFlight: 0, starts: [] };
    const perClient: FetchStats[] = [];
    const fleet = Array.from({ length: 200 }, () => {
      const stats: FetchStats = { total: 0, inFlight: 0, maxInFlight: 0, starts: [] };
      perClient.push(stats);
      const dispatcher = countingAgent(stats);
      return makeClient(hub.url, {
        cacheTtlMs: 300,
        snapshotDir: false,
        recovery: { minDelayMs: 200, maxDelayMs: 1_000 },
        transport: { dispatcher, retries: 1, retryBaseDelayMs: 20, retryMaxDelayMs: 100, requestTimeoutMs: 500 },
      });
    });
    await Promise.all(fleet.map((c) => c.get(SERVICE)));
    // Under load a first load can miss its 1 s budget and start from defaults: wait until all hold the hub's value.
    await waitFor('all 200 clients hold the hub value', () => fleet.every((c) => c.status(SERVICE).source === 'hub'), { timeoutMs: 15_000 });
    const values = await Promise.all(fleet.map((c) => c.get(SERVICE)));
    await hub.kill();
    const killed = Date.now();
    let wrong = 0;
    while (Date.now() - killed < 1_500) {
      const got = await Promise.all(fleet.map((c) => c.get(SERVICE)));
      wrong += got.filter((v, i) => v === undefined || JSON.stringify(v) !== JSON.stringify(values[i])).length;
      await sleep(100);
    }
    expect(fleet.every((c) => c.status(SERVICE).stale)).toBe(true);
    hub = await hub.restart();
    const up = Date.now();
    // Fresh = answered by the restarted hub and not failing (the 300 ms TTL makes `stale` flip back quickly).
    await waitFor('all fresh after restart', () => fleet.every((c) => c.status(SERVICE).lastErrorCode === undefined && (c.status(SERVICE).lastFetchAt ?? 0) >= up), {
      timeoutMs: 10_000,
      intervalMs: 10,
    });
    const allFreshMs = Date.now() - up;
    for (const s of perClient) {
      total.total += s.total;
      total.maxInFlight = Math.max(total.maxInFlight, s.maxInFlight);
      total.starts.push(...s.starts.filter((t) => t >= up));
    }
    const buckets = new Map<number, number>();
    for (const t of total.starts) buckets.set(Math.floor((t - up) / 100), (buckets.get(Math.floor((t - up) / 100)) ?? 0) + 1);
    const peak = Math.max(0, ...buckets.values());
    recordFigure({ row: 'H1', name: 'peak GETs per 100 ms after restart (200 clients)', value: peak, unit: 'req/100ms' });
    recordFigure({ row: 'H1', name: 'GETs in the first 2 s after restart', value: total.starts.filter((t) => t - up < 2_000).length, unit: 'count' });
    recordFigure({ row: 'H1', name: 'time until all 200 clients fresh', value: allFreshMs, unit: 'ms' });
    recordFigure({ row: 'H1', name: 'max requests in flight per client', value: total.maxInFlight, unit: 'count' });
    recordFigure({ row: 'H1', name: 'wrong/undefined reads while the hub was down', value: wrong, unit: 'count' });
    expect(wrong).toBe(0);
    // A recovery request may start while the hub boots and be answered once it is up: count answers, not starts.
    const answeredAfterRestart = fleet.filter((c) => (c.status(SERVICE).lastFetchAt ?? 0) >= up).length;
    expectLive('H1', 'clients answered by the restarted hub (after SIGKILL)', answeredAfterRestart, fleet.length);
    expect(total.maxInFlight).toBe(1);
    // Jitter spreads the herd: never all 200 clients in one 100 ms bucket.
    expect(peak).toBeLessThan(200);
  });
});
