/**
 * Client rows answered through the msw ↔ undici bridge (no sockets): C8 Retry-After, C9 revoked key,
 * C10 failing listeners, C13 env wins, C14 schema-invalid hub document, X4 1 000 parallel gets.
 * Client timings are shortened (ms instead of s); each test says how its figure scales.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { delay, HttpResponse, http } from 'msw';
import { connect, type NatsConnection } from 'nats';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ConfigClient, type ConfigClientOptions, type ConfigError } from '../../src/index.js';
import { hubDoc as doc, uniqueService } from '../helpers/chaos.js';
import { useMswClients } from '../helpers/msw-clients.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const HUB = 'http://hub.test';
const SHARED_NATS = 'nats://127.0.0.1:4222';

const schema = z.object({
  operational: z.object({ batch_size: z.number().int().positive(), mode: z.string() }),
  database: z.object({ host: z.string(), password: z.string() }),
});
const ENV = { DB_HOST: 'db.internal', DB_PASSWORD: 'canary-secret-c13' };

const lab = useMswClients('chaos-http-');

function makeClient(service: string, overrides: Partial<ConfigClientOptions> = {}) {
  const client = new ConfigClient({
    hubUrl: HUB,
    apiKey: 'chaos-key',
    snapshotDir: lab.snapshotDir,
    pollIntervalMs: false,
    transport: { dispatcher: lab.agent, retryBaseDelayMs: 1, retryMaxDelayMs: 5, requestTimeoutMs: 1_000 },
    recovery: { minDelayMs: 20, maxDelayMs: 50, unauthorizedDelayMs: 1_000 },
    env: ENV,
    ...overrides,
    services: {
      [service]: {
        schema,
        defaults: { operational: { batch_size: 100, mode: 'default' } },
        env: { 'database.host': 'DB_HOST', 'database.password': 'DB_PASSWORD' },
      },
    },
  });
  lab.clients.push(client);
  return client;
}

const route = (resolver: Parameters<typeof http.get>[1]) => http.get(`${HUB}/api/v1/config/:service`, resolver);

describe('client against a misbehaving hub (msw)', () => {
  it('C8: 503, 503 (Retry-After: 1), 200 → three attempts honouring Retry-After, then none', async () => {
    const service = uniqueService('C8');
    const at: number[] = [];
    lab.agent.use(
      route(() => {
        at.push(Date.now());
        if (at.length === 1) return HttpResponse.json({ detail: 'busy' }, { status: 503 });
        if (at.length === 2) return HttpResponse.json({ detail: 'busy' }, { status: 503, headers: { 'retry-after': '1' } });
        return HttpResponse.json(doc(service, { operational: { batch_size: 8 } }, 1));
      }),
    );
    const client = makeClient(service, { startupTimeoutMs: 5_000 });
    const cfg = await client.get(service);
    expect(cfg.operational.batch_size).toBe(8);
    expect(at).toHaveLength(3);
    // The third attempt waited for the Retry-After second (backoff alone is ≤ 5 ms here).
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(950);
    await delay(1_500);
    expect(at).toHaveLength(3);
    expect(client.status(service)).toMatchObject({ source: 'hub', stale: false, lastErrorCode: undefined });
    recordFigure({ row: 'C8', name: 'attempts (503, 503+Retry-After, 200)', value: at.length, unit: 'count' });
    recordFigure({ row: 'C8', name: 'wait honouring Retry-After: 1', value: at[2]! - at[1]!, unit: 'ms' });
    recordFigure({ row: 'C8', name: 'attempts in the 1.5 s after success', value: at.length - 3, unit: 'count' });
    expectLive('C8', 'hub requests answered (503, 503, 200)', at.length, 3);
  });

  it('C9: key revoked mid-run → status error, last good served, hard backoff (also under a notice storm), recovers', async () => {
    const service = uniqueService('C9');
    let revoked = false;
    let revision = 1;
    let requests = 0;
    lab.agent.use(
      route(() => {
        requests++;
        if (revoked) return HttpResponse.json({ detail: 'invalid API key' }, { status: 401 });
        return HttpResponse.json(doc(service, { operational: { batch_size: revision } }, revision));
      }),
    );
    const nc: NatsConnection = await connect({ servers: SHARED_NATS });
    try {
      const client = makeClient(service, {
        cacheTtlMs: 50,
        pollIntervalMs: 50,
        nats: { servers: SHARED_NATS },
        recovery: { minDelayMs: 20, maxDelayMs: 50, unauthorizedDelayMs: 1_000 },
      });
      expect((await client.get(service)).operational.batch_size).toBe(1);
      await vi.waitFor(() => expect(client.status(service).nats).toBe('connected'));
      revoked = true;
      await expect(client.refresh(service)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      expect(client.status(service)).toMatchObject({ lastErrorCode: 'UNAUTHORIZED', stale: true });

      // 3 s revoked: a tight get loop, the 50 ms poll and a 100/s notice storm (new revisions) all try to refresh.
      const start = requests;
      const windowMs = 3_000;
      const until = Date.now() + windowMs;
      let undefinedReads = 0;
      let n = 2;
      while (Date.now() < until) {
        const cfg = await client.get(service);
        if (cfg?.operational?.batch_size !== 1) undefinedReads++;
        nc.publish(`config.update.${service}`, JSON.stringify({ service_name: service, revision: n++, updated_at: Date.now() }));
        await delay(10);
      }
      const revokedRequests = requests - start;
      const perMinute = (revokedRequests / windowMs) * 60_000;
      recordFigure({ row: 'C9', name: 'requests while revoked (3 s window, 1 s unauthorized delay, 100 notices/s)', value: revokedRequests, unit: 'count' });
      recordFigure({ row: 'C9', name: 'requests/min while revoked (scaled delay 1 s; default 60 s)', value: Math.round(perMinute), unit: 'req/min' });
      expect(undefinedReads).toBe(0);
      // unauthorizedDelayMs = 1 000 (±20 %): at most ~4 recovery attempts in 3 s, never one per notice.
      expect(revokedRequests).toBeLessThanOrEqual(5);
      expectLive('C9', '401 answers while revoked', revokedRequests);
      expectLive('C9', 'notices published during the storm', n - 2, 100);

      revoked = false;
      revision = 50;
      const back = Date.now();
      await vi.waitFor(async () => expect((await client.get(service)).operational.batch_size).toBe(50), { timeout: 5_000, interval: 20 });
      const recovery = Date.now() - back;
      recordFigure({ row: 'C9', name: 'recovery after the key returns (scaled delay 1 s)', value: recovery, unit: 'ms' });
      expect(client.status(service).lastErrorCode).toBeUndefined();
    } finally {
      await nc.close();
    }
  });

  it('C10: a listener throws / rejects / blocks 2 s → the others run, no unhandled rejection, get not delayed', async () => {
    const service = uniqueService('C10');
    let revision = 1;
    lab.agent.use(route(() => HttpResponse.json(doc(service, { operational: { batch_size: revision } }, revision))));
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const client = makeClient(service);
      const errors: ConfigError[] = [];
      client.onError((e) => errors.push(e));
      await client.get(service);
      const deliveries = { throws: 0, rejects: 0, blocks: 0, good: 0, late: 0 };
      client.onChange(service, () => {
        deliveries.throws++;
        throw new Error('listener boom');
      });
      client.onChange(service, async () => {
        deliveries.rejects++;
        throw new Error('listener async boom');
      });
      client.onChange(service, async () => {
        deliveries.blocks++;
        await delay(2_000);
      });
      client.onChange(service, () => {
        deliveries.good++;
      });
      let maxGetMs = 0;
      for (revision = 2; revision <= 6; revision++) {
        await client.refresh(service);
        const t0 = performance.now();
        const cfg = await client.get(service);
        maxGetMs = Math.max(maxGetMs, performance.now() - t0);
        expect(cfg.operational.batch_size).toBe(revision);
      }
      // A listener added late still learns the state through get().
      client.onChange(service, () => {
        deliveries.late++;
      });
      expect((await client.get(service)).operational.batch_size).toBe(6);
      await delay(100);
      expect(deliveries).toEqual({ throws: 5, rejects: 5, blocks: 5, good: 5, late: 0 });
      expect(errors.filter((e) => e.code === 'LISTENER_FAILED')).toHaveLength(10);
      expect(unhandled).toEqual([]);
      expect(maxGetMs).toBeLessThan(50);
      expectLive('C10', 'changes delivered to the well-behaved listener', deliveries.good, 5);
      expectLive('C10', 'listener faults reported (LISTENER_FAILED)', errors.filter((e) => e.code === 'LISTENER_FAILED').length, 10);
      recordFigure({ row: 'C10', name: 'deliveries per listener (throws/rejects/blocks/good)', value: `${deliveries.throws}/${deliveries.rejects}/${deliveries.blocks}/${deliveries.good} of 5` });
      recordFigure({ row: 'C10', name: 'max get latency with a 2 s blocking listener', value: Number(maxGetMs.toFixed(2)), unit: 'ms' });
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('C13: env-critical paths win over hub and notices; no onChange for them; never on disk', async () => {
    const service = uniqueService('C13');
    let revision = 1;
    let hostFromHub = 'hub-host-1';
    lab.agent.use(
      route(() =>
        HttpResponse.json(
          doc(service, { operational: { batch_size: revision }, database: { host: hostFromHub, password: 'hub-password' } }, revision),
        ),
      ),
    );
    const nc = await connect({ servers: SHARED_NATS });
    try {
      const client = makeClient(service, { nats: { servers: SHARED_NATS, applyPayload: true } });
      const changes: string[][] = [];
      client.onChange(service, (_n, _p, change) => {
        changes.push(change.changedPaths);
      });
      let cfg = await client.get(service);
      await vi.waitFor(() => expect(client.status(service).nats).toBe('connected'));
      let overrides = 0;
      for (revision = 2; revision <= 5; revision++) {
        hostFromHub = `hub-host-${revision}`;
        if (revision % 2 === 0) {
          await client.refresh(service);
        } else {
          // applyPayload: the notice itself carries a critical-path value
          nc.publish(
            `config.update.${service}`,
            JSON.stringify({ ...doc(service, { operational: { batch_size: revision }, database: { host: 'notice-host', password: 'notice-pw' } }, revision) }),
          );
          await vi.waitFor(() => expect(client.status(service).revision).toBe(revision));
        }
        cfg = await client.get(service);
        if (cfg.database.host !== ENV.DB_HOST || cfg.database.password !== ENV.DB_PASSWORD) overrides++;
        expect(client.explain(service, 'database.host')).toMatchObject({ layer: 'env', value: '[redacted]', envVariable: 'DB_HOST' });
      }
      expect(overrides).toBe(0);
      expect(changes).toHaveLength(4);
      expectLive('C13', 'changes delivered (2 refreshes, 2 notices applied)', changes.length, 4);
      for (const paths of changes) expect(paths.filter((p) => p.startsWith('database'))).toEqual([]);
      await vi.waitFor(async () => expect(await readdir(lab.snapshotDir)).toContain(`${service}.json`));
      await delay(50);
      const file = await readFile(join(lab.snapshotDir, `${service}.json`), 'utf8');
      for (const secret of [ENV.DB_HOST, ENV.DB_PASSWORD, 'hub-password', 'notice-pw', 'hub-host', 'notice-host']) {
        expect(file).not.toContain(secret);
      }
      recordFigure({ row: 'C13', name: 'hub/notice overrides of env-critical paths applied', value: overrides, unit: 'count' });
    } finally {
      await nc.close();
    }
  });

  it('C14: a schema-invalid hub document is rejected; last good kept; CONFIG_INVALID reported; no onChange', async () => {
    const service = uniqueService('C14');
    let body: unknown = { operational: { batch_size: 3, mode: 'ok' } };
    lab.agent.use(route(() => HttpResponse.json(doc(service, body, (body as { rev?: number }).rev ?? 1))));
    const client = makeClient(service);
    const errors: ConfigError[] = [];
    client.onError((e) => errors.push(e));
    const changes: unknown[] = [];
    client.onChange(service, (n) => {
      changes.push(n);
    });
    expect((await client.get(service)).operational.batch_size).toBe(3);
    const invalids = [
      { operational: { batch_size: -1 }, rev: 2 },
      { operational: { batch_size: 'many' }, rev: 3 },
      { operational: { batch_size: 5, mode: 42 }, rev: 4 },
      { operational: 'flat', rev: 5 },
    ];
    let applied = 0;
    for (const invalid of invalids) {
      body = invalid;
      await expect(client.refresh(service)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
      const cfg = await client.get(service);
      if (cfg.operational.batch_size !== 3 || cfg.operational.mode !== 'ok') applied++;
    }
    expect(applied).toBe(0);
    expect(changes).toEqual([]);
    expect(errors.filter((e) => e.code === 'CONFIG_INVALID')).toHaveLength(invalids.length);
    expectLive('C14', 'invalid documents served and rejected (CONFIG_INVALID)', errors.filter((e) => e.code === 'CONFIG_INVALID').length, 4);
    expect(client.status(service)).toMatchObject({ lastErrorCode: 'CONFIG_INVALID', revision: 1 });
    const file = await vi.waitFor(async () => JSON.parse(await readFile(join(lab.snapshotDir, `${service}.json`), 'utf8')));
    expect(file.revision).toBe(1);
    // The next valid document is applied again.
    body = { operational: { batch_size: 9, mode: 'ok' }, rev: 6 };
    await vi.waitFor(async () => expect((await client.get(service)).operational.batch_size).toBe(9), { timeout: 2_000 });
    recordFigure({ row: 'C14', name: 'invalid configs applied', value: applied, unit: 'count' });
  });

  it('X4: 1 000 parallel gets during a slow refresh → one fetch, one consistent value', async () => {
    const service = uniqueService('X4');
    let revision = 1;
    let fetches = 0;
    lab.agent.use(
      route(async () => {
        fetches++;
        const r = revision;
        await delay(300);
        return HttpResponse.json(doc(service, { operational: { batch_size: r } }, r));
      }),
    );
    const client = makeClient(service, { cacheTtlMs: 100, startupTimeoutMs: 2_000 });
    // Cold: 1 000 callers share the first load.
    const cold = await Promise.all(Array.from({ length: 1_000 }, () => client.get(service)));
    expect(fetches).toBe(1);
    expect(new Set(cold).size).toBe(1);
    // Stale: after the TTL, 1 000 callers during one slow refresh all get the same committed value.
    await delay(150);
    revision = 2;
    const first = await Promise.all(Array.from({ length: 500 }, () => client.get(service)));
    await delay(100); // the refresh is now in flight (the hub takes 300 ms)
    expect(fetches).toBe(2);
    const during = await Promise.all(Array.from({ length: 500 }, () => client.get(service)));
    const stale = [...first, ...during];
    const torn = stale.filter((c) => c !== stale[0] || c.operational.batch_size !== 1).length;
    expect(torn).toBe(0);
    await vi.waitFor(async () => expect((await client.get(service)).operational.batch_size).toBe(2));
    const staleFetches = fetches - 1;
    expect(staleFetches).toBe(1);
    recordFigure({ row: 'X4', name: 'fetches for 1 000 cold gets', value: 1, unit: 'count' });
    recordFigure({ row: 'X4', name: 'fetches for 1 000 gets during a slow refresh', value: staleFetches, unit: 'count' });
    recordFigure({ row: 'X4', name: 'torn reads', value: torn, unit: 'count' });
    expectLive('X4', 'gets answered (cold + during the slow refresh)', cold.length + stale.length, 2_000);
    expectLive('X4', 'hub requests answered', fetches, 2);
  });
});
