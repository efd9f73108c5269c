/**
 * The model-based test of the client runtime of one service (fast-check `fc.commands` +
 * `fc.asyncModelRun`), run by props-client-runtime-model.test.ts (M1, the default mode: a notice is only a
 * hint to refetch) and props-client-runtime-model-apply.test.ts (M2, `nats.applyPayload`: a valid payload is
 * applied, unconfirmed — source `notice`, never in the snapshot — until a hub answer confirms or replaces it).
 *
 * The real system: a `ConfigClient` handed a connection to the shared nats-server (127.0.0.1:4222, a subject
 * prefix of its own per run), with two hubs (`hubUrl: [hub, replica]`) that are msw handlers behind the
 * undici bridge serving a model-controlled in-memory hub: 200 with an ETag, 304 when If-None-Match
 * matches, 404 when deleted, a network error when down. The replica lags one change behind the hub.
 *
 * Commands: hub write (revision + 1), hub delete, hub restore to a lower revision (a hub restored from a
 * backup: later writes reuse the revisions after it), outage (both down), failover (hub down, the lagging
 * replica up), replica down, hub up, a valid / stale / forged (revision 9e15, other config) / malformed
 * (not JSON) / deep (20 000 levels) notice published from a second connection, a poll tick
 * (`client.refresh`), a valid notice racing a tick, `get`, `close`, and a restart (close, then a new client on the same snapshot
 * directory with both hubs down). Every run starts with the hub up (1–3 revisions), down, or without the
 * config, and ends with: failover, tick, replica down, hub up, tick, hub write, its notice — which must
 * change the value — and, every other run, hub delete, tick (404), then close.
 *
 * The reference model says what must be served, where from (`status().source`), and how many GETs the
 * hubs see (one attempt per hub per fetch, from the one that answered last). After each command settles
 * (a notice is followed by a sentinel from the same publisher, which reaches the client's connection after
 * the notice was handled; then the hubs and `status()` stay quiet for QUIET_MS), the invariants are:
 *  (a) the served value is one a hub confirmed (a config it served with a 200, defaults after a 404 or
 *      with no answer yet, or the snapshot's); after a refresh with a hub up it is the answering hub's
 *      current config — also after a restore to a lower revision, or from a lagging replica;
 *  (b) one `onChange` per distinct change, with next/prev as the model says, never for an equal value;
 *  (c) a `get()` inside the listener sees `next`;
 *  (d) after `close()` nothing happens: no onChange, no hub request, no report; the snapshot file holds
 *      what the model says (never a forged value; none after a 404);
 *  (e) forged / malformed / deep notices never change the value (a forged one costs at most one GET within
 *      the notice budget; malformed and deep ones are reported once, NOTICE_INVALID), and at the end of
 *      every run a hub write's notice still changes the value.
 *
 * Notice budget: the model counts the tokens of the client's bucket (3, minus one for the resync after
 * the subscription) without the refill, so it never has more than the client; a notice that would need a
 * fetch when the model has no token left is not generated (the deferred fetch is issue-9 #8's subject, in
 * test/integration/notice-trust.test.ts).
 *
 * Recovery timers are set to 10 minutes so that the background retry never fires inside a run: the model
 * stays deterministic (a failing service is healed by a tick, as the recovery timer would).
 *
 * Replay: `MODEL_SEED=<seed> MODEL_PATH=<path> npx vitest run test/chaos/props-client-runtime-model.test.ts` (or -apply)
 * (the seed is printed after every run, the path on a failure); `MODEL_ETAG=revision|content` switches the
 * hub's ETag (see ETAG_MODE).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { HttpResponse, http } from 'msw';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, expect } from 'vitest';
import { z } from 'zod';
import { type ConfigChange, ConfigClient, type ConfigError } from '../../src/index.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';
import { SentinelDelivery } from '../helpers/nats-sentinel.js';
import { recordFigure } from './figures.js';
import { expectLive, expectRuns } from './liveness.js';

const HUB = 'http://hub.model.test';
/** A second hub, a replica lagging one change behind the first (failover in order, from the one that answered last). */
const REPLICA = 'http://replica.model.test';
const SERVICE = 'model-svc';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const NUM_RUNS = 200;
export const MAX_COMMANDS = 8;
/** How long the hub and the client's status must stay unchanged for a command to count as settled. */
const QUIET_MS = 12;
const SEED = process.env.MODEL_SEED !== undefined ? Number(process.env.MODEL_SEED) : (Date.now() ^ (process.pid << 8)) | 0;
const PATH = process.env.MODEL_PATH;
const BASE_TIME = 1_760_000_000_000;
/** The notice-fetch bucket (src/runtime/service-runtime.ts): 3 at once, then one per second. */
const NOTICE_BURST = 3;

interface Cfg {
  v: string;
  n: number;
}
const DEFAULTS: Cfg = { v: 'default', n: 0 };
const FORGED: Cfg = { v: 'forged', n: -1 };
const schema = z.object({ v: z.string(), n: z.number() });
const services = { [SERVICE]: { schema, defaults: DEFAULTS } };
type Client = ConfigClient<typeof services>;

const encoder = new TextEncoder();
const eq = (a: unknown, b: unknown): boolean => isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ── the hub ─────────────────────────────────────────────────────────────────────────────────────

