/**
 * The bench's servers and child processes. Everything goes through the test lab's registry, so an
 * exception or a signal still stops every nats-server, postmaster, hub and worker the bench started.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { request } from 'undici';
import { REPO_ROOT, startHubProcess, type HubProcess } from '../../test/helpers/lab/child-process.js';
import { track } from '../../test/helpers/lab/registry.js';
import { within } from './util.js';

export { REPO_ROOT };
export const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
// Under results/ (ignored by git and by biome, see biome.json): bundles are build output, not source.
export const BUILD_DIR = path.join(BENCH_DIR, 'results', '.workers');

/**
 * Bundles bench/workers/*.ts (with the package's src/) into plain ESM files, so child processes start as
 * a user's built service would: plain `node`, no TypeScript loader in the startup or memory figures.
 */
export async function buildWorkers(): Promise<void> {
  mkdirSync(BUILD_DIR, { recursive: true });
  const dir = path.join(BENCH_DIR, 'workers');
  const entryPoints = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
  await build({
    entryPoints,
    outdir: BUILD_DIR,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
}

export function workerPath(name: string): string {
  return path.join(BUILD_DIR, `${name}.mjs`);
}

export interface Worker {
  readonly child: ChildProcess;
  send(message: unknown): void;
  /** Next message matching `type` (bounded). */
  next<T = Record<string, unknown>>(type: string, timeoutMs?: number): Promise<T>;
  on(type: string, fn: (message: Record<string, unknown>) => void): void;
  stop(): Promise<void>;
}

/** Forks a bundled worker with an IPC channel; tracked for cleanup. */
export function startWorker(name: string, opts: { execArgv?: string[]; env?: Record<string, string> } = {}): Worker {
  const child = fork(workerPath(name), [], {
    cwd: REPO_ROOT,
    execArgv: opts.execArgv ?? [],
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const queue: Array<Record<string, unknown>> = [];
  const waiters: Array<{ type: string; resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }> = [];
  const handlers = new Map<string, Array<(m: Record<string, unknown>) => void>>();
  let exited = false;
  const exitedP = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('message', (raw) => {
    const m = raw as Record<string, unknown>;
    const type = String(m.type);
    if (type === 'failed') {
      for (const w of waiters.splice(0)) w.reject(new Error(`bench: worker ${name} failed: ${String(m.error)}`));
      return;
    }
    for (const h of handlers.get(type) ?? []) h(m);
    const i = waiters.findIndex((w) => w.type === type);
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
    else if (!handlers.has(type)) queue.push(m);
  });
  child.once('exit', (code, signal) => {
    exited = true;
    untrack();
    for (const w of waiters.splice(0)) w.reject(new Error(`bench: worker ${name} exited (code ${code}, signal ${signal})`));
  });
  const untrack = track({
    name: `bench worker ${name} (pid ${child.pid})`,
    dispose: async () => {
      if (!exited) child.kill('SIGKILL');
      await exitedP;
    },
    killSync: () => {
      if (!exited) child.kill('SIGKILL');
    },
  });
  return {
    child,
    send: (message) => child.send(message as object),
    next: <T>(type: string, timeoutMs = 60_000) => {
      const i = queue.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0] as T);
      if (type === 'error' || exited) return Promise.reject(new Error(`bench: worker ${name} is gone`));
      return within(
        timeoutMs,
        `worker ${name} answering ${type}`,
        new Promise<T>((resolve, reject) => {
          waiters.push({ type, resolve: resolve as (m: Record<string, unknown>) => void, reject });
        }),
      );
    },
    on: (type, fn) => {
      handlers.set(type, [...(handlers.get(type) ?? []), fn]);
    },
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exitedP;
      clearTimeout(t);
    },
  };
}

/** Asks each worker to close its clients (bounded wait for `closed`), then stops it; never throws. */
export async function closeWorkers(workers: readonly Worker[]): Promise<void> {
  await Promise.allSettled(
    workers.map(async (w) => {
      w.send({ type: 'close' });
      await w.next('closed', 10_000).catch(() => undefined);
      await w.stop();
    }),
  );
}

export async function startHub(env: Record<string, string | undefined>, port?: number): Promise<HubProcess> {
  return startHubProcess({ DISABLE_AUTH: 'true', HUB_LOG_LEVEL: 'warn', ...env }, { port, timeoutMs: 60_000 });
}

/** POST a whole config (upsert) to the hub; returns the new revision. */
export async function putConfig(hubUrl: string, service: string, config: unknown): Promise<number> {
  const res = await request(`${hubUrl}/api/v1/config/${service}?updated_by=bench`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(config),
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`bench: POST ${service} → ${res.statusCode} ${text.slice(0, 200)}`);
  return (JSON.parse(text) as { revision: number }).revision;
}

/** A config document of about `bytes` bytes once wrapped by the hub (default ~1 KB). */
export function sampleConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    operational: { batch_size: 100, gap_check_interval_hours: 1, max_retries: 3, retry_delay_seconds: 10, verification_enabled: true },
    download: {
      start_date: 'today-7days',
      end_date: 'today',
      granularity: {
        trading_pairs: { timeframe: 'minute', multiplier: 5 },
        analysis_pairs: { timeframe: 'minute', multiplier: 5 },
        confirmation_pairs: { timeframe: 'minute', multiplier: 5 },
      },
      symbols: ['AAPL', 'MSFT', 'GOOG', 'AMZN', 'NVDA', 'META', 'TSLA', 'AMD', 'INTC', 'ORCL', 'CRM', 'ADBE'],
    },
    features: { enable_gap_verification: true, enable_period_tracker: true, enable_auto_backfill: true, enable_metrics: false },
    limits: { max_concurrent_requests: 16, requests_per_minute: 300, max_payload_kb: 512, queue_depth: 10_000 },
    ...extra,
  };
}
