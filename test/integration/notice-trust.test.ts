/**
 * Issue 9 #7, #8, #9 — what a NATS notice may and may not do — on the shared nats-server (127.0.0.1:4222, a
 * subject prefix per test), the hub mocked by msw through the undici bridge (ETag `"<revision>"`, 304 on
 * If-None-Match, as the reference hub). The client is handed a connection on which the test also listens
 * for a sentinel published right after each notice by the same publisher: when the sentinel arrives, the
 * watcher has handled the notice (no sleep guesses at delivery).
 *
 * - #7 with `nats.applyPayload: true`, a forged notice (revision 9e15, or updated_at far in the future) cannot
 *   pin a fake value: the next hub write's notice still applies, `refresh()` returns the hub's value,
 *   `status().source` is `notice` while unconfirmed, and the forged config never reaches the snapshot file;
 * - #8 100 forged notices in 1.5 s cost a bounded number of GETs (notice budget: 3 at once, then 1/s), and a
 *   real change published after them still arrives;
 * - #9 a notice that arrives while the service is failing and a recovery fetch is in flight is not lost:
 *   the fetch read revision 5, the notice for 6 is followed by a follow-up fetch.
 * - restore: a notice for the revision the client holds but with other content (a hub restored from a
 *   backup, then rewritten) is checked with the hub — with a request the hub cannot answer 304.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpResponse, http } from 'msw';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ConfigChange, ConfigClient, type ConfigClientOptions, type ConfigError } from '../../src/index.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';
import { SentinelDelivery } from '../helpers/nats-sentinel.js';

const NATS_URL = process.env.HUB_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const HUB = 'http://hub.notice-trust.test';
const SERVICE = 'notice-trust';
const BASE_TIME = 1_760_000_000_000;
const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const schema = z.object({ v: z.string(), n: z.number() });
const services = { [SERVICE]: { schema, defaults: { v: 'default', n: 0 } } };
type Cfg = z.infer<typeof schema>;
const FORGED: Cfg = { v: 'forged', n: -1 };

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

// ── the hub ─────────────────────────────────────────────────────────────────────────────────────

interface Hub {
  up: boolean;
  revision: number;
  config: Cfg;
  updatedAt: number;
  /** GETs seen (all), and their If-None-Match headers. */
  gets: Array<{ at: number; ifNoneMatch: string | null; revision: number }>;
  /** When set, every answer waits for it (read first: the answer is what the hub held when the GET came). */
  gate: Promise<void> | undefined;
  onRequest: (() => void) | undefined;
}

let agent: MswAgent;
let hub: Hub;

function write(config: Cfg, revision = hub.revision + 1): Cfg {
  Object.assign(hub, { revision, config, updatedAt: BASE_TIME + revision });
  return config;
}

function noticeOf(revision: number, config: Cfg, updatedAt = BASE_TIME + revision) {
  return { service_name: SERVICE, revision, config, version: `v${revision}`, updated_at: updatedAt, action: 'updated' };
}

// ── NATS: a handed connection with a sentinel ───────────────────────────────────────────────────

let nc: NatsConnection;
let pub: NatsConnection;
const SENTINEL = `notice-trust.sentinel.${process.pid}`;
let sentinels: SentinelDelivery;
let testSeq = 0;
let prefix = '';

/** Publishes `payload` (object → JSON), then a sentinel; resolves once the watcher has handled the payload. */
const deliver = (payload: unknown): Promise<void> =>
  sentinels.deliver(`${prefix}.${SERVICE}`, payload instanceof Uint8Array ? payload : encoder.encode(JSON.stringify(payload)));

// ── clients ─────────────────────────────────────────────────────────────────────────────────────

let snapshotDir: string;
const clients: ConfigClient<typeof services>[] = [];
const snapshotFile = () => join(snapshotDir, `${SERVICE}.json`);

interface Made {
  client: ConfigClient<typeof services>;
  changes: Array<{ next: Cfg; change: ConfigChange }>;
  errors: ConfigError[];
}