interface HubEntry {
  revision: number;
  config: Cfg;
  updatedAt: number;
}
interface HubState extends HubEntry {
  up: boolean;
  deleted: boolean;
  /** The revisions the hub holds (a restore drops what came after the backup). */
  history: HubEntry[];
  /** Every state the hub went through, in order (writes, deletes, restores): the replica serves the one before the last. */
  states: Array<HubEntry & { deleted: boolean }>;
}

/** What the replica serves: the hub's previous state (one change behind), or its only one. */
function replicaState(h: HubState): HubEntry & { deleted: boolean } {
  return h.states.at(-2) ?? h.states.at(-1)!;
}

function pushState(h: HubState): void {
  h.states.push({ revision: h.revision, config: h.config, updatedAt: h.updatedAt, deleted: h.deleted });
}

function initialHub(start: 'up' | 'down' | 'absent', revisions = 1): HubState {
  if (start === 'absent') {
    return { up: true, deleted: true, revision: 0, config: DEFAULTS, updatedAt: BASE_TIME, history: [], states: [{ revision: 0, config: DEFAULTS, updatedAt: BASE_TIME, deleted: true }] };
  }
  const history: HubEntry[] = [];
  for (let r = 1; r <= revisions; r++) history.push({ revision: r, config: { v: `w0.${r}`, n: r }, updatedAt: BASE_TIME + r });
  return { ...history[history.length - 1]!, up: start === 'up', deleted: false, history, states: history.map((e) => ({ ...e, deleted: false })) };
}

const cloneHub = (h: HubState): HubState => ({ ...h, config: { ...h.config }, history: h.history.map((e) => ({ ...e })), states: h.states.map((e) => ({ ...e })) });

/** What the msw handler serves, for the current run. */
let hub: HubState = initialHub('up');
let replicaUp = false;
/** Configs the hub served with a 200 this run (JSON text). */
let servedByHub = new Set<string>();
let started = 0;
let finished = 0;

// ── liveness ────────────────────────────────────────────────────────────────────────────────────

const fresh = () => ({
  runs: 0,
  commands: 0,
  hubAnswers: 0,
  noticesDelivered: 0,
  noticesHandled: 0,
  noticeInvalidReports: 0,
  onChange: 0,
  natsChanges: 0,
  forgedFetches: 0,
  restoresConfirmed: 0,
  restarts: 0,
  snapshotBoots: 0,
  closedChecks: 0,
  finalHotReloads: 0,
  replicaAnswers: 0,
  snapshotRemovalsChecked: 0,
  noticesApplied: 0,
  forgedApplied: 0,
  racesWithFollowUp: 0,
});
let live = fresh();
let commandCounts = new Map<string, number>();
/** One line per model run (row), printed in afterAll. */
const summaries: string[] = [];
/**
 * The hub's ETag. `reference` (default): what the reference hub sends, `"<revision>-<updated_at base 36>"`
 * (examples/hub/routes/context.ts `etag()`): a hub restored from a backup reuses revision numbers for other
 * content, so the revision alone cannot be the validator. `revision`: the bare `"<revision>"` it sent before —
 * with it, a restore rewritten up to the revision a client holds is answered 304 and the client keeps the
 * old content (no client can see through that; `MODEL_ETAG=revision` shows it). `content`: a content hash.
 */
export const ETAG_MODE = (process.env.MODEL_ETAG ?? 'reference') as 'reference' | 'revision' | 'content';
const etagOf = (h: HubEntry): string =>
  ETAG_MODE === 'revision'
    ? `"${h.revision}"`
    : ETAG_MODE === 'content'
      ? `"${h.revision}-${createHash('sha256').update(JSON.stringify(h.config)).digest('hex').slice(0, 12)}"`
      : `"${h.revision}-${h.updatedAt.toString(36)}"`;

// ── NATS ────────────────────────────────────────────────────────────────────────────────────────

let agent: MswAgent;
/** Handed to every client; the sentinel subscription lives on it too. */
let nc: NatsConnection;
let pub: NatsConnection;
const SENTINEL = `model.sentinel.${process.pid}`;
let sentinels: SentinelDelivery;

/** Publishes `data`, then a sentinel; resolves when the sentinel reached the clients' connection. */
async function deliver(subject: string, data: Uint8Array): Promise<void> {
  await sentinels.deliver(subject, data);
  live.noticesDelivered++;
}

const DEEP_NOTICE = encoder.encode(`{"service_name":"${SERVICE}","revision":9000000000000000,"config":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`);
const MALFORMED_NOTICE = encoder.encode(`{"service_name":"${SERVICE}","revision":9000000000000000,"config":{"v":"forged"`);
const FORGED_NOTICE = encoder.encode(
  JSON.stringify({ service_name: SERVICE, revision: 9e15, config: FORGED, version: 'forged', updated_at: 9e15, action: 'updated' }),
);

// ── model and real system ───────────────────────────────────────────────────────────────────────

type Source = 'hub' | 'cache' | 'notice' | 'snapshot' | 'defaults';

