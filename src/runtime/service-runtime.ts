/**
 * The runtime of one service: an explicit state machine. Triggers (get, poll, notice, resync, recovery,
 * refresh) are decided by the trigger policy; every outcome (hub answer, 304, 404, failure, notice payload,
 * snapshot, defaults) goes through `#transition`, which applies its effects in one fixed order:
 * state → fresh-value cache → snapshot → listeners (then `onError` reports, the fleet report, the metrics).
 */
import { ConfigError, errorMessage as describe, isConfigError } from '../errors.js';
import { type FleetEvent, fleetEvent } from '../fleet/fleet-event.js';
import type { FetchResult, HubTransport } from '../hub/transport.js';
import { type MetricsEvent, metricsEvent } from '../metrics/metrics-event.js';
import type { Notice } from '../hub/wire.js';
import type { Provenance } from '../layers/merge.js';
import { changesBetween, type PlainObject } from '../layers/paths.js';
import type { Resolved } from '../layers/resolve.js';
import type { ResolvedOptions, ServiceDefinition } from '../options.js';
import type { SnapshotStore } from '../snapshot/file-store.js';
import { type Confirmed, type HubLayer, isOlder, isSameRevisionOtherContent, isStaleNotice, noticeDocument } from './decide.js';
import { FetchBudget } from './fetch-budget.js';
import { firstLoad } from './first-load.js';
import { LayerResolver } from './layer-resolver.js';
import { type Outcome, type Plan, planTransition, type Reported } from './transition.js';
import { RecoveryTimer } from './recovery-timer.js';
import { notifyListeners } from './listeners.js';
import { SingleFlight } from './single-flight.js';
import { SnapshotWriter } from './snapshot-writer.js';
import { holdProcessUntil } from '../timeout.js';
import { decideTrigger, type Trigger } from './trigger-policy.js';
import type { ChangeListener, ChangeSource, ConfigChange, ConfigSource, RuntimeStatus } from './types.js';

export interface RuntimeDeps {
  name: string;
  definition: ServiceDefinition;
  options: ResolvedOptions;
  transport: HubTransport;
  snapshots: SnapshotStore | undefined;
  /** The client's TTL index of fresh values (the `get` hot path). */
  fresh: { set(name: string, value: Promise<unknown>): void; has(name: string): boolean };
  reportError: (error: ConfigError) => void;
  isClosed: () => boolean;
  /** Aborted when the client closes. */
  signal?: AbortSignal | undefined;
  /** The last effect of every transition: what it means to the fleet report (docs/fleet.md §3). */
  onFleetEvent?: ((event: FleetEvent | undefined) => void) | undefined;
  /** After the fleet event: what the transition means to the metrics (`central_hub.changes.*`). */
  onMetricsEvent?: ((event: MetricsEvent | undefined) => void) | undefined;
}

/** What is served. `plain` is the merged JSON before the schema: changes are detected on it. */
export interface Committed {
  value: unknown;
  plain: PlainObject;
  promise: Promise<unknown>;
  readonly provenance: Provenance;
  hub: HubLayer | undefined;
  droppedCriticalPaths: string[];
}

/** Notice-triggered fetches that find nothing new: a burst of 3, then one per second (forged notices cost little). */
const NOTICE_FETCH_BURST = 3;
const NOTICE_FETCH_REFILL_MS = 1_000;

