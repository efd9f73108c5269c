/**
 * C12, against the real reference hub (its own process, PGlite in memory): 1 000 × create/get/close (own undici
 * Agent, NATS watcher on a private nats-server, poll timer, snapshot writes) and 10 000 × onChange/unsubscribe →
 * no growth in heap, sockets, timers or NATS subscriptions, and a process that only used a client exits by itself
 * after close().
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigClient } from '../../src/index.js';
import {
  cleanupLab,
  type NatsServerHandle,
  REPO_ROOT,
  sleep,
  startHubProcess,
  startNatsServer,
  waitFor,
} from '../helpers/lab/index.js';
import { parsePrometheusText, samplesOf } from '../helpers/prom-text.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// The real reference hub, as its own process (PGlite in memory; cleanupLab stops it): its heap and sockets are not
// ours, so the growth measured below is the client's alone.
let hubUrl: string;
let nats: NatsServerHandle;
let snapshotRoot: string;
const revision = 1;
const service = `chaos-c12-${process.pid}`;

/** Liveness: GETs of the config route the hub answered, counted by the hub itself (`hub_http_requests_total`). */
async function hubGets(): Promise<number> {
  const text = await (await fetch(`${hubUrl}/metrics`)).text();
  return samplesOf(parsePrometheusText(text), 'hub_http_requests_total')
    .filter((s) => s.labels.route === '/api/v1/config/:service' && s.labels.method === 'GET')
    .reduce((n, s) => n + s.value, 0);
}

beforeAll(async () => {
  snapshotRoot = await mkdtemp(join(tmpdir(), 'chaos-life-'));
  nats = await startNatsServer();
  ({ url: hubUrl } = await startHubProcess({ DISABLE_AUTH: 'true', HUB_LOG_LEVEL: 'warn', NATS_URL: nats.url }, { timeoutMs: 60_000 }));
  const res = await fetch(`${hubUrl}/api/v1/config/${service}?updated_by=c12`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ n: revision }),
  });
  if (res.status >= 300) throw new Error(`C12: seeding ${service} → ${res.status} ${await res.text()}`);
}, 90_000);

afterAll(async () => {
  await cleanupLab();
  await rm(snapshotRoot, { recursive: true, force: true });
});

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(20);
  }
  return process.memoryUsage().heapUsed;
}

function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

function newClient(i: number) {
  return new ConfigClient({
    hubUrl,
    snapshotDir: join(snapshotRoot, String(i % 4)),
    pollIntervalMs: 1_000,
    transport: { requestTimeoutMs: 1_000 },
    nats: { servers: nats.url },
    services: { [service]: { defaults: { n: 0 } } },
  });
}