interface Model {
  /** `nats.applyPayload`: valid notice payloads are applied (unconfirmed) instead of refetched. */
  apply: boolean;
  hub: HubState;
  writes: number;
  open: boolean;
  /** What the client must serve. */
  served: Cfg;
  source: Source;
  /** The hub layer the client holds (what its ETag and same-revision checks compare against); a notice's with applyPayload. */
  held: (Omit<HubEntry, 'revision'> & { revision: number | undefined }) | undefined;
  /** Successful hub answers (200, 304, 404) of this client. */
  confirmations: number;
  confirmedRev: number | undefined;
  failing: boolean;
  /** Lower bound of the client's notice-fetch tokens (no refill counted). */
  tokens: number;
  checkedRevision: number | undefined;
  /** The last-known-good file on disk. */
  snapshot: HubEntry | undefined;
  /** Hub requests the model expects (this run). */
  requests: number;
  replicaUp: boolean;
  /** The hub the client's transport tries first: the one that answered last (0 hub, 1 replica). */
  preferred: 0 | 1;
}

interface Delivery {
  next: unknown;
  prev: unknown;
  change: ConfigChange;
  inside: Promise<unknown>;
}

interface Real {
  client: Client | undefined;
  closed: boolean;
  snapshotDir: string;
  subjectPrefix: string;
  subject: string;
  deliveries: Delivery[];
  checked: number;
  errors: ConfigError[];
  errorsChecked: number;
  /** The commands of this run, for the failure message. */
  trail: string[];
}

interface NoticeFacts {
  revision: number | undefined;
  config: Cfg | undefined;
  updatedAt: number | undefined;
}

/** `revision` when both have one, else `updated_at` (src/runtime/decide.ts `isOlder`). */
function older(a: { revision: number | undefined; updatedAt: number | undefined }, than: { revision: number | undefined; updatedAt: number | undefined }): boolean {
  if (a.revision !== undefined && than.revision !== undefined) return a.revision < than.revision;
  return than.updatedAt !== undefined && a.updatedAt !== undefined && a.updatedAt < than.updatedAt;
}

/**
 * What a (valid) notice does: nothing, a fetch (within the budget), or — with `applyPayload` — applying its
 * payload, unconfirmed. Stale and duplicate notices are dropped, except one check of a same-revision notice
 * with other content; a payload not newer than the unconfirmed one being served is never applied (the hub
 * decides); a failing service only brings its (distant) recovery retry forward.
 */
function noticeOutcome(m: Readonly<Model>, n: NoticeFacts): 'none' | 'fetch' | 'apply' {
  if (!m.open) return 'none';
  if (m.confirmations > 0 && m.confirmedRev !== undefined && n.revision !== undefined && n.revision <= m.confirmedRev) {
    const check = n.revision === m.confirmedRev && n.config !== undefined && m.held !== undefined && !eq(n.config, m.held.config) && m.checkedRevision !== n.revision;
    return check && !m.failing ? 'fetch' : 'none';
  }
  if (m.failing) return 'none';
  if (m.apply && n.config !== undefined && n.updatedAt !== undefined) {
    if (m.source === 'notice' && m.held && !older(m.held, n)) {
      return m.held.revision !== n.revision || m.held.updatedAt !== n.updatedAt ? 'fetch' : 'none';
    }
    return 'apply';
  }
  return 'fetch';
}

/**
 * A fetch: one attempt per hub, from the one that answered last, until one answers; its answer is what the
 * client must serve (the hub is authoritative, a lagging replica included). Returns whether a hub answered.
 */
function modelFetch(m: Model): boolean {
  for (let i = 0; i < 2; i++) {
    const index = ((m.preferred + i) % 2) as 0 | 1;
    m.requests++;
    if (!(index === 0 ? m.hub.up : m.replicaUp)) continue;
    const state = index === 0 ? { ...m.hub } : replicaState(m.hub);
    m.failing = false;
    m.confirmations++;
    if (state.deleted) {
      // A 404 is final (no failover) and leaves the preferred hub as it was.
      m.served = DEFAULTS;
      m.source = 'defaults';
      m.held = undefined;
      m.confirmedRev = undefined;
      m.snapshot = undefined;
      return true;
    }
    m.preferred = index;
    const entry: HubEntry = { revision: state.revision, config: state.config, updatedAt: state.updatedAt };
    m.served = entry.config;
    m.source = 'hub';
    m.held = entry;
    m.confirmedRev = entry.revision;
    m.snapshot = entry;
    return true;
  }
  m.failing = true;
  if (m.source === 'hub') m.source = 'cache';
  return false;
}

function modelNotice(m: Model, n: NoticeFacts): 'none' | 'fetch' | 'apply' {
  const outcome = noticeOutcome(m, n);
  if (outcome === 'apply') {
    m.served = n.config!;
    m.source = 'notice';
    m.held = { revision: n.revision, config: n.config!, updatedAt: n.updatedAt! };
    return outcome;
  }
  if (outcome === 'fetch') {
    if (m.confirmations > 0 && m.confirmedRev !== undefined && n.revision !== undefined && n.revision <= m.confirmedRev) m.checkedRevision = n.revision;
    m.tokens--;
    modelFetch(m);
  }
  return outcome;
}

function validNotice(h: HubState): NoticeFacts & { bytes: Uint8Array } {
  const body = h.deleted
    ? { service_name: SERVICE, revision: h.revision, updated_at: h.updatedAt, action: 'deleted' }
    : { service_name: SERVICE, revision: h.revision, config: h.config, version: `v${h.revision}`, updated_at: h.updatedAt, action: 'updated' };
  return { revision: h.revision, config: h.deleted ? undefined : h.config, updatedAt: h.updatedAt, bytes: encoder.encode(JSON.stringify(body)) };
}