export class ServiceRuntime {
  readonly name: string;
  readonly #deps: RuntimeDeps;
  readonly #layers: LayerResolver;
  readonly #listeners = new Set<ChangeListener>();
  readonly #flight = new SingleFlight<unknown>();
  readonly #recovery: RecoveryTimer;
  readonly #noticeBudget = new FetchBudget(NOTICE_FETCH_BURST, NOTICE_FETCH_REFILL_MS);
  readonly #snapshots: SnapshotWriter | undefined;
  readonly #listenerFailed = (cause: unknown): void =>
    this.#deps.reportError(new ConfigError('LISTENER_FAILED', `an onChange listener of ${this.name} failed`, { service: this.name, cause }));
  #committed: Committed | undefined;
  #source: ConfigSource | undefined;
  /** What the hub last confirmed, and how many confirmations there have been (a fetch remembers the count). */
  #confirmed: Confirmed = { revision: undefined, updatedAt: undefined };
  #confirmations = 0;
  /** Epoch ms of the last confirmation (or the snapshot's `savedAt` before any): `central_hub.config.age`. */
  #confirmedAt: number | undefined;
  /** Every commit of any kind bumps this. */
  #commits = 0;
  #failing = false;
  #lastFetchAt: number | undefined;
  #lastError: ConfigError | undefined;
  /** The last failure reported through `onError`: the same state is reported once, not once per retry. */
  #reportedKey: string | undefined;
  #loading: Promise<unknown> | undefined;
  #snapshotRead: Promise<boolean> | undefined;
  #deferredHint: NodeJS.Timeout | undefined;
  /** A same-revision notice with other content is checked against the hub once, not once per copy. */
  #checkedRevision: number | undefined;
  /** The next fetch goes without `If-None-Match`. */
  #unconditional = false;
  /** The newest revision a notice named since the last fetch began: sent as `x-config-min-revision`. */
  #heard: number | undefined;

  constructor(deps: RuntimeDeps) {
    this.#deps = deps;
    this.name = deps.name;
    this.#layers = new LayerResolver(deps.name, deps.definition, deps.options.env);
    this.#recovery = new RecoveryTimer(deps.options.recovery, () => this.#trigger('recovery'));
    this.#snapshots = deps.snapshots && new SnapshotWriter(deps.name, deps.snapshots, deps.options.logger, deps.reportError, deps.isClosed);
  }

  get hasValue(): boolean {
    return this.#committed !== undefined;
  }

  get failing(): boolean {
    return this.#failing;
  }

