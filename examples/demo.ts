/**
 * `npm run demo`: the whole story in one command, with no setup.
 *
 *   1. start the reference hub (embedded PGlite in a temp dir, API keys; NATS when one is reachable)
 *   2. start a demo service (ConfigClient with a schema, defaults and one env-critical value)
 *   3. change a value through the hub's HTTP API and time its propagation to onChange
 *   4. safe changes: the fleet view shows the service on the latest revision; a bad change (batch_size -5)
 *      is refused by the hub with the consumer named, and the service keeps its value
 *   5. stop the hub: the service keeps serving its last good value
 *   6. restart the hub (same data, same port), change again: the service converges
 *   7. close everything, remove temp dirs, exit 0 (1 on error, 130 on Ctrl-C)
 *
 * Env: NATS_URL (default nats://127.0.0.1:4222; probed, polling when closed), DEMO_DB_PASSWORD (a
 * placeholder is used when unset; it is only ever printed redacted).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import type { ConfigChange } from '../src/index.js';
import { createDemoClient, DB_PASSWORD_ENV, type DemoClient, SERVICE } from './demo-service.js';
import { canConnect } from './tcp-probe.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const POLL_INTERVAL_MS = 500;
/** With NATS the poll is only the safety net; keep it slow so the measured time is the NATS path. */
const SAFETY_POLL_INTERVAL_MS = 5_000;
const HUB_READY = /hub listening on (http:\/\/\S+) \(store: ([^,]+), nats: (on|off)\)/;

const started = performance.now();
const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const detail = (line: string): void => say(`      ${line}`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ── resources to clean up ────────────────────────────────────────────────────────────────────
let hub: HubChild | undefined;
let client: DemoClient | undefined;
const tempDirs: string[] = [];
const http = new Agent({ keepAliveTimeout: 1_000, connect: { timeout: 1_000 } });

interface HubChild {
  child: ChildProcess;
  url: string;
  nats: 'on' | 'off';
  store: string;
  output: () => string;
  exited: Promise<void>;
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────────

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A short TCP connect: is something listening at the NATS URL's host:port? */
function probeTcp(url: string, timeoutMs = 400): Promise<boolean> {
  let host = '127.0.0.1';
  let port = 4222;
  try {
    const parsed = new URL(url.split(',')[0]!.trim());
    host = parsed.hostname || host;
    port = Number(parsed.port || 4222);
  } catch {
    return Promise.resolve(false);
  }
  return canConnect(port, host, timeoutMs);
}

/** Runs the reference hub as a child process (one node process with tsx's loader) and waits for its ready line. */
async function startHub(env: Record<string, string | undefined>, port: number): Promise<HubChild> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, HOST: '127.0.0.1', PORT: String(port), HUB_LOG_LEVEL: 'warn' };
  delete childEnv.DATABASE_URL; // the demo always runs on embedded PGlite
  delete childEnv.DISABLE_AUTH;
  for (const key of Object.keys(childEnv)) if (childEnv[key] === undefined) delete childEnv[key];
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/hub/main.ts'], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: Ctrl-C reaches the demo only, which stops the hub itself
  });
  let output = '';
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const ready = new Promise<RegExpMatchArray>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const match = output.match(HUB_READY);
      if (match) resolve(match);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.once('error', (error) => reject(new Error(`could not start the hub: ${error.message}`)));
    void exited.then(() => reject(new Error(`the hub exited before it was ready:\n${output.trim()}`)));
  });
  const handle: HubChild = { child, url: '', nats: 'off', store: '', output: () => output, exited };
  hub = handle;
  const match = await withTimeout(ready, 30_000, 'the hub to listen');
  handle.url = match[1]!.replace(/\/$/, '');
  handle.store = match[2]!;
  handle.nats = match[3] as 'on' | 'off';
  return handle;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM, wait for the exit; SIGKILL after `graceMs`. */
async function stopHub(h: HubChild, graceMs = 5_000): Promise<void> {
  signalGroup(h.child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(h.child, 'SIGKILL'), graceMs);
  try {
    await withTimeout(h.exited, graceMs + 3_000, 'the hub to exit');
  } finally {
    clearTimeout(timer);
  }
  if (hub === h) hub = undefined;
}

async function hubHealth(url: string): Promise<{ status: string; nats: boolean } | undefined> {
  try {
    const res = await request(`${url}/health`, { dispatcher: http, headersTimeout: 2_000, bodyTimeout: 2_000 });
    const body = (await res.body.json()) as { status: string; nats: boolean };
    return res.statusCode === 200 ? body : undefined;
  } catch {
    return undefined;
  }
}