// ── settling and checking ───────────────────────────────────────────────────────────────────────

function statusKey(r: Real): string {
  if (!r.client) return '';
  try {
    return JSON.stringify(r.client.status(SERVICE));
  } catch (error) {
    return String(error);
  }
}

/** Until the hub saw `atLeast` requests, none is in flight, and nothing moved for QUIET_MS (≤ 3 s). */
async function settle(r: Real, atLeast: number): Promise<void> {
  const deadline = Date.now() + 3_000;
  let key = '';
  let since = Date.now();
  for (;;) {
    const k = `${started}|${finished}|${r.deliveries.length}|${r.errors.length}|${statusKey(r)}`;
    const now = Date.now();
    if (k !== key) {
      key = k;
      since = now;
    } else if (started >= atLeast && started === finished && now - since >= QUIET_MS) {
      return;
    }
    if (now > deadline) return;
    await sleep(2);
  }
}

/** The invariants, after a command settled. `before` is what the model served before it. */
async function verify(m: Model, r: Real, before: Cfg, label: string, expectChange = m.open && !eq(before, m.served)): Promise<void> {
  const where = `after ${label} (commands: ${r.trail.join(' → ')})`;
  expect(started, `hub requests ${where}`).toBe(m.requests);
  const fresh = r.deliveries.slice(r.checked);
  r.checked = r.deliveries.length;
  const newErrors = r.errors.slice(r.errorsChecked);
  r.errorsChecked = r.errors.length;
  if (!m.open) {
    // (d) nothing after close().
    expect(fresh, `onChange ${where}`).toEqual([]);
    expect(
      newErrors.map((e) => e.code),
      `reports ${where}`,
    ).toEqual([]);
    return;
  }
  const client = r.client!;
  const served = client.explain(SERVICE, '').value;
  // (a) a value the hub confirmed (or defaults, or the snapshot, itself a hub answer).
  const source = client.status(SERVICE).source;
  expect(
    eq(served, DEFAULTS) || servedByHub.has(JSON.stringify(served)) || (m.apply && source === 'notice'),
    `served ${JSON.stringify(served)} was never served by a hub (source ${source}) ${where}`,
  ).toBe(true);
  expect(served, `served value ${where}`).toEqual(m.served);
  expect(client.status(SERVICE).source, `status().source ${where}`).toBe(m.source);
  // (b) one onChange per distinct change, with next and prev.
  if (expectChange) {
    expect(fresh.length, `onChange count ${where}`).toBe(1);
    const [d] = fresh as [Delivery];
    expect(d.next, `onChange next ${where}`).toEqual(m.served);
    expect(d.prev, `onChange prev ${where}`).toEqual(before);
    // (c) get() inside the listener sees next.
    expect(await d.inside, `get() inside onChange ${where}`).toEqual(d.next);
    live.onChange++;
    if (d.change.source === 'nats') live.natsChanges++;
  } else {
    expect(
      fresh.map((d) => d.next),
      `onChange ${where}`,
    ).toEqual([]);
  }
  if (!m.apply) for (const d of fresh) expect(d.next, `forged value delivered ${where}`).not.toEqual(FORGED);
}

// ── the client's lifecycle ──────────────────────────────────────────────────────────────────────

async function openClient(m: Model, r: Real): Promise<void> {
  const client: Client = new ConfigClient({
    hubUrl: [HUB, REPLICA],
    apiKey: 'model-key',
    snapshotDir: r.snapshotDir,
    pollIntervalMs: false,
    startupTimeoutMs: 2_000,
    transport: { dispatcher: agent, retries: 0, retryBaseDelayMs: 1, retryMaxDelayMs: 2 },
    recovery: { minDelayMs: 600_000, maxDelayMs: 600_000, unauthorizedDelayMs: 600_000 },
    nats: { connection: nc, subjectPrefix: r.subjectPrefix, applyPayload: m.apply },
    services,
  });
  r.client = client;
  r.closed = false;
  client.onError((error) => r.errors.push(error));
  client.onChange(SERVICE, (next, prev, change) => {
    const inside = client.get(SERVICE);
    inside.catch(() => undefined);
    r.deliveries.push({ next, prev, change, inside });
  });
  const first = await client.get(SERVICE);
  for (let i = 0; client.status(SERVICE).nats !== 'connected'; i++) {
    if (i > 2_000) throw new Error(`client never subscribed: nats is ${client.status(SERVICE).nats}`);
    await sleep(1);
  }
  // The first fetch, then the resync after the subscription (a notice may have been missed meanwhile).
  await settle(r, m.requests + 1);
  const requests = started - m.requests;
  m.open = true;
  m.confirmations = 0;
  m.confirmedRev = undefined;
  m.checkedRevision = undefined;
  m.failing = false;
  m.held = undefined;
  m.tokens = NOTICE_BURST;
  m.preferred = 0;
  const expectedBefore = m.requests;
  modelFetch(m);
  if (m.failing) {
    // Hub down: the snapshot, else defaults. The resync only counts (a follow-up fetch, one token) if it
    // came while the first fetch was in flight; else it brings the (distant) recovery retry forward.
    m.served = m.snapshot?.config ?? DEFAULTS;
    m.source = m.snapshot ? 'snapshot' : 'defaults';
    m.held = m.snapshot;
    // One attempt per hub, per fetch.
    expect([2, 4], 'hub requests of a start with the hubs down (first fetch, maybe a resync follow-up)').toContain(requests);
    m.requests = expectedBefore + requests;
    m.tokens = NOTICE_BURST - 1;
    if (m.snapshot) live.snapshotBoots++;
  } else {
    // Hub up: the resync is a second (conditional) fetch.
    m.tokens--;
    modelFetch(m);
  }
  expect(first, 'first get').toEqual(m.served);
  r.checked = r.deliveries.length;
  r.errorsChecked = r.errors.length;
  await verify(m, r, m.served, 'start', false);
}

