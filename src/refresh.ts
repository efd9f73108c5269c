/**
 * The one road of a service's config. First `get`, TTL expiry, `refresh()`, NATS notices, the poll, a
 * reconnect resync and the background recovery all end here: single-flight fetch (conditional GET) →
 * merge → validate → commit → persist last-known-good → notify listeners if the value really changed.
 */
import { ConfigError, type ConfigInvalidError, isConfigError } from './errors.js';
import type { FetchResult, HubTransport } from './hub/transport.js';
import type { ConfigDocument, Notice } from './hub/wire.js';
import { backoffDelay } from './hub/retry.js';
import { type EnvLayer, readEnvLayer } from './layers/env.js';
import { sanitize } from './layers/merge.js';
import type { Provenance } from './layers/merge.js';
import { changedPaths, deepEqual, type PlainObject } from './layers/paths.js';
import { type Resolved, resolveConfig, stripCriticalPaths } from './layers/resolve.js';
import type { ResolvedOptions, ServiceDefinition } from './options.js';
import type { SnapshotStore } from './snapshot/file-store.js';
import { raceTimeout } from './timeout.js';

/** Where the value being served comes from. `cache`: the hub's value, while the hub is failing. */
export type ConfigSource = 'hub' | 'cache' | 'snapshot' | 'defaults';
/** What made a change happen. */
export type ChangeSource = 'nats' | 'poll' | 'refresh' | 'recovery';

export interface ConfigChange {
  service: string;
  /** Dotted paths whose merged value changed, sorted. */
  changedPaths: string[];
  /** The hub layer's revision after the change (reference hub), when known. */
  revision: number | undefined;
  version: string | undefined;
  updatedAt: number | undefined;
  source: ChangeSource;
}

export type ChangeListener<T = unknown> = (next: T, prev: T, change: ConfigChange) => unknown;

/** The hub layer as applied (sanitized, critical paths removed) with its metadata. */
interface HubLayer {
  config: PlainObject;
  version: string;
  updatedAt: number;
  revision: number | undefined;
  etag: string | undefined;
}

interface Committed {
  value: unknown;
  promise: Promise<unknown>;
  provenance: Provenance;
  hub: HubLayer | undefined;
  droppedCriticalPaths: string[];
}

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
}

export interface RuntimeStatus {
  /** Where the served value comes from; `undefined` before the first `get`. */
  source: ConfigSource | undefined;
  /** True when the value is past its TTL or the last refresh failed (or there is no value yet). */
  stale: boolean;
  /** Hub layer metadata (`revision` is a reference-hub extension). */
  revision: number | undefined;
  version: string | undefined;
  updatedAt: number | undefined;
  /** Epoch ms of the last answer from the hub (200, 304 or 404). */
  lastFetchAt: number | undefined;
  lastErrorCode: string | undefined;
  lastErrorMessage: string | undefined;
  /** Critical paths the hub tried to set (dropped). */
  droppedCriticalPaths: string[];
}

export class ServiceRuntime {
  readonly name: string;
  readonly #deps: RuntimeDeps;
  readonly #criticalPaths: readonly string[];
  readonly #listeners = new Set<ChangeListener>();
  #env: EnvLayer | undefined;
  #committed: Committed | undefined;
  #source: ConfigSource | undefined;
  #loading: Promise<unknown> | undefined;
  #inFlight: Promise<unknown> | undefined;
  #followUp: Promise<unknown> | undefined;
  #failing = false;
  #lastFetchAt: number | undefined;
  #lastError: ConfigError | undefined;
  #recoveryTimer: NodeJS.Timeout | undefined;
  #recoveryAttempt = 0;
  #recoveryDueAt = 0;
  /** The snapshot read of the current first load, shared by its early and late fallbacks. */
  #snapshotRead: Promise<boolean> | undefined;
  /** A same-revision notice with other content is checked against the hub once, not once per copy. */
  #checkedRevision: number | undefined;

  constructor(deps: RuntimeDeps) {
    this.#deps = deps;
    this.name = deps.name;
    this.#criticalPaths = Object.keys(deps.definition.env ?? {});
  }

  get hasValue(): boolean {
    return this.#committed !== undefined;
  }

  get failing(): boolean {
    return this.#failing;
  }