async function makeClient(overrides: Partial<ConfigClientOptions<typeof services>> & { applyPayload?: boolean } = {}): Promise<Made> {
  const { applyPayload, ...rest } = overrides;
  const client = new ConfigClient({
    hubUrl: HUB,
    apiKey: 'k',
    snapshotDir,
    pollIntervalMs: false,
    transport: { dispatcher: agent, retries: 0, retryBaseDelayMs: 1, retryMaxDelayMs: 2 },
    recovery: { minDelayMs: 600_000, maxDelayMs: 600_000, unauthorizedDelayMs: 600_000 },
    nats: { connection: nc, subjectPrefix: prefix, applyPayload: applyPayload ?? false },
    services,
    ...rest,
  });
  clients.push(client);
  const made: Made = { client, changes: [], errors: [] };
  client.onError((error) => made.errors.push(error));
  client.onChange(SERVICE, (next, _prev, change) => {
    made.changes.push({ next: { ...next }, change });
  });
  await client.get(SERVICE);
  await waitUntil('the client to subscribe', () => client.status(SERVICE).nats === 'connected');
  // The resync once subscribed is one more (conditional) GET: let it finish.
  await quiet();
  return made;
}

/** Until no GET came for 30 ms. */
async function quiet(ms = 30): Promise<void> {
  let seen = -1;
  let since = Date.now();
  for (;;) {
    if (hub.gets.length !== seen) {
      seen = hub.gets.length;
      since = Date.now();
    } else if (Date.now() - since >= ms) {
      return;
    }
    await sleep(2);
  }
}

async function snapshotText(): Promise<string | undefined> {
  return readFile(snapshotFile(), 'utf8').catch(() => undefined);
}

beforeAll(async () => {
  agent = createMswAgent([
    http.get(`${HUB}/api/v1/config/:service`, async ({ request }) => {
      // Read at arrival: a delayed answer carries what the hub held when the GET came.
      const held = { up: hub.up, revision: hub.revision, config: hub.config, updatedAt: hub.updatedAt };
      hub.gets.push({ at: performance.now(), ifNoneMatch: request.headers.get('if-none-match'), revision: held.revision });
      hub.onRequest?.();
      if (hub.gate) await hub.gate;
      if (!held.up) return HttpResponse.error();
      const etag = `"${held.revision}"`;
      if (request.headers.get('if-none-match') === etag) return new HttpResponse(null, { status: 304, headers: { etag } });
      return HttpResponse.json(
        { service_name: SERVICE, config: held.config, version: `v${held.revision}`, updated_at: held.updatedAt, revision: held.revision },
        { headers: { etag } },
      );
    }),
  ]);
  nc = await connect({ servers: NATS_URL, name: 'notice-trust-clients' });
  pub = await connect({ servers: NATS_URL, name: 'notice-trust-publisher' });
  sentinels = await SentinelDelivery.attach(pub, nc, SENTINEL);
});

beforeEach(async () => {
  testSeq++;
  prefix = `notice-trust.p${process.pid}.t${testSeq}`;
  hub = { up: true, revision: 2, config: { v: 'hub-2', n: 2 }, updatedAt: BASE_TIME + 2, gets: [], gate: undefined, onRequest: undefined };
  snapshotDir = await mkdtemp(join(tmpdir(), 'chc-notice-trust-'));
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await rm(snapshotDir, { recursive: true, force: true });
});

afterAll(async () => {
  await agent?.close();
  await nc?.close().catch(() => undefined);
  await pub?.close().catch(() => undefined);
});

// ── #7 ──────────────────────────────────────────────────────────────────────────────────────────