async function closeClient(m: Model, r: Real): Promise<void> {
  const client = r.client!;
  await client.close();
  r.closed = true;
  m.open = false;
  await expect(client.get(SERVICE)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
  // The snapshot file after close() (its writes are awaited): never a forged value, and what the model says.
  const text = await readFile(join(r.snapshotDir, `${SERVICE}.json`), 'utf8').catch(() => undefined);
  if (text !== undefined) expect(text).not.toContain('forged');
  if (m.snapshot) expect(JSON.parse(text ?? '{}').config, 'snapshot file after close').toEqual(m.snapshot.config);
  else {
    expect(text, 'no snapshot file (none written, or removed after a 404)').toBeUndefined();
    if (servedByHub.size > 0) live.snapshotRemovalsChecked++;
  }
}

// ── commands ────────────────────────────────────────────────────────────────────────────────────

abstract class Cmd implements fc.AsyncCommand<Model, Real> {
  abstract readonly name: string;
  check(_m: Readonly<Model>): boolean {
    return true;
  }
  abstract act(m: Model, r: Real): Promise<void>;
  async run(m: Model, r: Real): Promise<void> {
    r.trail.push(this.toString());
    live.commands++;
    commandCounts.set(this.name, (commandCounts.get(this.name) ?? 0) + 1);
    const before = m.served;
    await this.act(m, r);
    await verify(m, r, before, this.toString());
  }
  toString(): string {
    return this.name;
  }
}

class HubWrite extends Cmd {
  readonly name = 'hub write';
  async act(m: Model): Promise<void> {
    m.writes++;
    const entry: HubEntry = { revision: m.hub.revision + 1, config: { v: `w${m.writes}`, n: m.writes + 1 }, updatedAt: BASE_TIME + 1_000 + m.writes };
    Object.assign(m.hub, entry, { deleted: false });
    m.hub.history.push(entry);
    pushState(m.hub);
    hub = cloneHub(m.hub);
  }
}

class HubDelete extends Cmd {
  readonly name = 'hub delete';
  override check(m: Readonly<Model>): boolean {
    return !m.hub.deleted;
  }
  async act(m: Model): Promise<void> {
    m.writes++;
    // The reference hub bumps the revision on a delete (its notice says so) and answers 404.
    Object.assign(m.hub, { revision: m.hub.revision + 1, deleted: true, updatedAt: BASE_TIME + 1_000 + m.writes });
    pushState(m.hub);
    hub = cloneHub(m.hub);
  }
}

class HubRestore extends Cmd {
  readonly name = 'hub restore';
  constructor(readonly pick: number) {
    super();
  }
  override check(m: Readonly<Model>): boolean {
    return m.hub.history.some((e) => e.revision < m.hub.revision);
  }
  async act(m: Model): Promise<void> {
    const older = m.hub.history.filter((e) => e.revision < m.hub.revision);
    const entry = older[this.pick % older.length]!;
    // A backup taken at that revision: what came after it is gone, and the next write reuses revision + 1.
    m.hub.history = m.hub.history.filter((e) => e.revision <= entry.revision);
    Object.assign(m.hub, { revision: entry.revision, config: entry.config, updatedAt: entry.updatedAt, deleted: false });
    pushState(m.hub);
    hub = cloneHub(m.hub);
  }
  override toString(): string {
    return `hub restore(${this.pick})`;
  }
}

class HubDown extends Cmd {
  readonly name = 'hub down (both)';
  override check(m: Readonly<Model>): boolean {
    return m.hub.up || m.replicaUp;
  }
  async act(m: Model): Promise<void> {
    m.hub.up = false;
    hub.up = false;
    m.replicaUp = false;
    replicaUp = false;
  }
}

class Failover extends Cmd {
  readonly name = 'failover (hub down, lagging replica up)';
  override check(m: Readonly<Model>): boolean {
    return m.hub.up || !m.replicaUp;
  }
  async act(m: Model): Promise<void> {
    m.hub.up = false;
    hub.up = false;
    m.replicaUp = true;
    replicaUp = true;
  }
}

class ReplicaDown extends Cmd {
  readonly name = 'replica down';
  override check(m: Readonly<Model>): boolean {
    return m.replicaUp;
  }
  async act(m: Model): Promise<void> {
    m.replicaUp = false;
    replicaUp = false;
  }
}

class HubUp extends Cmd {
  readonly name = 'hub up';
  override check(m: Readonly<Model>): boolean {
    return !m.hub.up;
  }
  async act(m: Model): Promise<void> {
    m.hub.up = true;
    hub.up = true;
  }
}

abstract class NoticeCmd extends Cmd {
  /** The notice's revision and config (for the model), and its bytes; `undefined` when it never parses. */
  abstract notice(m: Readonly<Model>): NoticeFacts & { bytes: Uint8Array; invalid?: boolean };
  override check(m: Readonly<Model>): boolean {
    const n = this.notice(m);
    return n.invalid === true || noticeOutcome(m, n) !== 'fetch' || m.tokens >= 1;
  }
  async act(m: Model, r: Real): Promise<void> {
    const n = this.notice(m);
    const reportsBefore = r.errors.filter((e) => e.code === 'NOTICE_INVALID').length;
    await deliver(r.subject, n.bytes);
    if (m.open) live.noticesHandled++;
    const outcome = n.invalid ? 'none' : modelNotice(m, n);
    if (outcome === 'apply') live.noticesApplied++;
    await settle(r, m.requests);
    if (n.invalid && m.open) {
      const reports = r.errors.filter((e) => e.code === 'NOTICE_INVALID').length - reportsBefore;
      expect(reports, `${this} is reported once (NOTICE_INVALID)`).toBe(1);
      live.noticeInvalidReports += reports;
      r.errorsChecked = r.errors.length;
    }
    if (this instanceof ForgedNotice && outcome === 'fetch') live.forgedFetches++;
    if (this instanceof ForgedNotice && outcome === 'apply') {
      live.forgedApplied++;
      expect(r.client!.status(SERVICE).source, 'an applied unsigned payload is served as source notice').toBe('notice');
    }
  }
}

class ValidNotice extends NoticeCmd {
  readonly name = 'notice valid';
  notice(m: Readonly<Model>) {
    return validNotice(m.hub);
  }
}

class StaleNotice extends NoticeCmd {
  readonly name = 'notice stale';
  constructor(readonly pick: number) {
    super();
  }
  override check(m: Readonly<Model>): boolean {
    return m.confirmations > 0 && m.confirmedRev !== undefined && m.confirmedRev >= 1 && super.check(m);
  }
  notice(m: Readonly<Model>) {
    const revision = this.pick % (m.confirmedRev ?? 1);
    const config = m.hub.history.find((e) => e.revision === revision)?.config ?? { v: `stale${revision}`, n: revision };
    const body = { service_name: SERVICE, revision, config, version: `v${revision}`, updated_at: BASE_TIME + revision, action: 'updated' };
    return { revision, config, updatedAt: BASE_TIME + revision, bytes: encoder.encode(JSON.stringify(body)) };
  }
  override toString(): string {
    return `notice stale(${this.pick})`;
  }
}

class ForgedNotice extends NoticeCmd {
  readonly name = 'notice forged';
  notice() {
    return { revision: 9e15, config: FORGED, updatedAt: 9e15, bytes: FORGED_NOTICE };
  }
}

class MalformedNotice extends NoticeCmd {
  readonly name = 'notice malformed';
  notice() {
    return { revision: undefined, config: undefined, updatedAt: undefined, bytes: MALFORMED_NOTICE, invalid: true };
  }
}

class DeepNotice extends NoticeCmd {
  readonly name = 'notice deep';
  notice() {
    return { revision: undefined, config: undefined, updatedAt: undefined, bytes: DEEP_NOTICE, invalid: true };
  }
}

class Tick extends Cmd {
  readonly name = 'tick (refresh)';
  override check(m: Readonly<Model>): boolean {
    return m.open;
  }
  async act(m: Model, r: Real): Promise<void> {
    const value = await r.client!.refresh(SERVICE).then(
      (v) => v,
      (error: ConfigError) => error,
    );
    const heldBefore = m.confirmedRev;
    if (modelFetch(m)) {
      expect(value, `refresh() with a hub up returns the answering hub's value (commands: ${r.trail.join(' → ')})`).toEqual(m.served);
      if (m.confirmedRev !== undefined && heldBefore !== undefined && m.confirmedRev < heldBefore) live.restoresConfirmed++;
      if (m.preferred === 1) live.replicaAnswers++;
    } else {
      expect((value as ConfigError).code, 'refresh() with the hub down').toBe('HUB_UNREACHABLE');
    }
    await settle(r, m.requests);
  }
}

/**
 * A valid notice racing a tick: published while the refresh is in flight (or just before or after it).
 * Whatever the order, both read the same hub, so the end is the hub's config with at most one onChange;
 * one GET, or two when the notice came before the refresh confirmed its revision (a follow-up, never
 * more). Only on a healthy client whose preferred hub is up (else the order decides more than the count).
 */
class RaceNoticeTick extends Cmd {
  readonly name = 'notice valid ∥ tick';
  override check(m: Readonly<Model>): boolean {
    // A deleted config: the refresh's 404 clears what the hub confirmed, so whether the notice then counts as
    // news depends on the order (one GET or a follow-up): left to the plain commands.
    if (!m.open || m.failing || !m.hub.up || m.hub.deleted || m.preferred !== 0) return false;
    const n = validNotice(m.hub);
    const outcome = noticeOutcome(m, n);
    if (outcome === 'fetch' && m.tokens < 1) return false;
    // A same-revision check is order-dependent (it marks the revision checked): left to the plain commands.
    const stale = m.confirmations > 0 && m.confirmedRev !== undefined && n.revision !== undefined && n.revision <= m.confirmedRev;
    return !(stale && outcome === 'fetch');
  }
  async act(m: Model, r: Real): Promise<void> {
    const n = validNotice(m.hub);
    const outcome = noticeOutcome(m, n);
    const expectedBefore = m.requests;
    const refreshed = r.client!.refresh(SERVICE).then(
      (v) => v,
      (error: ConfigError) => error,
    );
    await deliver(r.subject, n.bytes);
    if (m.open) live.noticesHandled++;
    const value = await refreshed;
    await settle(r, expectedBefore + 1);
    const requests = started - expectedBefore;
    modelFetch(m);
    if (outcome === 'fetch') m.tokens--;
    expect(outcome === 'fetch' ? [1, 2] : [1], `GETs of ${this} (notice: ${outcome})`).toContain(requests);
    if (requests === 2) live.racesWithFollowUp++;
    m.requests = expectedBefore + requests;
    expect(value, `refresh() racing a notice returns the hub's value (commands: ${r.trail.join(' → ')})`).toEqual(m.served);
  }
}

class Get extends Cmd {
  readonly name = 'get';
  override check(m: Readonly<Model>): boolean {
    return m.open;
  }
  async act(m: Model, r: Real): Promise<void> {
    expect(await r.client!.get(SERVICE), 'get()').toEqual(m.served);
    await settle(r, m.requests);
  }
}

class Close extends Cmd {
  readonly name = 'close';
  override check(m: Readonly<Model>): boolean {
    return m.open;
  }
  async act(m: Model, r: Real): Promise<void> {
    await closeClient(m, r);
    await settle(r, m.requests);
    live.closedChecks++;
  }
}

class Restart extends Cmd {
  readonly name = 'restart from snapshot (hub down)';
  async act(m: Model, r: Real): Promise<void> {
    if (m.open) await closeClient(m, r);
    m.hub.up = false;
    hub.up = false;
    m.replicaUp = false;
    replicaUp = false;
    live.restarts++;
    await openClient(m, r);
  }
  override async run(m: Model, r: Real): Promise<void> {
    r.trail.push(this.toString());
    live.commands++;
    commandCounts.set(this.name, (commandCounts.get(this.name) ?? 0) + 1);
    // A new client: its first value is no change (openClient verifies it).
    await this.act(m, r);
  }
}

const startArb = fc.constantFrom<'up' | 'down' | 'absent'>('up', 'up', 'down', 'absent');
const commandArbs = [
  fc.constant(new HubWrite()),
  fc.constant(new HubWrite()),
  fc.constant(new HubDelete()),
  fc.constant(new HubDelete()),
  fc.nat().map((k) => new HubRestore(k)),
  fc.nat().map((k) => new HubRestore(k)),
  fc.nat().map((k) => new HubRestore(k)),
  fc.constant(new HubDown()),
  fc.constant(new Failover()),
  fc.constant(new Failover()),
  fc.constant(new Failover()),
  fc.constant(new ReplicaDown()),
  fc.constant(new HubUp()),
  fc.constant(new ValidNotice()),
  fc.constant(new ValidNotice()),
  fc.nat().map((k) => new StaleNotice(k)),
  fc.nat().map((k) => new StaleNotice(k)),
  fc.constant(new ForgedNotice()),
  fc.constant(new MalformedNotice()),
  fc.constant(new DeepNotice()),
  fc.constant(new Tick()),
  fc.constant(new Tick()),
  fc.constant(new Get()),
  fc.constant(new RaceNoticeTick()),
  fc.constant(new RaceNoticeTick()),
  fc.constant(new Close()),
  fc.constant(new Restart()),
  fc.constant(new Restart()),
];

// ── the property ────────────────────────────────────────────────────────────────────────────────

/** Registers the file's hooks: the msw hubs, the NATS connections, and the summary printed at the end. */
export function useRuntimeModel(): void {
  beforeAll(async () => {
    const serve =
      (which: 'hub' | 'replica') =>
      ({ request, params }: { request: Request; params: Record<string, string | readonly string[] | undefined> }) => {
        started++;
        try {
          if (params.service !== SERVICE || request.headers.get('x-api-key') !== 'model-key') return HttpResponse.json({ detail: 'unexpected' }, { status: 400 });
          if (!(which === 'hub' ? hub.up : replicaUp)) return HttpResponse.error();
          live.hubAnswers++;
          const state = which === 'hub' ? hub : replicaState(hub);
          if (state.deleted) return HttpResponse.json({ detail: 'not found' }, { status: 404 });
          const etag = etagOf(state);
          if (request.headers.get('if-none-match') === etag) return new HttpResponse(null, { status: 304, headers: { etag } });
          servedByHub.add(JSON.stringify(state.config));
          return HttpResponse.json(
            { service_name: SERVICE, config: state.config, version: `v${state.revision}`, updated_at: state.updatedAt, revision: state.revision },
            { headers: { etag } },
          );
        } finally {
          finished++;
        }
      };
    agent = createMswAgent([http.get(`${HUB}/api/v1/config/:service`, serve('hub')), http.get(`${REPLICA}/api/v1/config/:service`, serve('replica'))]);
    nc = await connect({ servers: NATS_URL, name: 'model-clients' });
    pub = await connect({ servers: NATS_URL, name: 'model-publisher' });
    sentinels = await SentinelDelivery.attach(pub, nc, SENTINEL);
  });

  afterAll(async () => {
    for (const line of summaries) console.log(line);
    await agent?.close();
    await nc?.close().catch(() => undefined);
    await pub?.close().catch(() => undefined);
  });
}

export async function runModel(row: string, apply: boolean): Promise<void> {
  live = fresh();
  commandCounts = new Map();
  const t0 = performance.now();
  let failure: unknown;
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(startArb, fc.integer({ min: 1, max: 3 }), fc.commands(commandArbs, { maxCommands: MAX_COMMANDS }), async (start, revisions, cmds) => {
        run++;
        live.runs++;
        hub = initialHub(start, revisions);
        replicaUp = false;
        servedByHub = new Set();
        started = 0;
        finished = 0;
        const real: Real = {
          client: undefined,
          closed: true,
          snapshotDir: await mkdtemp(join(tmpdir(), 'chc-model-')),
          subjectPrefix: `model.p${process.pid}.${row}.r${run}`,
          subject: `model.p${process.pid}.${row}.r${run}.${SERVICE}`,
          deliveries: [],
          checked: 0,
          errors: [],
          errorsChecked: 0,
          trail: [`start(${start}, ${revisions} revisions)`],
        };
        const model: Model = {
          apply,
          hub: cloneHub(hub),
          writes: 0,
          open: false,
          served: DEFAULTS,
          source: 'defaults',
          held: undefined,
          confirmations: 0,
          confirmedRev: undefined,
          failing: false,
          tokens: NOTICE_BURST,
          checkedRevision: undefined,
          snapshot: undefined,
          requests: 0,
          replicaUp: false,
          preferred: 0,
        };
        try {
          await openClient(model, real);
          await fc.asyncModelRun(() => ({ model, real }), cmds);
          // (e) hot reload survives whatever the run did: a hub write's notice still changes the value.
          const final: Cmd[] = [];
          if (!model.open || model.tokens < 1) final.push(new Restart());
          const plan = async (cmd: Cmd) => {
            if (cmd.check(model)) await cmd.run(model, real);
          };
          for (const cmd of final) await plan(cmd);
          // A failover to the lagging replica, answered by it; then back to the hub.
          await plan(new Failover());
          await plan(new Tick());
          await plan(new ReplicaDown());
          await plan(new HubUp());
          await plan(new Tick());
          const natsBefore = real.deliveries.filter((d) => d.change.source === 'nats').length;
          await plan(new HubWrite());
          await plan(new ValidNotice());
          expect(
            real.deliveries.filter((d) => d.change.source === 'nats').length - natsBefore,
            `a hub write's notice changes the value at the end of the run (commands: ${real.trail.join(' → ')})`,
          ).toBe(1);
          live.finalHotReloads++;
          if (run % 2 === 0) {
            // Every other run: the config deleted, a 404, and close() finds no snapshot left.
            await plan(new HubDelete());
            await plan(new Tick());
          }
          await closeClient(model, real);
          await settle(real, model.requests);
          await verify(model, real, model.served, 'final close');
        } finally {
          if (real.client && !real.closed) await real.client.close();
          await rm(real.snapshotDir, { recursive: true, force: true });
        }
      }),
      { numRuns: NUM_RUNS, seed: SEED, ...(PATH ? { path: PATH } : {}) },
    );
  } catch (error) {
    failure = error;
  }
  const elapsedMs = performance.now() - t0;
  summaries.push(
    `${row} model test (applyPayload ${apply}, ETag ${ETAG_MODE}): seed ${SEED}${PATH ? ` path ${PATH}` : ''} — replay with MODEL_SEED=${SEED} [MODEL_PATH=<path>]; ` +
      `${failure ? 'FAILED, ' : ''}${live.runs} runs, ${live.commands} commands in ${Math.round(elapsedMs)} ms; ${JSON.stringify(live)}; commands ${JSON.stringify(Object.fromEntries(commandCounts))}`,
  );
  if (failure) throw failure;
  recordFigure({ row, name: `model runs (${NUM_RUNS}) wall time`, value: Math.round(elapsedMs), unit: 'ms' });
  expectRuns(row, run, NUM_RUNS);
  expectLive(row, 'notices delivered to the client connection (sentinel after each)', live.noticesDelivered);
  expectLive(row, 'hub requests answered', live.hubAnswers);
  expectLive(row, 'onChange deliveries checked', live.onChange);
  expectLive(row, 'changes from notices (source nats)', live.natsChanges);
  expectLive(row, 'malformed / deep notices reported (NOTICE_INVALID)', live.noticeInvalidReports);
  if (apply) {
    expectLive(row, 'notice payloads applied', live.noticesApplied);
    expectLive(row, 'forged payloads applied (unconfirmed, source notice)', live.forgedApplied);
  } else {
    expectLive(row, 'forged notices that cost a fetch', live.forgedFetches);
  }
  expectLive(row, 'restarts from a snapshot with the hub down', live.snapshotBoots);
  expectLive(row, 'refreshes that followed the hub back to a lower (restored or lagging) revision', live.restoresConfirmed);
  expectLive(row, 'refreshes answered by the lagging replica (failover)', live.replicaAnswers);
  expectLive(row, 'closes that checked a snapshot removed after a 404', live.snapshotRemovalsChecked);
  expectLive(row, 'valid notices raced against a tick', commandCounts.get('notice valid ∥ tick') ?? 0);
  expectLive(row, 'runs that ended with a hot reload', live.finalHotReloads, NUM_RUNS);
}