describe('lifecycle', () => {
  it('C12: 1 000 × create/get/close and 10 000 × onChange/unsubscribe → no growth in heap, handles or subscriptions', async () => {
    // Warm-up: module-level caches, JIT, the first sockets.
    for (let i = 0; i < 20; i++) {
      const c = newClient(i);
      await c.get(service);
      await c.close();
    }
    await sleep(200);
    const heapBefore = await settledHeap();
    const handlesBefore = resources();
    // nats-server counts its own internal ($SYS) subscriptions too: compare with the count before.
    const subsBefore = ((await nats.monitor('subsz')) as { num_subscriptions?: number }).num_subscriptions ?? 0;
    const started = Date.now();
    const requestsBefore = await hubGets();
    let cycles = 0;
    for (let i = 0; i < 1_000; i++) {
      const c = newClient(i);
      const cfg = await c.get(service);
      if (cfg.n !== revision) throw new Error(`cycle ${i}: unexpected ${JSON.stringify(cfg)}`);
      await c.close();
      cycles++;
    }
    expectLive('C12', 'create/get/close cycles executed', cycles, 1_000);
    expectLive('C12', 'hub GETs answered during the cycles (counted by the hub)', (await hubGets()) - requestsBefore, 1_000);
    const cyclesMs = Date.now() - started;
    // onChange/unsubscribe on one client.
    const one = newClient(0);
    await one.get(service);
    let subscribed = 0;
    for (let i = 0; i < 10_000; i++) {
      const off = one.onChange(service, () => undefined);
      off();
      subscribed++;
    }
    expectLive('C12', 'onChange/unsubscribe pairs executed', subscribed, 10_000);
    await one.close();
    await sleep(300);
    const heapAfter = await settledHeap();
    const handlesAfter = resources();
    const connz = (await nats.monitor('connz?subs=1')) as { connections?: { name?: string }[] };
    const natsClients = (connz.connections ?? []).filter((c) => c.name === '@central-hub/config').length;
    const subsz = (await nats.monitor('subsz')) as { num_subscriptions?: number };
    const heapDeltaMiB = (heapAfter - heapBefore) / 1024 / 1024;
    const grown = Object.entries(handlesAfter).filter(([k, v]) => v > (handlesBefore[k] ?? 0));
    recordFigure({ row: 'C12', name: 'heap delta after GC (1 000 create/close + 10 000 onChange/off)', value: Number(heapDeltaMiB.toFixed(2)), unit: 'MiB' });
    recordFigure({ row: 'C12', name: 'extra active handles after the cycles', value: grown.reduce((n, [k, v]) => n + v - (handlesBefore[k] ?? 0), 0), unit: 'count' });
    recordFigure({ row: 'C12', name: 'NATS client connections / extra subscriptions left on the server', value: `${natsClients} / ${(subsz.num_subscriptions ?? 0) - subsBefore}` });
    recordFigure({ row: 'C12', name: '1 000 create/get/close cycles took', value: cyclesMs, unit: 'ms' });
    expect(grown, JSON.stringify({ handlesBefore, handlesAfter })).toEqual([]);
    expect(natsClients).toBe(0);
    expect(subsz.num_subscriptions ?? 0).toBe(subsBefore);
    // 1 000 clients would retain several MiB if any of them leaked (each holds an Agent, a watcher, timers).
    expect(heapDeltaMiB).toBeLessThan(3);
    // A leak test, not a timing one: 1 000 cycles against the hub process take ≈ 10 s idle, and over 30 s (the
    // suite's default) with the machine's two cores loaded (seen beside a mutation run).
  }, 120_000);

  it('C12: a process that used a client (hub, NATS, poll, snapshot) exits by itself after close()', async () => {
    const requestsBefore = await hubGets();
    const script = `
      import { ConfigClient } from ${JSON.stringify(join(REPO_ROOT, 'src/index.ts'))};
      const c = new ConfigClient({ hubUrl: ${JSON.stringify(hubUrl)}, snapshotDir: ${JSON.stringify(join(snapshotRoot, 'child'))},
        pollIntervalMs: 200, nats: { servers: ${JSON.stringify(nats.url)} }, services: { ${JSON.stringify(service)}: {} } });
      const cfg = await c.get(${JSON.stringify(service)});
      c.onChange(${JSON.stringify(service)}, () => {});
      await new Promise((r) => setTimeout(r, 300));
      await c.close();
      console.log('closed', JSON.stringify(cfg));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    let closedAt = 0;
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor('child closed the client', () => out.includes('closed'), { timeoutMs: 30_000 }).catch((e) => {
      child.kill('SIGKILL');
      throw new Error(`${(e as Error).message}: ${out}`);
    });
    closedAt = Date.now();
    const timeout = setTimeout(() => child.kill('SIGKILL'), 5_000);
    const code = await exited;
    clearTimeout(timeout);
    const exitMs = Date.now() - closedAt;
    recordFigure({ row: 'C12', name: 'process exit after close()', value: exitMs, unit: 'ms' });
    expect(code, out).toBe(0);
    expect(exitMs).toBeLessThan(2_000);
    expectLive('C12', 'hub GETs the child process made (counted by the hub)', (await hubGets()) - requestsBefore);
  });
});