describe('#7 with nats.applyPayload, an unsigned notice is applied but never outranks the hub', () => {
  it.each([
    ['revision 9e15', noticeOf(9e15, FORGED)],
    ['updated_at far in the future, no revision', { service_name: SERVICE, config: FORGED, version: 'x', updated_at: 9e15 }],
  ])('T3: #7 a forged notice (%s) cannot pin a fake value: the next hub write’s notice applies, refresh() returns the hub’s value, status().source is notice while unconfirmed, the snapshot never holds it', async (_what, forged) => {
    const { client, changes } = await makeClient({ applyPayload: true });
    expect(await client.get(SERVICE)).toEqual({ v: 'hub-2', n: 2 });
    await waitUntil('the snapshot of revision 2', async () => (await snapshotText())?.includes('hub-2') === true);

    await deliver(forged);
    // The opt-in applies a validated payload, but says it is unconfirmed.
    expect(client.status(SERVICE).source, 'status().source after an unsigned notice').toBe('notice');
    expect(await client.get(SERVICE)).toEqual(FORGED);
    await sleep(30);
    expect(await snapshotText(), 'the snapshot after the forged notice').not.toContain('forged');

    // A real write, and its notice: not shadowed by the forged revision / updated_at. (The client may apply
    // it, or — the forged payload claiming to be newer — ask the hub, within the fetch budget.)
    const next = write({ v: 'hub-3', n: 3 });
    await deliver(noticeOf(3, next));
    await waitUntil('the hub write’s notice to reach the client after the forged one', async () => (await client.get(SERVICE)).v === 'hub-3');
    expect(await client.get(SERVICE)).toEqual(next);
    const { source: afterWrite } = client.status(SERVICE);
    expect(['notice', 'hub'], 'applied (unconfirmed) or confirmed by the hub').toContain(afterWrite);
    expect(client.status(SERVICE).revision).toBe(3);

    // refresh(): the hub's answer wins (unconditional while an unconfirmed notice value is served: it has no ETag).
    expect(await client.refresh(SERVICE)).toEqual(next);
    expect(client.status(SERVICE)).toMatchObject({ source: 'hub', revision: 3 });
    if (afterWrite === 'notice') expect(hub.gets.at(-1)?.ifNoneMatch, 'the confirming GET after a notice value is unconditional').toBeNull();
    expect(changes.map((c) => c.next)).toEqual([FORGED, next]);

    await client.close();
    const text = await snapshotText();
    expect(text).not.toContain('forged');
    expect(JSON.parse(text ?? '{}')).toMatchObject({ config: next, revision: 3 });
  });

  it('T3: #7 refresh() right after a forged notice returns the hub’s value (not the forged one), and a later write’s notice still applies', async () => {
    const { client } = await makeClient({ applyPayload: true });
    await deliver(noticeOf(9e15, FORGED));
    expect(client.status(SERVICE).source).toBe('notice');
    expect(await client.refresh(SERVICE)).toEqual({ v: 'hub-2', n: 2 });
    expect(client.status(SERVICE)).toMatchObject({ source: 'hub', revision: 2 });
    const next = write({ v: 'hub-3', n: 3 });
    await deliver(noticeOf(3, next));
    expect(await client.get(SERVICE)).toEqual(next);
    await client.close();
    expect(await snapshotText()).not.toContain('forged');
  });
});

// ── #8 ──────────────────────────────────────────────────────────────────────────────────────────

describe('#8 forged notices cost a bounded number of GETs', () => {
  it('T3: #8 100 forged notices in 1.5 s cause ≈ 3 + 1/s GETs from one client, and a real change published after them still arrives', async () => {
    const { client, changes } = await makeClient();
    const before = hub.gets.length;
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) {
      // Each one different (no parse cache), all claiming a revision from the far future.
      await deliver(noticeOf(9e15 - i, { v: `forged-${i}`, n: -i }));
      await sleep(Math.max(0, t0 + (i + 1) * 15 - performance.now()));
    }
    const stormMs = performance.now() - t0;
    // The deferred fetch (the last one is never dropped) comes at most 1 s later.
    await sleep(1_100);
    await quiet();
    const gets = hub.gets.length - before;
    const spanS = (hub.gets.at(-1)!.at - t0) / 1_000;
    console.log(`#8: 100 forged notices in ${Math.round(stormMs)} ms → ${gets} GETs from one client (over ${spanS.toFixed(2)} s)`);
    // Design bound: a burst of 3, then one per second over the storm, plus the one deferred after it.
    expect(gets).toBeGreaterThanOrEqual(1);
    expect(gets).toBeLessThanOrEqual(3 + Math.ceil(stormMs / 1_000) + 1);
    expect(await client.get(SERVICE)).toEqual({ v: 'hub-2', n: 2 });
    expect(changes).toEqual([]);

    // A real change after the storm still arrives (within the budget: at most one deferred second).
    const next = write({ v: 'hub-3', n: 3 });
    await deliver(noticeOf(3, next));
    await waitUntil('the real change after the storm', () => changes.length === 1, 3_000);
    expect(changes[0]).toMatchObject({ next, change: { source: 'nats', revision: 3 } });
  });
});