/** PATCH (RFC 7396 merge patch) with the admin key; returns the hub's answer. */
async function patchConfig(url: string, apiKey: string, patch: unknown, reason: string): Promise<{ revision?: number; broadcast?: string }> {
  const res = await request(`${url}/api/v1/config/${SERVICE}?updated_by=demo-admin&change_reason=${encodeURIComponent(reason)}`, {
    dispatcher: http,
    method: 'PATCH',
    headers: { 'content-type': 'application/merge-patch+json', 'x-api-key': apiKey },
    body: JSON.stringify(patch),
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
  });
  const body = (await res.body.json()) as { revision?: number; broadcast?: string; detail?: string };
  if (res.statusCode !== 200) throw new Error(`PATCH ${SERVICE} answered ${res.statusCode}: ${body.detail ?? JSON.stringify(body)}`);
  return body;
}

interface HubReply {
  status: number;
  body: any;
}

async function hubCall(url: string, apiKey: string, method: 'GET' | 'POST' | 'PATCH', pathAndQuery: string, body?: unknown): Promise<HubReply> {
  const res = await request(`${url}/api/v1/config${pathAndQuery}`, {
    dispatcher: http,
    method,
    headers: { 'x-api-key': apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
  });
  return { status: res.statusCode, body: await res.body.json() };
}

async function currentConfig(url: string, apiKey: string): Promise<Record<string, unknown>> {
  return (await hubCall(url, apiKey, 'GET', `/${SERVICE}`)).body.config as Record<string, unknown>;
}

/** The fleet view once the service reported the revision it runs (its report follows a change within 1 s). */
async function waitForFleetView(url: string, apiKey: string, revision: number | undefined) {
  let view: HubReply | undefined;
  await waitUntil(
    async () => {
      view = await hubCall(url, apiKey, 'GET', `/${SERVICE}/instances`);
      return view.status === 200 && view.body.summary.on_latest >= 1 && view.body.revision === revision && view.body.instances[0]?.schema_hash != null;
    },
    10_000,
    'the fleet view to list the service on the latest revision',
  );
  return view!.body as {
    revision: number;
    instances: Array<{ instance_id: string; host: string; pid: number; client_version: string; revision: number; source: string; schema_hash: string | null }>;
    summary: { total: number; on_latest: number; behind: number; rejected: number };
  };
}

/** Resolves with the next onChange call (and when it happened). */
type Heard = { change: ConfigChange; at: number };
const changeWaiters: Array<(heard: Heard) => void> = [];
function nextChange(ms: number): Promise<Heard> {
  return withTimeout(new Promise<Heard>((resolve) => changeWaiters.push(resolve)), ms, 'the onChange callback');
}

function printResolvedConfig(c: DemoClient): void {
  const all = c.explain(SERVICE, '');
  // Provenance also lists hub paths that the schema strips (here `download.*`): they are not served.
  const explained = Object.keys(all.leaves ?? {})
    .sort()
    .map((leaf) => c.explain(SERVICE, leaf));
  const shown = explained.filter((e) => e.value !== undefined);
  const width = Math.max(...shown.map((e) => e.path.length));
  for (const e of shown) {
    const from = e.envVariable ? `${e.layer} (${e.envVariable})` : e.layer;
    detail(`  ${e.path.padEnd(width)}  = ${JSON.stringify(e.value).padEnd(12)} ← ${from}`);
  }
  const stripped = explained.length - shown.length;
  if (stripped > 0) detail(`  (${stripped} more hub paths are not in the schema and are not served)`);
}

// ── the story ────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const natsUrl = process.env.NATS_URL || 'nats://127.0.0.1:4222';
  if (!process.env[DB_PASSWORD_ENV]) process.env[DB_PASSWORD_ENV] = `placeholder-${randomBytes(6).toString('hex')}`;
  const serviceKey = `svc-${randomBytes(16).toString('hex')}`;
  const adminKey = `adm-${randomBytes(16).toString('hex')}`;
  const hubEnv = {
    HUB_DATA_DIR: await mkdtemp(path.join(tmpdir(), 'central-hub-demo-data-')),
    HUB_API_KEYS: JSON.stringify([
      { name: 'demo-service', key: serviceKey, scopes: ['read:*'] },
      { name: 'demo-admin', key: adminKey, scopes: ['read:*', 'write:*'] },
    ]),
    NATS_URL: undefined as string | undefined,
  };
  tempDirs.push(hubEnv.HUB_DATA_DIR);
  const snapshotDir = await mkdtemp(path.join(tmpdir(), 'central-hub-demo-snapshots-'));
  tempDirs.push(snapshotDir);

  // 1 ─ the hub
  say('[1/7] starting the Central Hub (reference hub on embedded PGlite; a cold start takes a few seconds) …');
  const natsUp = await probeTcp(natsUrl);
  if (natsUp) hubEnv.NATS_URL = natsUrl;
  let t = performance.now();
  let h = await startHub(hubEnv, 0);
  const port = Number(new URL(h.url).port);
  detail(`hub listening on ${h.url} (store: ${h.store}, nats: ${h.nats}) after ${secs(performance.now() - t)}`);
  detail(`data dir ${hubEnv.HUB_DATA_DIR}; API keys: demo-service (read), demo-admin (read+write)`);
  if (natsUp) {
    await waitUntil(async () => (await hubHealth(h.url))?.nats === true, 10_000, 'the hub to connect to NATS');
    detail(`hot reload: NATS at ${natsUrl} (safety-net poll every ${secs(SAFETY_POLL_INTERVAL_MS)})`);
  } else {
    detail(`hot reload: polling every ${POLL_INTERVAL_MS} ms (no NATS reachable at ${natsUrl})`);
  }

  // 2 ─ the service
  say(`[2/7] starting the demo service (ConfigClient for ${SERVICE}: zod schema, defaults, ${DB_PASSWORD_ENV} from env) …`);
  const c = createDemoClient({
    hubUrl: h.url,
    apiKey: serviceKey,
    natsUrl: natsUp ? natsUrl : undefined,
    snapshotDir,
    pollIntervalMs: natsUp ? SAFETY_POLL_INTERVAL_MS : POLL_INTERVAL_MS,
  });
  client = c;
  c.onChange(SERVICE, (_next, _prev, change) => {
    const at = performance.now();
    for (const resolve of changeWaiters.splice(0)) resolve({ change, at });
  });
  c.onError((error) => detail(`(client reported ${error.code}: ${error.message})`));
  const cfg = await c.get(SERVICE);
  if (natsUp) await waitUntil(() => c.status(SERVICE).nats === 'connected', 10_000, 'the client to subscribe on NATS');
  let st = c.status(SERVICE);
  detail(`resolved config (source ${st.source}, revision ${st.revision}, nats ${st.nats}); value ← layer:`);
  printResolvedConfig(c);

  // 3 ─ a change through the hub's HTTP API
  const before = cfg.operational.batch_size;
  const after = before === 250 ? 300 : 250;
  say(`[3/7] changing operational.batch_size ${before} → ${after} through the hub's HTTP API (PATCH, demo-admin key) …`);
  let heard = nextChange(15_000);
  t = performance.now();
  let answer = await patchConfig(h.url, adminKey, { operational: { batch_size: after } }, 'demo: bigger batches');
  let { change, at } = await heard;
  detail(`hub answered: revision ${answer.revision}, broadcast ${answer.broadcast}`);
  detail(`onChange: changed paths [${change.changedPaths.join(', ')}], revision ${change.revision}, via ${change.source}`);
  detail(`propagation time: ${(at - t).toFixed(0)} ms (HTTP write → onChange callback, via ${change.source})`);
  const now = await c.get(SERVICE);
  if (now.operational.batch_size !== after) throw new Error(`get() returned batch_size ${now.operational.batch_size}, expected ${after}`);

  // 4 ─ safe changes: the hub knows its consumers and refuses what they would reject
  say('[4/7] safe changes: the fleet view, then a bad change (operational.batch_size → -5) …');
  const view = await waitForFleetView(h.url, adminKey, answer.revision);
  for (const i of view.instances) {
    detail(`instance ${i.instance_id} on ${i.host} (pid ${i.pid}, client ${i.client_version}): revision ${i.revision}, source ${i.source}, schema ${String(i.schema_hash).slice(0, 12)}…`);
  }
  detail(`fleet view: ${view.summary.total} instance(s), ${view.summary.on_latest} on the latest revision ${view.revision}, ${view.summary.behind} behind, ${view.summary.rejected} rejected`);
  const refused = await hubCall(h.url, adminKey, 'PATCH', `/${SERVICE}?change_reason=${encodeURIComponent('demo: a typo')}`, { operational: { batch_size: -5 } });
  if (refused.status !== 422) throw new Error(`the bad change was not refused: ${refused.status} ${JSON.stringify(refused.body)}`);
  const consumers = refused.body.consumers as Array<{ schema_hash: string; instances: number }>;
  detail(`hub refused it: ${refused.status} ${refused.body.detail}`);
  for (const issue of refused.body.issues as Array<{ path: string; message: string }>) detail(`  issue: ${issue.path} ${issue.message}`);
  for (const consumer of consumers) detail(`  consumer: schema ${consumer.schema_hash.slice(0, 12)}… (${consumer.instances} instance(s))`);
  const dry = await hubCall(h.url, adminKey, 'POST', `/${SERVICE}/validate`, { ...(await currentConfig(h.url, adminKey)), operational: { ...((await currentConfig(h.url, adminKey)).operational as object), batch_size: 500 } });
  detail(`dry run of batch_size 500: ${dry.status === 200 && dry.body.valid === true ? 'valid' : `refused (${dry.status})`} for ${(dry.body.consumers as unknown[]).length} consumer(s), nothing written`);
  const kept = await c.get(SERVICE);
  if (kept.operational.batch_size !== after) throw new Error('the refused change reached the service');
  detail(`the service still runs operational.batch_size = ${kept.operational.batch_size} (revision ${c.status(SERVICE).revision})`);

  // 5 ─ the hub goes away
  say('[5/7] stopping the hub (SIGTERM) …');
  await stopHub(h);
  detail('hub stopped');
  const failure = await c.refresh(SERVICE).then(
    () => undefined,
    (error: { code?: string }) => error.code ?? String(error),
  );
  if (failure === undefined) throw new Error('a forced refresh succeeded with the hub stopped');
  detail(`forced refresh failed as expected: ${failure}`);
  const served = await c.get(SERVICE);
  st = c.status(SERVICE);
  if (served.operational.batch_size !== after) throw new Error('the service lost its last good value');
  detail(
    `served while the hub is down: operational.batch_size = ${served.operational.batch_size} (source ${st.source}, stale ${st.stale}, revision ${st.revision}, last error ${st.lastErrorCode})`,
  );

  // 6 ─ the hub comes back
  say(`[6/7] restarting the hub (same data dir, same port ${port}) …`);
  t = performance.now();
  h = await startHub(hubEnv, port);
  detail(`hub listening on ${h.url} (nats: ${h.nats}) after ${secs(performance.now() - t)}`);
  if (natsUp) await waitUntil(async () => (await hubHealth(h.url))?.nats === true, 10_000, 'the hub to reconnect to NATS');
  await waitUntil(() => c.status(SERVICE).source === 'hub' && !c.status(SERVICE).stale, 15_000, 'the client to reach the hub again');
  st = c.status(SERVICE);
  detail(`client reached the hub again: source ${st.source}, stale ${st.stale}, revision ${st.revision} (data kept across the restart)`);
  const backfill = (await c.get(SERVICE)).features.enable_auto_backfill;
  say(`      changing features.enable_auto_backfill ${backfill} → ${!backfill} …`);
  heard = nextChange(15_000);
  t = performance.now();
  answer = await patchConfig(h.url, adminKey, { features: { enable_auto_backfill: !backfill } }, 'demo: toggle backfill');
  ({ change, at } = await heard);
  st = c.status(SERVICE);
  detail(`onChange: changed paths [${change.changedPaths.join(', ')}], revision ${change.revision}, via ${change.source}`);
  detail(`propagation time: ${(at - t).toFixed(0)} ms (HTTP write → onChange callback, via ${change.source})`);
  if (st.source !== 'hub' || st.revision !== answer.revision) throw new Error(`client did not converge: ${JSON.stringify(st)}`);
  detail(`converged after the restart: source ${st.source}, stale ${st.stale}, revision ${st.revision} = hub revision ${answer.revision}`);

  // 7 ─ clean up
  say('[7/7] closing the client, stopping the hub, removing temp dirs …');
  await cleanup();
  detail('nothing left running');
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const c = client;
    client = undefined;
    await c?.close().catch(() => undefined);
    if (hub) await stopHub(hub).catch(() => hub && signalGroup(hub.child, 'SIGKILL'));
    await http.close().catch(() => undefined);
    for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  })();
  return cleaning;
}

// Last resort: never leave a hub behind, whatever happens.
process.on('exit', () => {
  if (hub) signalGroup(hub.child, 'SIGKILL');
});
process.once('SIGINT', () => {
  say('\ninterrupted: cleaning up …');
  void cleanup().finally(() => process.exit(130));
});
process.once('SIGTERM', () => {
  void cleanup().finally(() => process.exit(143));
});

main().then(
  async () => {
    await cleanup();
    say(`demo finished in ${secs(performance.now() - started)}: exit 0`);
    process.exit(0);
  },
  async (error: unknown) => {
    const h = hub;
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    if (h) process.stderr.write(`hub output:\n${h.output().trim()}\n`);
    await cleanup();
    process.exit(1);
  },
);
