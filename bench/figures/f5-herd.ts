/**
 * Figure 5: herd. 1 000 clients (4 worker processes) call `get` at the same instant against a running hub;
 * then the hub is SIGKILLed and restarted after 3 s. Requests are counted at the hub from its own
 * request log (info level: one `incoming request` line per request, with its epoch-ms time).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HubProcess } from '../../test/helpers/lab/child-process.js';
import { BENCH_DIR, closeWorkers, putConfig, sampleConfig, startHub, startWorker, type Worker } from '../lib/lab.js';
import { dist, type FigureResult, fmt, round, sleep, wallMs } from '../lib/util.js';
import type { BenchContext } from './context.js';

/** GETs of the config API per 100 ms bucket (epoch ms), as printed by the count-requests preload. */
function bucketsOf(hub: HubProcess, which: 'all' | 'unconditional' = 'all'): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of hub.stderr().matchAll(/^bench-requests (\d+) (\d+) (\d+) (\d+)$/gm)) {
    const n = which === 'all' ? Number(m[2]) : Number(m[2]) - Number(m[4]);
    out.set(Number(m[1]), (out.get(Number(m[1])) ?? 0) + n);
  }
  return out;
}

function countBetween(b: Map<number, number>, from: number, to = Number.POSITIVE_INFINITY): number {
  let n = 0;
  for (const [t, c] of b) if (t >= from - 100 && t < to) n += c;
  return n;
}