// ── #9 ──────────────────────────────────────────────────────────────────────────────────────────

describe('#9 a notice during a recovery fetch is not lost', () => {
  it('T3: #9 failing, a recovery fetch in flight reads revision 5; the notice for 6 that arrives meanwhile is followed by a follow-up fetch', async () => {
    write({ v: 'hub-5', n: 5 }, 5);
    const { client, changes } = await makeClient({ recovery: { minDelayMs: 50, maxDelayMs: 50, unauthorizedDelayMs: 600_000 } });
    expect(await client.get(SERVICE)).toEqual({ v: 'hub-5', n: 5 });

    // The hub goes down: a refresh fails, the service is failing, the recovery timer owns the retries.
    hub.up = false;
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'HUB_UNREACHABLE' });
    expect(client.status(SERVICE).stale).toBe(true);
    const failedAt = hub.gets.length;

    // The hub is back with revision 5; the recovery GET arrives and its answer is held back.
    let release: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => {
      hub.onRequest = () => {
        hub.onRequest = undefined;
        hub.gate = new Promise<void>((r) => {
          release = r;
        });
        resolve();
      };
    });
    hub.up = true;
    await arrived;
    expect(hub.gets.at(-1)).toMatchObject({ revision: 5 });
    const recoveryGets = hub.gets.length;

    // Revision 6 is written, and its notice reaches the client while that fetch is in flight (still failing).
    expect(client.status(SERVICE)).toMatchObject({ stale: true, lastErrorCode: 'HUB_UNREACHABLE' });
    const next = write({ v: 'hub-6', n: 6 }, 6);
    await deliver(noticeOf(6, next));
    const gate = hub.gate;
    hub.gate = undefined;
    release();
    await gate;

    await waitUntil('the client to reach revision 6', () => client.status(SERVICE).revision === 6, 3_000);
    await quiet();
    expect(hub.gets.length - recoveryGets, 'one follow-up GET after the recovery fetch').toBe(1);
    expect(hub.gets.at(-1)).toMatchObject({ revision: 6 });
    expect(await client.get(SERVICE)).toEqual(next);
    expect(client.status(SERVICE)).toMatchObject({ source: 'hub', revision: 6, stale: false });
    // (The recovery answer moved the client to 5 → unchanged; the follow-up to 6 is the one change.)
    expect(changes.map((c) => c.next)).toEqual([next]);
    expect(failedAt).toBeGreaterThan(0);
  });
});

// ── restore ─────────────────────────────────────────────────────────────────────────────────────

describe('restore: a same-revision notice with other content is checked with the hub', () => {
  it('T3: a hub restored from a backup and rewritten to the revision the client holds: its notice moves the client to the hub’s content (the check must not be a conditional GET the hub answers 304)', async () => {
    const { client, changes } = await makeClient();
    expect(await client.get(SERVICE)).toEqual({ v: 'hub-2', n: 2 });
    // Restored from a backup taken at revision 1, then written: revision 2 again, other content.
    const rewritten = write({ v: 'hub-2-after-restore', n: 22 }, 2);
    const before = hub.gets.length;
    await deliver(noticeOf(2, rewritten));
    await quiet();
    expect(hub.gets.length - before, 'one check with the hub').toBe(1);
    const check = hub.gets.at(-1)!;
    expect(await client.get(SERVICE), `the client after the check (the check sent If-None-Match: ${check.ifNoneMatch})`).toEqual(rewritten);
    expect(changes.map((c) => c.next)).toEqual([rewritten]);
  });
});
