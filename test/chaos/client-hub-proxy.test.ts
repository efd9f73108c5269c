/**
 * Client rows against the reference hub (in-process, PGlite in memory) behind a TCP proxy the test owns:
 * C1 hub refuses, C5 restart from the snapshot, C6 corrupt snapshots, C7 TTL expiry while down,
 * H4 slow hub (no regressions), H5 response cut after 100 bytes, and S6 (client side): the canary key and the
 * canary secret used by every client of this file, with debug logging on, never reach a log line, an error
 * message or a snapshot file.
 *
 * Timings are scaled: C1's "hub starts 10 s later" is 3 s; H4's "3 s ± 2 s" is 600 ms ± 500 ms against a
 * 400 ms request deadline (the same ratio of answers beyond the deadline).
 */
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildHub, type Hub } from '../../examples/hub/server.js';
import { ConfigClient, type ConfigClientOptions, type ConfigError } from '../../src/index.js';
import { CHAOS_PG_URL, closeChaosHub, countingDispatcher, type FetchStats, uniqueService, writeConfig } from '../helpers/chaos.js';
import { sleep, startTcpProxy, type TcpProxy, waitFor } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const CANARY_KEY = 'canary-key-7f3a9c1e5b2d4086';
const CANARY_SECRET = 'canary-secret-b81d2e6f0a9c4375';
const ENV = { DB_PASSWORD: CANARY_SECRET };

const schema = z.object({
  limits: z.object({ batch: z.number().int().positive() }),
  mode: z.string(),
  db: z.object({ password: z.string() }),
});
const defaults = { limits: { batch: 1 }, mode: 'default' };

let hub: Hub;
// The hub's store: a private schema on the shared PostgreSQL (PGlite boots slowly on a loaded 2-core box).
const PG_SCHEMA = `chaos_hp_${process.pid}_${Date.now().toString(36)}`;
let hubPort: number;
let proxy: TcpProxy;
let snapshotRoot: string;
let clients: Array<{ close(): Promise<void> }> = [];
let agents: Dispatcher[] = [];
/** Everything the clients of this file logged or reported (for S6). */
const logLines: string[] = [];
const reported: string[] = [];

const capture = (level: string) => (obj: object, msg?: string) => {
  logLines.push(`${level} ${msg ?? ''} ${JSON.stringify(obj, (_k, v) => (v instanceof Error ? { message: v.message, stack: v.stack, cause: String(v.cause) } : v))}`);
};
const debugLogger = { debug: capture('debug'), info: capture('info'), warn: capture('warn'), error: capture('error') };

function serializeError(e: unknown, depth = 0): string {
  if (!(e instanceof Error) || depth > 5) return String(e);
  return `${e.name}: ${e.message} ${JSON.stringify({ ...e })} ${e.stack ?? ''} <- ${serializeError(e.cause, depth + 1)}`;
}

function countingAgent(stats: FetchStats, options: Agent.Options = {}): Dispatcher {
  const agent = new Agent({ connect: { timeout: 500 }, headersTimeout: 400, bodyTimeout: 400, keepAliveTimeout: 1_000, ...options });
  agents.push(agent);
  return countingDispatcher(agent, stats);
}

const write = (service: string, config: Record<string, unknown>) => writeConfig(hub, service, config, { 'x-api-key': CANARY_KEY });

function makeClient(service: string, overrides: Partial<ConfigClientOptions> = {}) {
  const client = new ConfigClient({
    hubUrl: proxy.url(),
    apiKey: CANARY_KEY,
    snapshotDir: join(snapshotRoot, service),
    cacheTtlMs: 600_000,
    startupTimeoutMs: 1_000,
    pollIntervalMs: false,
    transport: { requestTimeoutMs: 400, connectTimeoutMs: 300, retries: 1, retryBaseDelayMs: 10, retryMaxDelayMs: 50 },
    recovery: { minDelayMs: 50, maxDelayMs: 300 },
    env: ENV,
    logger: debugLogger,
    ...overrides,
    services: { [service]: { schema, defaults, env: { 'db.password': 'DB_PASSWORD' } } },
  });
  client.onError((e) => reported.push(serializeError(e)));
  clients.push(client);
  return client;
}

beforeAll(async () => {
  snapshotRoot = await mkdtemp(join(tmpdir(), 'chaos-hubproxy-'));
  hub = await buildHub({
    databaseUrl: CHAOS_PG_URL,
    pgSchema: PG_SCHEMA,
    apiKeys: [{ name: 'chaos', key: CANARY_KEY, scopes: ['read:*', 'write:*'] }],
    seed: false,
  });
  const url = await hub.listen({ port: 0 });
  hubPort = Number(new URL(url).port);
  proxy = await startTcpProxy({ target: { port: hubPort } });
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(agents.map((a) => a.close()));
  clients = [];
  agents = [];
  proxy.delay(0);
  proxy.cutAfter(null);
  if (proxy.broken) await proxy.restore();
});