export async function figure5(ctx: BenchContext): Promise<FigureResult> {
  const clients = 1000;
  const workersN = 4;
  const pollIntervalMs = 2_000;
  const service = 'bench-herd';
  // Its own database on the private cluster: this hub gets killed.
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: ctx.pg.urlFor('postgres') });
  await admin.connect();
  await admin.query('DROP DATABASE IF EXISTS bench_herd');
  await admin.query('CREATE DATABASE bench_herd');
  await admin.end();
  const env = { DATABASE_URL: ctx.pg.urlFor('bench_herd'), NODE_OPTIONS: `--import ${pathToFileURL(path.join(BENCH_DIR, 'lib/count-requests.mjs')).href}` };
  let hub = await startHub(env);
  const port = hub.port;
  const hubUrl = hub.url;
  await putConfig(hubUrl, service, sampleConfig());
  const workers: Worker[] = [];
  try {
    for (let w = 0; w < workersN; w++) workers.push(startWorker('herd'));
    for (const w of workers) w.send({ type: 'start', hubUrl, n: clients / workersN, service, pollIntervalMs });
    await Promise.all(workers.map((w) => w.next('armed', 30_000)));
    const startAt = wallMs() + 300;
    for (const w of workers) w.send({ type: 'go', startAt });
    const configured = await Promise.all(workers.map((w) => w.next<{ times: number[]; sources: Record<string, number> }>('configured', 30_000)));
    const times = configured.flatMap((c) => c.times.map((t) => t - startAt));
    const sources: Record<string, number> = {};
    for (const c of configured) for (const [k, v] of Object.entries(c.sources)) sources[k] = (sources[k] ?? 0) + v;
    await sleep(200);
    await sleep(150);
    // Unconditional GETs are first loads (and their retries); conditional ones are safety-net polls of
    // clients already configured, counted apart.
    const startGets = countBetween(bucketsOf(hub, 'unconditional'), startAt);
    const startPolls = countBetween(bucketsOf(hub), startAt) - startGets;
    const dt = dist(times);
    const allWithin = dt.max;

    // Outage: kill, wait 3 s, restart on the same port.
    await sleep(Math.round(pollIntervalMs * 0.5));
    const killedAt = wallMs();
    await hub.kill();
    await sleep(3_000);
    hub = await startHub(env, port);
    const upAt = wallMs();
    const windowMs = ctx.quick ? 4_000 : 8_000;
    await sleep(windowMs);
    await sleep(150);
    const counted = bucketsOf(hub);
    const bucketMs = 100;
    const firstT = Math.min(...counted.keys());
    const buckets = new Array<number>(Math.ceil(windowMs / bucketMs) + 5).fill(0);
    for (const [t, c] of counted) {
      const b = Math.floor((t - firstT) / bucketMs);
      if (b >= 0 && b < buckets.length) buckets[b]! += c;
    }
    const afterTotal = countBetween(counted, firstT);
    while (buckets.length > 0 && buckets[buckets.length - 1] === 0) buckets.pop();
    const peak = Math.max(0, ...buckets);
    const status = await Promise.all(
      workers.map((w) => {
        w.send({ type: 'status' });
        return w.next<{ sources: Record<string, number>; failing: number }>('status', 10_000);
      }),
    );
    const failingAfter = status.reduce((a, s) => a + s.failing, 0);
    const distinctFirstWindow = countBetween(counted, firstT, firstT + 3_000);
    const bar = (n: number) => '█'.repeat(Math.round((40 * n) / Math.max(1, peak)));
    const histogram = buckets.map((n, i) => `${String(i * bucketMs).padStart(5)} ms ${String(n).padStart(4)} ${bar(n)}`).join('\n');
    const ratio = startGets / clients;
    return {
      id: 5,
      title: 'Herd: 1 000 clients at once, then a hub restart',
      method: `${clients} ConfigClients in ${workersN} worker processes (each its own undici Agent, no NATS, safety-net poll ${pollIntervalMs} ms ±20 %, snapshotDir false) call get() at one wall-clock instant against a running hub (PostgreSQL, own database). GETs are counted inside the hub by a preloaded diagnostics_channel counter (bench/lib/count-requests.mjs, per 100 ms bucket; the hub keeps warn-level logs). Then the hub is SIGKILLed ${round((killedAt - startAt) / 1000, 1)} s after the start, restarted on the same port 3 s later (+ its own startup), and the GETs it receives are bucketed per ${bucketMs} ms from its first request, for ${windowMs / 1000} s.`,
      rows: [
        { measure: 'clients configured', value: Object.entries(sources).map(([k, v]) => `${v} from ${k}`).join(', ') },
        { measure: 'time to configure: p50 / p99 / max (ms after the start instant)', value: `${fmt(dt.p50)} / ${fmt(dt.p99)} / ${fmt(dt.max)}` },
        { measure: 'hub GETs during the start: first loads (unconditional)', value: `${startGets} (${fmt(ratio, 3)} per client)` },
        { measure: 'hub GETs during the start: polls (If-None-Match) of configured clients', value: startPolls },
        { measure: 'hub down (kill → ready again), ms', value: round(upAt - killedAt, 0) },
        { measure: `GETs after the restart, first 3 s / ${windowMs / 1000} s`, value: `${distinctFirstWindow} / ${afterTotal}` },
        { measure: `peak after the restart, per ${bucketMs} ms (→ GET/s)`, value: `${peak} (${peak * (1000 / bucketMs)} GET/s)` },
        { measure: 'clients still failing at the end', value: failingAfter },
      ],
      goals: [
        { goal: 'all configured within 2 s', measured: `max ${fmt(allWithin)} ms, ${sources.hub ?? 0}/${clients} from the hub`, met: allWithin <= 2000 && (sources.hub ?? 0) === clients },
        { goal: 'hub requests ≤ 1.1 × clients', measured: `${fmt(ratio, 3)}×`, met: ratio <= 1.1 },
        { goal: 'peak GET/s after restart bounded by the jitter (histogram)', measured: `${peak * (1000 / bucketMs)} GET/s peak`, met: null },
      ],
      notes: [],
      data: { buckets, bucketMs, markdown: `GETs per ${bucketMs} ms after the restart:\n\n\`\`\`\n${histogram}\n\`\`\`` },
    };
  } finally {
    await closeWorkers(workers);
    await hub.stop().catch(() => undefined);
  }
}