  /** The slow path of `get`: a committed (maybe stale) value, or the first load. */
  get(): Promise<unknown> {
    if (this.#decide('get') === 'first-load') return holdProcessUntil(this.#firstLoad());
    this.#trigger('get');
    return this.#committed!.promise;
  }

  /** An explicit refresh: one fetch that starts after any in flight, its answer committed. */
  refresh(): Promise<unknown> {
    if (this.#deps.isClosed()) return Promise.reject(closedError(this.name));
    if (!this.#committed) return this.get();
    return holdProcessUntil(this.#flight.run(() => this.#fetch('refresh'), true));
  }

  /** The safety-net poll and the reconnect resync. */
  poll(): Promise<unknown> {
    return this.#trigger('poll') ?? Promise.resolve(undefined);
  }

  resync(): void {
    this.#hint('resync');
  }

  /** A validated notice: dropped when stale, applied when trusted, else a (rate-bounded) hint to refetch. */
  handleNotice(notice: Notice, verified = false): void {
    if (this.#deps.isClosed()) return;
    const current = this.#committed;
    const critical = this.#layers.criticalPaths;
    if (current && this.#confirmations > 0 && isStaleNotice(notice, this.#confirmed, current.hub, critical)) {
      if (isSameRevisionOtherContent(notice, this.#confirmed, current.hub, critical) && this.#checkedRevision !== notice.revision) {
        this.#checkedRevision = notice.revision;
        // The content differs under the same revision (a hub restored and rewritten): the ETag we hold may
        // match the hub's and hide it, so ask without it.
        this.#unconditional = true;
        this.#hear(notice);
        this.#hint('notice');
      }
      return;
    }
    const document = noticeDocument(this.name, notice);
    const trusted = verified || this.#deps.options.nats?.applyPayload === true;
    if (document && trusted && current && !this.#failing) {
      const held = current.hub;
      if (!verified && this.#source === 'notice' && held && !isOlder({ revision: held.revision, updated_at: held.updatedAt }, { revision: document.revision, updatedAt: document.updated_at })) {
        // Not newer than the unconfirmed payload being served: never applied (notices arrive out of order), and
        // never dropped either (that payload may be forged) — the hub decides, within the fetch budget.
        if (held.revision !== document.revision || held.updatedAt !== document.updated_at) this.#hint('notice');
        return;
      }
      try {
        this.#transition({ kind: 'document', document, etag: undefined, seen: this.#seen(), source: 'nats', trust: verified ? 'signed' : 'unsigned' });
      } catch {
        // Reported by the transition; the last good value stays.
      }
      return;
    }
    this.#hear(notice);
    this.#hint('notice');
  }

  /**
   * A hub replica that has not yet heard the commit's NOTIFY would answer the refetch from memory with the
   * revision before it (docs/fleet.md §7): the header makes it read its database instead. A hint only:
   * the hub's answer is taken whatever it says.
   */
  #hear(notice: Notice): void {
    const revision = notice.revision;
    if (typeof revision === 'number' && Number.isSafeInteger(revision) && revision > (this.#heard ?? 0)) this.#heard = revision;
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  status(): RuntimeStatus {
    const hub = this.#committed?.hub;
    const fallback = this.#source === 'snapshot' || this.#source === 'defaults';
    return {
      source: this.#source,
      stale: this.#committed === undefined || this.#failing || (fallback && this.#lastError !== undefined) || !this.#deps.fresh.has(this.name),
      revision: hub?.revision,
      version: hub?.version,
      updatedAt: hub?.updatedAt,
      lastFetchAt: this.#lastFetchAt,
      lastErrorCode: this.#lastError?.code,
      lastErrorMessage: this.#lastError?.message,
      droppedCriticalPaths: [...(this.#committed?.droppedCriticalPaths ?? [])],
    };
  }

  /** When the hub last confirmed the served value (epoch ms). */
  get confirmedAt(): number | undefined {
    return this.#confirmedAt;
  }

  get committedValue(): unknown {
    return this.#committed?.value;
  }

  get provenance(): Provenance | undefined {
    return this.#committed?.provenance;
  }

  get criticalPaths(): readonly string[] {
    return this.#layers.criticalPaths;
  }

  envVariableFor(path: string): string | undefined {
    return this.#deps.definition.env?.[path];
  }

  close(): void {
    this.#recovery.cancel();
    clearTimeout(this.#deferredHint);
    this.#listeners.clear();
  }

  // ── triggers ────────────────────────────────────────────────────────────────────────────────

  #decide(trigger: Trigger) {
    return decideTrigger(trigger, {
      closed: this.#deps.isClosed(),
      hasValue: this.#committed !== undefined,
      fresh: this.#deps.fresh.has(this.name),
      failing: this.#failing,
      fetching: this.#flight.busy,
    });
  }

  #trigger(trigger: Trigger): Promise<unknown> | undefined {
    const action = this.#decide(trigger);
    const source: ChangeSource = trigger === 'notice' || trigger === 'resync' ? 'nats' : trigger === 'get' ? 'refresh' : trigger;
    let run: Promise<unknown> | undefined;
    if (action === 'join' || action === 'follow-up') run = this.#flight.run(() => this.#fetch(source), action === 'follow-up');
    else if (action === 'expedite') this.#recovery.expedite();
    run?.catch(() => undefined);
    return run;
  }

  /** A notice or resync hint: within the fetch budget now, else once when the budget allows. */
  #hint(trigger: 'notice' | 'resync'): void {
    if (this.#decide(trigger) !== 'follow-up') {
      this.#trigger(trigger);
      return;
    }
    if (this.#noticeBudget.take()) {
      // Only a hint that led nowhere (the hub had nothing newer: a forged or duplicate notice) spends the
      // budget; one that brought a real change is refunded, so real changes are never throttled.
      const before = this.#confirmedKey();
      this.#trigger(trigger)?.then(() => {
        if (this.#confirmedKey() !== before) this.#noticeBudget.refund();
      }, () => undefined);
      return;
    }
    if (this.#deferredHint) return;
    this.#deferredHint = setTimeout(() => {
      this.#deferredHint = undefined;
      this.#hint(trigger);
    }, this.#noticeBudget.waitMs());
    this.#deferredHint.unref();
  }

  #firstLoad(): Promise<unknown> {
    const { strictStartup, startupTimeoutMs } = this.#deps.options;
    this.#loading ??= firstLoad({
      service: this.name,
      strictStartup,
      startupTimeoutMs,
      hasSnapshots: this.#deps.snapshots !== undefined,
      fetch: (onRoundFailed) => this.#flight.run(() => this.#fetch('refresh', onRoundFailed)),
      useSnapshot: (budgetMs) => this.#useSnapshot(budgetMs),
      useDefaults: (cause) => {
        if (!this.#committed) this.#transition({ kind: 'defaults', cause });
      },
      value: () => this.#committed?.value,
    }).finally(() => {
      this.#loading = undefined;
      this.#snapshotRead = undefined;
    });
    return this.#loading;
  }

  #confirmedKey(): string {
    return `${this.#confirmed.revision}:${this.#confirmed.updatedAt}`;
  }

  #seen() {
    return { confirmations: this.#confirmations, commits: this.#commits };
  }

  async #fetch(source: ChangeSource, onRoundFailed?: () => void): Promise<unknown> {
    if (this.#deps.isClosed()) throw closedError(this.name);
    const seen = this.#seen();
    // An unconfirmed notice value has no ETag: the hub must answer in full.
    const etag = this.#source === 'notice' || this.#unconditional ? undefined : this.#committed?.hub?.etag;
    this.#unconditional = false;
    const minRevision = this.#heard;
    this.#heard = undefined;
    let result: FetchResult;
    try {
      result = await this.#deps.transport.fetchConfig(this.name, { etag, minRevision, onRoundFailed, signal: this.#deps.signal });
    } catch (error) {
      const failure = asConfigError(error, this.name);
      if (failure.code === 'CLIENT_CLOSED' || this.#deps.isClosed()) throw closedError(this.name);
      if (failure.code === 'CONFIG_NOT_FOUND') return this.#transition({ kind: 'not-found', error: failure, seen, source });
      return this.#transition({ kind: 'failure', error: failure });
    }
    return this.#transition(
      result.kind === 'not-modified'
        ? { kind: 'not-modified', seen }
        : { kind: 'document', document: result.document, etag: result.etag, seen, source, trust: 'hub' },
    );
  }

  /** Commits the last-known-good snapshot if nothing is committed yet; read (and reported) once per load. */
  #useSnapshot(budgetMs: number): Promise<boolean> {
    this.#snapshotRead ??= this.#readSnapshot(budgetMs);
    return this.#snapshotRead;
  }

  async #readSnapshot(budgetMs: number): Promise<boolean> {
    const store = this.#deps.snapshots;
    if (!store || this.#committed) return false;
    const read = await store.read(this.name, { timeoutMs: budgetMs, signal: this.#deps.signal });
    if (read.problem) {
      this.#deps.options.logger.warn({ service: this.name, code: read.problem.code, reason: read.problem.message }, 'snapshot ignored');
      this.#deps.reportError(read.problem);
    }
    if (!read.snapshot || this.#committed || this.#deps.isClosed()) return false;
    try {
      this.#transition({ kind: 'snapshot', snapshot: read.snapshot });
      return true;
    } catch {
      return false;
    }
  }

  // ── the one transition ─────────────────────────────────────────────────────────────────────

  #transition(outcome: Outcome): unknown {
    // close() racing a completing fetch: nothing is committed, written or announced after close.
    if (this.#deps.isClosed()) throw closedError(this.name);
    if (outcome.kind !== 'failure' && outcome.kind !== 'snapshot' && outcome.kind !== 'defaults') this.#lastFetchAt = Date.now();
    const plan = planTransition(outcome, {
      service: this.name,
      committed: this.#committed,
      source: this.#source,
      failing: this.#failing,
      lastError: this.#lastError,
      confirmed: this.#confirmed,
      seen: this.#seen(),
      resolve: (hub) => this.#layers.resolve(hub),
    });
    const prev = this.#committed;
    const errorBefore = this.#lastError?.code;
    const change = this.#applyState(plan);
    // Still state: a snapshot's value was confirmed when it was saved (committed only while nothing else is).
    if (outcome.kind === 'snapshot') this.#confirmedAt = outcome.snapshot.savedAt;
    if (plan.fresh && this.#committed) this.#deps.fresh.set(this.name, this.#committed.promise);
    if (plan.snapshot !== 'keep') this.#snapshots?.apply(plan.snapshot, this.#committed);
    if (change && prev && this.#committed) notifyListeners(this.#listeners, this.#committed.value, prev.value, { ...change, service: this.name }, this.#listenerFailed);
    const reportedKey = this.#reportedKey;
    for (const error of plan.report) this.#report(error);
    this.#deps.onFleetEvent?.(fleetEvent(outcome, plan, errorBefore));
    this.#deps.onMetricsEvent?.(metricsEvent(plan, change, reportedKey));
    if (plan.hint) this.#hint('notice');
    if (plan.throw) throw plan.throw;
    return this.#committed?.value;
  }

  /** Step 1: state. Returns the change to announce, if the merged value really changed. */
  #applyState(plan: Plan) {
    let change: Omit<ConfigChange, 'service'> | undefined;
    if (plan.commit) {
      const { resolved, hub, source } = plan.commit;
      const prev = this.#committed;
      // One walk says whether the merged JSON changed and where (undefined: equal).
      const paths = prev === undefined ? undefined : changesBetween(prev.plain, resolved.plain);
      const same = prev !== undefined && paths === undefined;
      // An equal value keeps its identity, so callers holding it see no churn.
      const value = same ? prev.value : resolved.value;
      const promise = same ? prev.promise : Promise.resolve(value);
      this.#committed = commitOf(resolved, value, promise, hub, plan.commit.droppedCriticalPaths);
      this.#commits++;
      if (paths !== undefined) {
        change = { changedPaths: paths, revision: hub?.revision, version: hub?.version, updatedAt: hub?.updatedAt, source };
      }
    }
    if (plan.servedFrom) this.#source = plan.servedFrom;
    if (plan.confirm) {
      this.#confirmed = plan.confirm;
      this.#confirmations++;
      this.#confirmedAt = Date.now();
    }
    this.#failing = plan.failing;
    this.#lastError = plan.lastError;
    if (!plan.failing && plan.lastError === undefined) this.#reportedKey = undefined;
    if (plan.recovery === 'reset') this.#recovery.reset();
    else if (plan.recovery === 'schedule') this.#recovery.schedule(plan.lastError?.code === 'UNAUTHORIZED');
    if (plan.failing) this.#deps.options.logger.warn({ service: this.name, code: plan.lastError?.code }, 'config refresh failed; serving last good value');
    return change;
  }

  /** Failures are reported once per state (a new code, or a new rejected revision), never once per retry. */
  #report({ error, key }: Reported): void {
    if (key !== undefined) {
      if (key === this.#reportedKey) return;
      this.#reportedKey = key;
    }
    this.#deps.reportError(error);
  }
}

function commitOf(resolved: Resolved, value: unknown, promise: Promise<unknown>, hub: HubLayer | undefined, dropped: string[]): Committed {
  return new CommittedValue(resolved, value, promise, hub, dropped);
}

/** A class rather than a literal with a getter: a literal with an accessor is slow to create, at every commit. */
class CommittedValue implements Committed {
  readonly plain: PlainObject;
  readonly #resolved: Resolved;

  constructor(
    resolved: Resolved,
    readonly value: unknown,
    readonly promise: Promise<unknown>,
    readonly hub: HubLayer | undefined,
    readonly droppedCriticalPaths: string[],
  ) {
    this.plain = resolved.plain;
    this.#resolved = resolved;
  }

  /** Read through: the provenance is computed when `explain()` first asks, not at every commit. */
  get provenance(): Provenance {
    return this.#resolved.provenance;
  }
}

function closedError(service: string): ConfigError {
  return new ConfigError('CLIENT_CLOSED', 'the client is closed', { service });
}

function asConfigError(error: unknown, service: string): ConfigError {
  return isConfigError(error) ? error : new ConfigError('HUB_UNREACHABLE', describe(error), { service, cause: error });
}