  /** A fetch is in flight (e.g. the first load, before there is a value). */
  get fetching(): boolean {
    return this.#inFlight !== undefined;
  }

  /** The slow path of `get`: a committed (stale) value, or the first load. */
  get(): Promise<unknown> {
    const committed = this.#committed;
    if (committed) {
      // Stale-while-revalidate: serve now, refresh once in the background. While failing, the recovery
      // timer owns the retries, so a tight `get` loop never turns into a request loop.
      if (!this.#failing && !this.#deps.fresh.has(this.name)) this.refresh('refresh').catch(() => undefined);
      return committed.promise;
    }
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
      this.#snapshotRead = undefined;
    });
    return this.#loading;
  }

  /**
   * Fetches and applies the hub's config. Callers during a fetch share it; with `followUp`, they get one
   * more fetch after it (a notice may describe a change the running fetch started too early to see).
   */
  refresh(source: ChangeSource, followUp = false): Promise<unknown> {
    if (this.#deps.isClosed()) return Promise.reject(new ConfigError('CLIENT_CLOSED', 'the client is closed', { service: this.name }));
    if (this.#inFlight) {
      if (!followUp) return this.#inFlight;
      this.#followUp ??= this.#inFlight
        .catch(() => undefined)
        .then(() => {
          this.#followUp = undefined;
          return this.refresh(source);
        });
      return this.#followUp;
    }
    return this.#start(source);
  }

  #start(source: ChangeSource, onRoundFailed?: () => void): Promise<unknown> {
    const run = this.#fetchAndApply(source, onRoundFailed).finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = run;
    return run;
  }

  /** A validated notice for this service: dropped when stale or duplicate, else a refresh (or a direct apply). */
  handleNotice(notice: Notice, applyPayload: boolean): void {
    if (this.#deps.isClosed()) return;
    if (!this.#committed) {
      // The first load is in flight: its answer may predate the change this notice announces (the hub
      // read the row before the commit, the notice overtook the answer). Fetch once more after it.
      if (this.#inFlight) this.refresh('nats', true).catch(() => undefined);
      return;
    }
    // While the hub is failing (down, 5xx, key revoked) the recovery timer owns the retries, as it does for
    // `get` and the poll: a notice per message would turn a notice storm into a request loop against a hub
    // that cannot answer (e.g. one 401 per notice while the key is revoked). A notice does hint that the hub
    // is back (the relay publishes after a restart), so it brings a distant retry forward — at most one
    // request per `recovery.minDelayMs`, and never for a revoked key.
    if (this.#failing) {
      this.#expediteRecovery();
      return;
    }
    const current = this.#committed.hub;
    if (current && isStaleNotice(notice, current, this.#criticalPaths)) {
      if (notice.revision !== undefined && notice.revision === current.revision && notice.config !== undefined) {
        const { hub } = stripCriticalPaths(sanitize(notice.config), this.#criticalPaths);
        if (!deepEqual(hub, current.config) && this.#checkedRevision !== notice.revision) {
          this.#checkedRevision = notice.revision;
          this.refresh('nats', true).catch(() => undefined);
        }
      }
      return;
    }
    if (applyPayload && notice.config !== undefined && notice.updated_at !== undefined) {
      const document: ConfigDocument = {
        service_name: this.name,
        config: notice.config,
        version: notice.version ?? '',
        updated_at: notice.updated_at,
        revision: notice.revision,
      };
      try {
        this.#accept({ kind: 'document', document, etag: undefined, hubUrl: 'nats' }, 'nats');
      } catch {
        // #accept reported it; the last good value stays.
      }
      return;
    }
    this.refresh('nats', true).catch(() => undefined);
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  status(): RuntimeStatus {
    const hub = this.#committed?.hub;
    return {
      source: this.#source,
      stale: this.#committed === undefined || this.#failing || !this.#deps.fresh.has(this.name),
      revision: hub?.revision,
      version: hub?.version,
      updatedAt: hub?.updatedAt,
      lastFetchAt: this.#lastFetchAt,
      lastErrorCode: this.#lastError?.code,
      lastErrorMessage: this.#lastError?.message,
      droppedCriticalPaths: [...(this.#committed?.droppedCriticalPaths ?? [])],
    };
  }

  get committedValue(): unknown {
    return this.#committed?.value;
  }

  get provenance(): Provenance | undefined {
    return this.#committed?.provenance;
  }

  get criticalPaths(): readonly string[] {
    return this.#criticalPaths;
  }

  envVariableFor(path: string): string | undefined {
    return this.#deps.definition.env?.[path];
  }

  close(): void {
    clearTimeout(this.#recoveryTimer);
    this.#recoveryTimer = undefined;
    this.#listeners.clear();
  }

  // ── the road ────────────────────────────────────────────────────────────────────────────────

  async #fetchAndApply(source: ChangeSource, onRoundFailed?: () => void): Promise<unknown> {
    let result: FetchResult;
    try {
      result = await this.#deps.transport.fetchConfig(this.name, { etag: this.#committed?.hub?.etag, onRoundFailed });
    } catch (error) {
      const failure = asConfigError(error, this.name);
      if (failure.code === 'CONFIG_NOT_FOUND') {
        this.#lastFetchAt = Date.now();
        return this.#acceptNotFound(failure, source);
      }
      this.#fail(failure);
      throw failure;
    }
    this.#lastFetchAt = Date.now();
    return this.#accept(result, source);
  }

  #accept(result: FetchResult, source: ChangeSource): unknown {
    const committed = this.#committed;
    if (result.kind === 'not-modified') {
      if (!committed?.hub) {
        // A 304 without a document to reuse: the next fetch must be unconditional.
        const error = new ConfigError('HUB_RESPONSE_INVALID', 'hub answered 304 to an unconditional request', { service: this.name });
        this.#fail(error);
        throw error;
      }
      this.#succeed('hub', committed.promise);
      return committed.value;
    }
    const doc = result.document;
    if (committed?.hub && isOlderDocument(doc, committed.hub)) {
      // A late answer (reordered fetch, delayed notice) must never move the service back in time.
      this.#deps.options.logger.debug({ service: this.name, revision: doc.revision }, 'older hub document ignored');
      if (!this.#failing) this.#succeed(this.#source ?? 'hub', committed.promise);
      return committed.value;
    }
    let resolved: Resolved;
    try {
      resolved = this.#resolve(doc.config);
    } catch (error) {
      const failure = asConfigError(error, this.name);
      this.#deps.reportError(failure);
      this.#fail(failure);
      throw failure;
    }
    const hub: HubLayer = {
      config: resolved.hub ?? {},
      version: doc.version,
      updatedAt: doc.updated_at,
      revision: doc.revision,
      etag: result.etag,
    };
    if (resolved.droppedCriticalPaths.length > 0) {
      this.#deps.options.logger.warn(
        { service: this.name, paths: resolved.droppedCriticalPaths },
        'hub sent values at critical (env-only) paths; dropped',
      );
    }
    const previousHub = committed?.hub;
    // Whatever fetch brings it, a hub value that replaces a fallback (snapshot, defaults after a failure) is a
    // recovery — including the first load's own fetch, still retrying behind an early snapshot.
    const recovering = this.#failing || this.#source === 'snapshot' || (this.#source === 'defaults' && this.#lastError?.code !== 'CONFIG_NOT_FOUND');
    const promise = this.#commit(resolved, hub, recovering ? 'recovery' : source);
    this.#succeed('hub', promise);
    if (!previousHub || previousHub.revision !== hub.revision || !deepEqual(previousHub.config, hub.config)) {
      this.#persist(hub);
    }
    return this.#committed!.value;
  }

  #acceptNotFound(error: ConfigError, source: ChangeSource): unknown {
    let resolved: Resolved;
    try {
      resolved = this.#resolve(undefined);
    } catch (invalid) {
      const failure = new ConfigError('CONFIG_UNAVAILABLE', `hub has no config for ${this.name} and defaults + env do not validate`, {
        service: this.name,
        cause: invalid,
      });
      this.#fail(failure);
      throw failure;
    }
    const promise = this.#commit(resolved, undefined, source);
    this.#succeed('defaults', promise);
    this.#lastError = error;
    return this.#committed!.value;
  }

  #resolve(hub: PlainObject | undefined): Resolved {
    this.#env ??= readEnvLayer(this.#deps.definition.env, this.#deps.options.env, this.#deps.definition.schema);
    return resolveConfig({
      service: this.name,
      schema: this.#deps.definition.schema,
      defaults: this.#deps.definition.defaults as PlainObject | undefined,
      hub,
      env: this.#env,
      criticalPaths: this.#criticalPaths,
    });
  }

  /** Makes `resolved` the served value; listeners hear of it only if the merged value really changed. */
  #commit(resolved: Resolved, hub: HubLayer | undefined, source: ChangeSource): Promise<unknown> {
    const prev = this.#committed;
    const same = prev !== undefined && deepEqual(prev.value, resolved.value);
    // An equal value keeps its identity, so callers holding it see no churn.
    const value = same ? prev.value : resolved.value;
    const promise = same ? prev.promise : Promise.resolve(value);
    this.#committed = { value, promise, provenance: resolved.provenance, hub, droppedCriticalPaths: resolved.droppedCriticalPaths };
    if (prev && !same) {
      this.#notify(value, prev.value, {
        service: this.name,
        changedPaths: changedPaths(prev.value, value),
        revision: hub?.revision,
        version: hub?.version,
        updatedAt: hub?.updatedAt,
        source,
      });
    }
    return promise;
  }

  #notify(next: unknown, prev: unknown, change: ConfigChange): void {
    for (const listener of [...this.#listeners]) {
      try {
        const result = listener(next, prev, change);
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          (result as Promise<unknown>).then(undefined, (error: unknown) => this.#listenerFailed(error));
        }
      } catch (error) {
        this.#listenerFailed(error);
      }
    }
  }

  #listenerFailed(cause: unknown): void {
    this.#deps.reportError(new ConfigError('LISTENER_FAILED', `an onChange listener of ${this.name} failed`, { service: this.name, cause }));
  }

  #persist(hub: HubLayer): void {
    const store = this.#deps.snapshots;
    if (!store) return;
    store
      .write({
        service: this.name,
        config: hub.config,
        version: hub.version,
        updatedAt: hub.updatedAt,
        revision: hub.revision,
        etag: hub.etag,
      })
      .catch((error: unknown) => {
        this.#deps.options.logger.warn({ service: this.name, err: describe(error) }, 'could not write last-known-good snapshot');
      });
  }

  #succeed(source: ConfigSource, promise: Promise<unknown>): void {
    this.#source = source;
    this.#failing = false;
    this.#lastError = undefined;
    this.#recoveryAttempt = 0;
    clearTimeout(this.#recoveryTimer);
    this.#recoveryTimer = undefined;
    this.#deps.fresh.set(this.name, promise);
  }

  #fail(error: ConfigError): void {
    this.#lastError = error;
    this.#failing = true;
    if (this.#source === 'hub') this.#source = 'cache';
    this.#deps.options.logger.warn({ service: this.name, code: error.code }, 'config refresh failed; serving last good value');
    this.#scheduleRecovery(error);
  }

  /** Background retries after a failure, with backoff; a first failure never poisons the service. */
  #scheduleRecovery(error: ConfigError): void {
    if (this.#recoveryTimer || this.#deps.isClosed() || error.code === 'CLIENT_CLOSED') return;
    const { minDelayMs, maxDelayMs, unauthorizedDelayMs } = this.#deps.options.recovery;
    const delay =
      error.code === 'UNAUTHORIZED'
        ? unauthorizedDelayMs * (0.8 + Math.random() * 0.4)
        : minDelayMs + backoffDelay(this.#recoveryAttempt, minDelayMs, maxDelayMs);
    this.#recoveryAttempt++;
    this.#armRecovery(delay);
  }

  #armRecovery(delay: number): void {
    clearTimeout(this.#recoveryTimer);
    this.#recoveryDueAt = Date.now() + delay;
    this.#recoveryTimer = setTimeout(() => {
      this.#recoveryTimer = undefined;
      this.refresh('recovery').catch(() => undefined);
    }, delay);
    this.#recoveryTimer.unref();
  }

  #expediteRecovery(): void {
    if (!this.#recoveryTimer || this.#lastError?.code === 'UNAUTHORIZED') return;
    const { minDelayMs } = this.#deps.options.recovery;
    if (this.#recoveryDueAt - Date.now() > minDelayMs) this.#armRecovery(minDelayMs);
  }

  /** First load: the hub within the startup budget, else snapshot, else defaults + env. */
  async #load(): Promise<unknown> {
    const { strictStartup, startupTimeoutMs } = this.#deps.options;
    let roundFailed: () => void = () => undefined;
    // A snapshot is a validated copy of the hub's own layer: once every hub has failed one round, serve it
    // at once instead of waiting out the retries (a restart during an outage boots in milliseconds). The
    // fetch goes on; its answer, if one comes, replaces the snapshot through the same road.
    const early =
      this.#deps.snapshots && !strictStartup
        ? new Promise<'snapshot'>((resolve) => {
            roundFailed = () => {
              this.#useSnapshot().then((used) => used && resolve('snapshot'), () => undefined);
            };
          })
        : undefined;
    const attempt = this.#inFlight ?? this.#start('refresh', () => roundFailed());
    let cause: unknown;
    try {
      const outcome = await raceTimeout(Promise.race([attempt.then(() => 'ok' as const), ...(early ? [early] : [])]), startupTimeoutMs);
      if (outcome !== 'timeout') return this.#committed!.value;
      cause = new ConfigError('HUB_UNREACHABLE', `no answer from the hub within ${startupTimeoutMs} ms`, {
        service: this.name,
      });
    } catch (error) {
      cause = error;
    }
    if (isConfigError(cause) && cause.code === 'CLIENT_CLOSED') throw cause;
    if (this.#deps.options.strictStartup) {
      // No silent downgrade: the caller asked for the hub's answer or an error. Recovery keeps running, so a
      // later `get` can still succeed.
      throw new ConfigError('CONFIG_UNAVAILABLE', `strict startup: no config of ${this.name} from the hub (${describe(cause)})`, {
        service: this.name,
        cause,
      });
    }
    return this.#fallback(cause);
  }

  /** Commits the last-known-good snapshot if nothing is committed yet; read (and reported) once per load. */
  #useSnapshot(): Promise<boolean> {
    this.#snapshotRead ??= this.#readSnapshot();
    return this.#snapshotRead;
  }

  async #readSnapshot(): Promise<boolean> {
    const store = this.#deps.snapshots;
    if (!store || this.#committed) return false;
    const read = await store.read(this.name);
    if (read.problem) {
      this.#deps.options.logger.warn({ service: this.name, code: read.problem.code, reason: read.problem.message }, 'snapshot ignored');
      this.#deps.reportError(read.problem);
    }
    if (!read.snapshot || this.#committed) return false;
    try {
      const snap = read.snapshot;
      const resolved = this.#resolve(snap.config);
      this.#commit(resolved, { config: resolved.hub ?? {}, version: snap.version, updatedAt: snap.updatedAt, revision: snap.revision, etag: snap.etag }, 'refresh');
      this.#source = 'snapshot';
      return true;
    } catch (error) {
      this.#deps.options.logger.warn({ service: this.name, code: (error as ConfigInvalidError).code }, 'snapshot does not validate; ignored');
      return false;
    }
  }

  async #fallback(cause: unknown): Promise<unknown> {
    if (!this.#committed) await this.#useSnapshot();
    if (!this.#committed) {
      try {
        this.#commit(this.#resolve(undefined), undefined, 'refresh');
        this.#source = 'defaults';
      } catch (error) {
        throw new ConfigError(
          'CONFIG_UNAVAILABLE',
          `no layer of ${this.name} yields a valid config (hub: ${describe(cause)}; defaults + env: ${describe(error)})`,
          { service: this.name, cause },
        );
      }
    }
    return this.#committed!.value;
  }
}

function isOlderDocument(doc: ConfigDocument, current: HubLayer): boolean {
  if (doc.revision !== undefined && current.revision !== undefined) return doc.revision < current.revision;
  return doc.updated_at < current.updatedAt;
}

/** Older than what we hold, or the same change again. */
function isStaleNotice(notice: Notice, current: HubLayer, criticalPaths: readonly string[]): boolean {
  if (notice.revision !== undefined && current.revision !== undefined) return notice.revision <= current.revision;
  if (notice.updated_at === undefined) return false;
  if (notice.updated_at < current.updatedAt) return true;
  if (notice.updated_at > current.updatedAt || notice.config === undefined) return false;
  return deepEqual(stripCriticalPaths(sanitize(notice.config), criticalPaths).hub, current.config);
}

function asConfigError(error: unknown, service: string): ConfigError {
  return isConfigError(error) ? error : new ConfigError('HUB_UNREACHABLE', describe(error), { service, cause: error });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
