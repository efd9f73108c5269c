/**
 * NATS rows against a private nats-server (never the shared one on 4222) and the reference hub in-process
 * (on a private schema of the shared PostgreSQL) publishing to it: N1 restart, N2 long outage, N3 hang, N4 client cut off, N8 storm.
 *
 * Timings are scaled down so the file runs in well under a minute: the client's nats options use
 * reconnectTimeWait 200 ms (jitter 100 ms), pingInterval 500 ms, maxPingOut 2. N2's "60 s down, longer than
 * nats' default 10 × 2 s reconnect budget" becomes 6 s down against a 10 × 200 ms (+ jitter) budget: the
 * outage is ~2–3× longer than what nats' default maxReconnectAttempts would survive, which is the property
 * tested (the client forces unlimited reconnects).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildHub, type Hub } from '../../examples/hub/server.js';
import { ConfigClient, type ConfigClientOptions } from '../../src/index.js';
import { CHAOS_PG_URL, closeChaosHub, countingDispatcher, type FetchStats, median, serviceSeq, uniqueService, writeConfig } from '../helpers/chaos.js';
import { type NatsServerHandle, sleep, startNatsServer, startTcpProxy, waitFor } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const NATS_TIMINGS = { reconnectTimeWait: 200, reconnectJitter: 100, pingInterval: 500, maxPingOut: 2 };

let nats: NatsServerHandle;
let hub: Hub;
// The hub's store: a private schema on the shared PostgreSQL (PGlite boots slowly on a loaded 2-core box).
const PG_SCHEMA = `chaos_ns_${process.pid}_${Date.now().toString(36)}`;
let hubUrl: string;
let snapshotRoot: string;
let clients: Array<{ close(): Promise<void> }> = [];
let agents: Dispatcher[] = [];

function countingAgent(stats: FetchStats): Dispatcher {
  const agent = new Agent({ connect: { timeout: 1_000 }, keepAliveTimeout: 1_000 });
  agents.push(agent);
  return countingDispatcher(agent, stats);
}

const write = (service: string, config: Record<string, unknown>) => writeConfig(hub, service, config);

function makeClient(service: string, natsUrl: string | string[], overrides: Partial<ConfigClientOptions> = {}, stats?: FetchStats) {
  const client = new ConfigClient({
    hubUrl,
    snapshotDir: join(snapshotRoot, `${serviceSeq()}-${clients.length}`),
    cacheTtlMs: 600_000,
    pollIntervalMs: false,
    transport: { requestTimeoutMs: 1_000, connectTimeoutMs: 500, retryBaseDelayMs: 10, retryMaxDelayMs: 50, ...(stats ? { dispatcher: countingAgent(stats) } : {}) },
    recovery: { minDelayMs: 50, maxDelayMs: 200 },
    nats: { servers: natsUrl, connectOptions: NATS_TIMINGS },
    ...overrides,
    services: { [service]: {} },
  });
  clients.push(client);
  return client;
}

const revisionOf = (client: { status(name: string): { revision: number | undefined } }, service: string) => client.status(service).revision ?? -1;

beforeAll(async () => {
  snapshotRoot = await mkdtemp(join(tmpdir(), 'chaos-nats-'));
  nats = await startNatsServer();
  hub = await buildHub({
    databaseUrl: CHAOS_PG_URL,
    pgSchema: PG_SCHEMA, disableAuth: true, natsUrl: nats.url, seed: false, relayIntervalMs: 200 });
  hubUrl = await hub.listen({ port: 0 });
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(agents.map((a) => a.close()));
  clients = [];
  agents = [];
  if (!nats.running) await nats.restart();
  if (nats.paused) nats.resume();
});

afterAll(async () => {
  await closeChaosHub(hub, PG_SCHEMA, snapshotRoot);
});

describe('NATS faults (private nats-server)', () => {
  it('N1: nats-server killed, a change committed meanwhile, restarted → reconnect, resync, converged (3 rounds)', async () => {
    const service = uniqueService('N1');
    await write(service, { round: 0 });
    // No poll: convergence must come from the reconnect resync alone.
    const client = makeClient(service, nats.url);
    await client.get(service);
    await waitFor('nats connected', () => client.status(service).nats === 'connected');
    const times: number[] = [];
    let kills = 0;
    for (let round = 1; round <= 3; round++) {
      await nats.kill();
      kills++;
      const revision = await write(service, { round });
      await sleep(2_000);
      expect(revisionOf(client, service)).toBeLessThan(revision);
      await nats.restart();
      const restarted = Date.now();
      await waitFor('converged after restart', () => revisionOf(client, service) >= revision, { timeoutMs: 10_000, intervalMs: 5 });
      times.push(Date.now() - restarted);
      expect(await client.get(service)).toEqual({ round });
    }
    recordFigure({ row: 'N1', name: 'time to converge after restart (median of 3, 2 s down)', value: median(times), unit: 'ms' });
    recordFigure({ row: 'N1', name: 'time to converge after restart (max of 3)', value: Math.max(...times), unit: 'ms' });
    expectLive('N1', 'nats-server kills (faults injected)', kills, 3);
    expectLive('N1', 'rounds converged by the reconnect resync', times.length, 3);
  });

  it('N2: NATS down 6 s (> 10 × reconnectTimeWait) → still reconnects; the poll bounds staleness meanwhile', async () => {
    const service = uniqueService('N2');
    await write(service, { step: 0 });
    const pollMs = 500;
    const client = makeClient(service, nats.url, { pollIntervalMs: pollMs });
    await client.get(service);
    await waitFor('nats connected', () => client.status(service).nats === 'connected');
    await nats.kill();
    const downAt = Date.now();
    let maxStaleness = 0;
    let step = 0;
    while (Date.now() - downAt < 6_000) {
      step++;
      const revision = await write(service, { step });
      const written = Date.now();
      await waitFor('poll picks up the change', () => revisionOf(client, service) >= revision, { timeoutMs: 3_000, intervalMs: 10 });
      maxStaleness = Math.max(maxStaleness, Date.now() - written);
      await sleep(300);
    }
    expect(client.status(service).nats).not.toBe('connected');
    await nats.restart();
    const restarted = Date.now();
    await waitFor('nats reconnected after a long outage', () => client.status(service).nats === 'connected', { timeoutMs: 10_000 });
    const reconnectMs = Date.now() - restarted;
    // And notices flow again: with the poll far away, a write is seen within well under a poll interval.
    const revision = await write(service, { step: 'after' });
    const t = Date.now();
    await waitFor('notice after reconnect', () => revisionOf(client, service) >= revision, { timeoutMs: 5_000, intervalMs: 5 });
    const noticeMs = Date.now() - t;
    expect(maxStaleness).toBeLessThanOrEqual(pollMs * 1.2 + 500);
    expectLive('N2', 'changes the poll delivered while NATS was down', step);
    recordFigure({ row: 'N2', name: 'max staleness while NATS down (poll 500 ms)', value: maxStaleness, unit: 'ms' });
    recordFigure({ row: 'N2', name: 'reconnect after 6 s down (budget 10 × 200 ms)', value: reconnectMs, unit: 'ms' });
    recordFigure({ row: 'N2', name: 'recovered: notice latency after reconnect', value: noticeMs, unit: 'ms' });
  });

  it('N3: nats-server hung (SIGSTOP) → detected by ping timeout; the poll covers the gap', async () => {
    const service = uniqueService('N3');
    await write(service, { step: 0 });
    const client = makeClient(service, nats.url, { pollIntervalMs: 400 });
    await client.get(service);
    await waitFor('nats connected', () => client.status(service).nats === 'connected');
    nats.pause();
    const pausedAt = Date.now();
    // The hub's own NATS connection hangs too; its publish must not block the write (outbox).
    const revision = await write(service, { step: 1 });
    await waitFor('hang detected', () => client.status(service).nats !== 'connected', { timeoutMs: 10_000, intervalMs: 10 });
    const detectMs = Date.now() - pausedAt;
    await waitFor('poll covers the gap', () => revisionOf(client, service) >= revision, { timeoutMs: 3_000, intervalMs: 10 });
    expectLive('N3', 'hangs (SIGSTOP) injected and detected', nats.paused && client.status(service).nats !== 'connected' ? 1 : 0);
    nats.resume();
    await waitFor('reconnected', () => client.status(service).nats === 'connected', { timeoutMs: 10_000 });
    recordFigure({ row: 'N3', name: 'time to detect a hung server (ping 500 ms × 2)', value: detectMs, unit: 'ms' });
    expect(detectMs).toBeLessThan(NATS_TIMINGS.pingInterval * (NATS_TIMINGS.maxPingOut + 2) + 1_000);
  });

  it('N4: a notice published while one client is cut off (proxy break) → repaired by the reconnect resync', async () => {
    const service = uniqueService('N4');
    await write(service, { step: 0 });
    const proxy = await startTcpProxy({ target: { port: nats.port } });
    const cut = makeClient(service, proxy.url('nats'));
    const direct = makeClient(service, nats.url);
    await Promise.all([cut.get(service), direct.get(service)]);
    await waitFor('both connected', () => cut.status(service).nats === 'connected' && direct.status(service).nats === 'connected');
    const latencies: number[] = [];
    for (let round = 1; round <= 3; round++) {
      await proxy.break();
      const revision = await write(service, { step: round });
      await waitFor('the other client got the notice', () => revisionOf(direct, service) >= revision, { timeoutMs: 3_000, intervalMs: 5 });
      await sleep(300);
      expect(revisionOf(cut, service)).toBeLessThan(revision);
      await proxy.restore();
      const restored = Date.now();
      await waitFor('repaired', () => revisionOf(cut, service) >= revision, { timeoutMs: 10_000, intervalMs: 5 });
      latencies.push(Date.now() - restored);
    }
    await proxy.close();
    expectLive('N4', 'cut-off rounds repaired by the resync', latencies.length, 3);
    recordFigure({ row: 'N4', name: 'repair latency after the cut ends (median of 3)', value: median(latencies), unit: 'ms' });
    recordFigure({ row: 'N4', name: 'repair latency (max of 3)', value: Math.max(...latencies), unit: 'ms' });
  });

  it('N8: 10 000 notices/s for one service → ≤ 1 fetch in flight, one onChange per distinct revision, no slow consumer', async () => {
    const service = uniqueService('N8');
    await write(service, { step: 0 });
    const stats: FetchStats = { total: 0, inFlight: 0, maxInFlight: 0 };
    const client = makeClient(service, nats.url, {}, stats);
    await client.get(service);
    await waitFor('nats connected', () => client.status(service).nats === 'connected');
    const seen: number[] = [];
    client.onChange(service, (_n, _p, change) => {
      seen.push(change.revision ?? -1);
    });
    const { connect } = await import('nats');
    const publisher = await connect({ servers: nats.url });
    const before = stats.total;
    const slowBefore = ((await nats.monitor('varz')) as { slow_consumers?: number }).slow_consumers ?? 0;
    const written: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 10_000; i++) {
      publisher.publish(
        `config.update.${service}`,
        JSON.stringify({ service_name: service, revision: 1_000_000 + i, updated_at: Date.now() }),
      );
      if (i % 2_000 === 1_000) written.push(await write(service, { step: i }));
      if (i % 100 === 99) {
        // 100 per 10 ms ≈ 10 000/s
        const due = started + (i + 1) / 10;
        if (due > Date.now()) await sleep(due - Date.now());
      }
    }
    await publisher.flush();
    const storm = Date.now() - started;
    await publisher.close();
    const last = written.at(-1)!;
    await waitFor('converged after the storm', () => revisionOf(client, service) >= last, { timeoutMs: 10_000 });
    await sleep(500);
    const fetches = stats.total - before;
    const slow = (((await nats.monitor('varz')) as { slow_consumers?: number }).slow_consumers ?? 0) - slowBefore;
    // The server's count of messages it sent to the client's connection: the storm really reached it.
    const connz = (await nats.monitor('connz')) as { connections?: { name?: string; out_msgs?: number }[] };
    const deliveredToClient = (connz.connections ?? []).filter((c) => c.name === '@central-hub/config').reduce((n, c) => n + (c.out_msgs ?? 0), 0);
    const distinct = new Set(seen);
    recordFigure({ row: 'N8', name: 'notices published', value: 10_000, unit: 'count' });
    recordFigure({ row: 'N8', name: 'storm duration', value: storm, unit: 'ms' });
    recordFigure({ row: 'N8', name: 'refreshes (HTTP fetches) issued', value: fetches, unit: 'count' });
    recordFigure({ row: 'N8', name: 'max fetches in flight', value: stats.maxInFlight, unit: 'count' });
    recordFigure({ row: 'N8', name: 'onChange calls / distinct revisions written', value: `${seen.length} / ${written.length}` });
    recordFigure({ row: 'N8', name: 'slow consumers', value: slow, unit: 'count' });
    expectLive('N8', 'notices the server delivered to the client connection', deliveredToClient, 10_000);
    expectLive('N8', 'refreshes the storm caused', fetches);
    expectLive('N8', 'changes delivered', seen.length);
    expect(stats.maxInFlight).toBe(1);
    expect(seen.length).toBe(distinct.size);
    expect(seen.length).toBeLessThanOrEqual(written.length);
    expect(fetches).toBeLessThan(10_000);
    expect(slow).toBe(0);
    expect(client.status(service).nats).toBe('connected');
  });
});