afterAll(async () => {
  await proxy?.close();
  await closeChaosHub(hub, PG_SCHEMA, snapshotRoot);
});

describe('client against the reference hub behind a TCP proxy', () => {
  it('C1: hub refuses connections → defaults + env within the startup budget; retries with backoff; converges when the hub comes up', async () => {
    const service = uniqueService('C1');
    await write(service, { limits: { batch: 42 }, mode: 'hub' });
    await proxy.break('refuse');
    const stats: FetchStats = { total: 0, inFlight: 0, maxInFlight: 0 };
    const client = makeClient(service, {
      startupTimeoutMs: 500,
      recovery: { minDelayMs: 100, maxDelayMs: 500 },
      transport: { dispatcher: countingAgent(stats), retries: 1, retryBaseDelayMs: 10, retryMaxDelayMs: 50 },
    });
    const t0 = performance.now();
    const first = await client.get(service);
    const firstMs = performance.now() - t0;
    expect(first).toEqual({ limits: { batch: 1 }, mode: 'default', db: { password: CANARY_SECRET } });
    expect(client.status(service)).toMatchObject({ source: 'defaults', stale: true });
    expect(firstMs).toBeLessThan(500 + 200);
    await sleep(3_000); // "the hub starts 10 s later", scaled to 3 s
    const retries = stats.total;
    await proxy.restore();
    const up = Date.now();
    await waitFor('converged', async () => (await client.get(service)).mode === 'hub', { timeoutMs: 5_000, intervalMs: 5 });
    const convergeMs = Date.now() - up;
    expect(client.status(service)).toMatchObject({ source: 'hub', stale: false });
    // Backoff, not a loop: 3 s at ≥ 100 ms growing to 500 ms, 2 attempts per round.
    expect(retries).toBeGreaterThanOrEqual(4);
    expect(retries).toBeLessThanOrEqual(40);
    expect(convergeMs).toBeLessThan(1_500);
    expectLive('C1', 'HTTP attempts refused during the outage (faults injected)', retries, 4);
    recordFigure({ row: 'C1', name: 'first get latency (hub refusing, budget 500 ms)', value: Math.round(firstMs), unit: 'ms' });
    recordFigure({ row: 'C1', name: 'HTTP attempts during a 3 s outage (recovery 100–500 ms)', value: retries, unit: 'count' });
    recordFigure({ row: 'C1', name: 'time hub-up → converged', value: convergeMs, unit: 'ms' });
  });

  it('C5: client restarts while the hub is down, snapshot present → boots from the snapshot, status says so', async () => {
    const service = uniqueService('C5');
    await write(service, { limits: { batch: 7 }, mode: 'from-hub' });
    const before = makeClient(service);
    const value = await before.get(service);
    await waitFor('snapshot written', async () => (await readdir(join(snapshotRoot, service)).catch((): string[] => [])).includes(`${service}.json`));
    await sleep(50);
    await before.close();
    await proxy.break('refuse');
    const after = makeClient(service);
    const restored = await after.get(service);
    expect(restored).toEqual(value);
    expect(after.status(service)).toMatchObject({ source: 'snapshot', stale: true, revision: 1 });
    expectLive('C5', 'snapshot files on disk the restarted client could boot from', (await readdir(join(snapshotRoot, service))).length);
    recordFigure({ row: 'C5', name: 'values equal to before the restart', value: JSON.stringify(restored) === JSON.stringify(value) });
    await proxy.restore();
  });

  it('C6: truncated / `{` / wrong shape / another service\'s snapshot → ignored with a warning, defaults used, no crash', async () => {
    await proxy.break('refuse');
    const other = uniqueService('C6other');
    const variants: Record<string, (service: string) => string> = {
      truncated: (s) => `{"format":1,"service":"${s}","config":{"limits":{"batch":9`,
      brace: () => '{',
      empty: () => '',
      'wrong shape': (s) => JSON.stringify({ format: 1, service: s, config: [1, 2], version: 3 }),
      'wrong format': (s) => JSON.stringify({ format: 99, service: s, config: {}, version: '1', updated_at: 1, saved_at: 1 }),
      'another service': () =>
        JSON.stringify({ format: 1, service: other, config: { limits: { batch: 9 }, mode: 'foreign' }, version: '1', updated_at: 1_760_000_000_000, saved_at: 1 }),
      'invalid for the schema': (s) =>
        JSON.stringify({ format: 1, service: s, config: { limits: { batch: -5 } }, version: '1', updated_at: 1_760_000_000_000, saved_at: 1 }),
      binary: () => '\u0000\u00ff\ufffd',
    };
    let crashes = 0;
    let corruptServed = 0;
    for (const [name, content] of Object.entries(variants)) {
      const service = uniqueService('C6');
      await mkdir(join(snapshotRoot, service), { recursive: true });
      await writeFile(join(snapshotRoot, service, `${service}.json`), content(service));
      const client = makeClient(service, { startupTimeoutMs: 200 });
      const errors: ConfigError[] = [];
      client.onError((e) => errors.push(e));
      try {
        const cfg = await client.get(service);
        expect(cfg, name).toEqual({ limits: { batch: 1 }, mode: 'default', db: { password: CANARY_SECRET } });
        expect(client.status(service).source, name).toBe('defaults');
      } catch (error) {
        crashes++;
        throw error;
      }
      if (name !== 'invalid for the schema') expect(errors.map((e) => e.code), name).toContain('SNAPSHOT_INVALID');
      corruptServed++;
    }
    expectLive('C6', 'corrupt snapshots planted and survived', corruptServed, Object.keys(variants).length);
    expect(logLines.some((l) => l.includes('snapshot ignored'))).toBe(true);
    recordFigure({ row: 'C6', name: `crashes over ${Object.keys(variants).length} corrupt snapshots`, value: crashes, unit: 'count' });
  });

  it('C7: TTL expires while the hub is down → the stale value is served, never undefined', async () => {
    const service = uniqueService('C7');
    await write(service, { limits: { batch: 11 }, mode: 'hub' });
    const client = makeClient(service, { cacheTtlMs: 100, pollIntervalMs: 100 });
    await client.get(service);
    await proxy.break('reset');
    let reads = 0;
    let bad = 0;
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      const cfg = await client.get(service);
      reads++;
      if (cfg === undefined || cfg?.limits?.batch !== 11) bad++;
      await sleep(5);
    }
    expect(client.status(service)).toMatchObject({ stale: true, source: 'cache' });
    expect(bad).toBe(0);
    expectLive('C7', 'gets past the TTL while the hub was down', reads, 10);
    recordFigure({ row: 'C7', name: `undefined/wrong reads over ${reads} gets past the TTL`, value: bad, unit: 'count' });
  });

  it('H4: slow hub (600 ± 500 ms vs a 400 ms deadline) → deadlines fire, late answers never move a client back', async () => {
    const service = uniqueService('H4');
    await write(service, { limits: { batch: 1 }, mode: 'r' });
    const stats: FetchStats = { total: 0, inFlight: 0, maxInFlight: 0 };
    const client = makeClient(service, {
      cacheTtlMs: 50,
      pollIntervalMs: 50,
      transport: { dispatcher: countingAgent(stats), retries: 1, retryBaseDelayMs: 10, retryMaxDelayMs: 50, requestTimeoutMs: 400 },
    });
    await client.get(service);
    let regressions = 0;
    let lastSeen = 0;
    const seen: number[] = [];
    client.onChange(service, (_n, _p, change) => {
      const r = change.revision ?? -1;
      if (r < lastSeen) regressions++;
      lastSeen = Math.max(lastSeen, r);
      seen.push(r);
    });
    let timeouts = 0;
    client.onError(() => undefined);
    let last = 0;
    const until = Date.now() + 4_000;
    while (Date.now() < until) {
      proxy.delay(Math.max(0, Math.round(600 + (Math.random() * 2 - 1) * 500)));
      last = await write(service, { limits: { batch: 1 + (last % 50) }, mode: `r${last + 1}` });
      for (let i = 0; i < 4; i++) {
        const before = client.status(service).revision ?? 0;
        await client.get(service);
        await sleep(25);
        const after = client.status(service).revision ?? 0;
        if (after < before) regressions++;
        if (client.status(service).lastErrorCode === 'HUB_UNREACHABLE') timeouts++;
      }
    }
    proxy.delay(0);
    await waitFor('caught up', () => (client.status(service).revision ?? 0) >= last, { timeoutMs: 5_000 });
    expect(regressions).toBe(0);
    expect(stats.maxInFlight).toBe(1);
    expectLive('H4', 'changes delivered while the hub was slow', seen.length);
    expectLive('H4', 'requests sent to the slow hub', stats.total, 4);
    recordFigure({ row: 'H4', name: 'regressions to an older revision', value: regressions, unit: 'count' });
    recordFigure({ row: 'H4', name: 'samples with a fired deadline (HUB_UNREACHABLE)', value: timeouts, unit: 'count' });
    recordFigure({ row: 'H4', name: 'requests / max in flight', value: `${stats.total} / ${stats.maxInFlight}` });
  });

  it('H5: response cut after 100 bytes → truncated JSON rejected, last good kept, retried', async () => {
    const service = uniqueService('H5');
    await write(service, { limits: { batch: 5 }, mode: `good-${'x'.repeat(300)}` });
    const stats: FetchStats = { total: 0, inFlight: 0, maxInFlight: 0 };
    // keep-alive off: every attempt opens a connection the cut applies to.
    const client = makeClient(service, {
      transport: { dispatcher: countingAgent(stats, { pipelining: 0 }), retries: 2, retryBaseDelayMs: 10, retryMaxDelayMs: 20 },
      recovery: { minDelayMs: 100, maxDelayMs: 200 },
    });
    const good = await client.get(service);
    await write(service, { limits: { batch: 6 }, mode: `new-${'y'.repeat(300)}` });
    proxy.dropConnections();
    proxy.cutAfter(100);
    const before = stats.total;
    const errors: ConfigError[] = [];
    client.onError((e) => errors.push(e));
    await expect(client.refresh(service)).rejects.toMatchObject({ code: expect.stringMatching(/HUB_RESPONSE_INVALID|HUB_UNREACHABLE/) });
    let corrupt = 0;
    const until = Date.now() + 1_000;
    while (Date.now() < until) {
      const cfg = await client.get(service);
      if (cfg !== good) corrupt++;
      await sleep(20);
    }
    const attempts = stats.total - before;
    expect(corrupt).toBe(0);
    expect(attempts).toBeGreaterThanOrEqual(3); // the first refresh's 3 attempts, then recovery retries
    expectLive('H5', 'responses cut after 100 bytes (faults injected)', attempts, 3);
    proxy.cutAfter(null);
    const restored = Date.now();
    await waitFor('retried to success', async () => (await client.get(service)).limits.batch === 6, { timeoutMs: 3_000, intervalMs: 5 });
    recordFigure({ row: 'H5', name: 'corrupt values applied', value: corrupt, unit: 'count' });
    recordFigure({ row: 'H5', name: 'attempts while cut (1 s)', value: attempts, unit: 'count' });
    recordFigure({ row: 'H5', name: 'recovered after the cut ends', value: Date.now() - restored, unit: 'ms' });
  });

  it('S6: the canary key and canary secret never appear in a log line, an error message or a snapshot file (client side)', async () => {
    // A last scenario on top of the previous ones: 401 and 403 answers whose bodies are error details.
    const service = uniqueService('S6');
    await write(service, { limits: { batch: 3 }, mode: 's6' });
    const client = makeClient(service, { apiKey: `${CANARY_KEY}-wrong` });
    await client.get(service);
    expect(client.status(service).lastErrorCode).toBe('UNAUTHORIZED');
    const good = makeClient(service);
    await good.get(service);
    await waitFor('snapshot', async () => (await readdir(join(snapshotRoot, service)).catch((): string[] => [])).length > 0);
    await sleep(50);
    const files: string[] = [];
    for (const dir of await readdir(snapshotRoot)) {
      for (const f of await readdir(join(snapshotRoot, dir)).catch((): string[] => [])) files.push(await readFile(join(snapshotRoot, dir, f), 'utf8'));
    }
    const haystacks = { logs: logLines, errors: reported, snapshots: files };
    let occurrences = 0;
    for (const [where, texts] of Object.entries(haystacks)) {
      for (const text of texts) {
        for (const canary of [CANARY_KEY, CANARY_SECRET]) {
          if (text.includes(canary)) {
            occurrences++;
            expect.soft(text, `${where} leaks ${canary === CANARY_KEY ? 'the key' : 'the secret'}`).not.toContain(canary);
          }
        }
      }
    }
    expect(logLines.length).toBeGreaterThan(20);
    expect(reported.length).toBeGreaterThan(5);
    expect(files.length).toBeGreaterThan(3);
    expect(occurrences).toBe(0);
    expectLive('S6', 'texts searched for the canaries (log lines + errors + snapshot files)', logLines.length + reported.length + files.length, 28);
    recordFigure({
      row: 'S6',
      name: `canary occurrences (client: ${logLines.length} log lines, ${reported.length} errors, ${files.length} snapshot files)`,
      value: occurrences,
      unit: 'count',
    });
  });
});
