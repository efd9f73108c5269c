/**
 * ConfigClient: orchestration only. Per-service work lives in `ServiceRuntime` (the one refresh road);
 * this class owns the shared parts (transport, TTL index, snapshot store, watchers) and the lifecycle.
 */
import { type ChangeEvent, type ChangeStreamOptions, changeStream } from './change-stream.js';
import { LRUCache } from 'lru-cache';
import type { z } from 'zod';
import { ConfigError, errorMessage } from './errors.js';
import { FleetReporter, registerFleetReporter } from './fleet/reporter.js';
import { HubTransport } from './hub/transport.js';
import { isValidServiceName } from './hub/wire.js';
import type { LayerName } from './layers/merge.js';
import { getPath, hasPath, splitPath } from './layers/paths.js';
import { type ClientMetrics, clientMetrics } from './metrics/client-metrics.js';
import { type ConfigClientOptions, type ResolvedOptions, resolveOptions, type ServiceDefinition, type ServicesMap } from './options.js';
import { ServiceRuntime } from './runtime/service-runtime.js';
import type { ChangeListener, RuntimeStatus } from './runtime/types.js';
import { SnapshotStore } from './snapshot/file-store.js';
import { NatsWatcher, type NatsState } from './watch/nats-watcher.js';
import { Poller } from './watch/poller.js';

/**
 * The config type of a service definition: the schema's output, deeply readonly (served values are deeply
 * frozen and shared by every caller), or a JSON object without one.
 */
export type ConfigOf<D> = D extends { schema: infer Z extends z.ZodType }
  ? import('./types.js').DeepReadonly<z.output<Z>>
  : Record<string, unknown>;

/** Any name when no services are declared; `never` (a type error) once they are: only declared names pass. */
export type UndeclaredName<S> = string extends keyof S ? string : never;

export interface ConfigStatus extends RuntimeStatus {
  service: string;
  nats: NatsState;
}

export interface Explanation {
  service: string;
  path: string;
  /** The layer the value came from; `mixed` for objects assembled from several; `schema` for schema defaults. */
  layer: LayerName | 'mixed' | 'schema' | 'absent';
  /** The value, or `'[redacted]'` at critical paths. */
  value: unknown;
  /** Set when the path is critical: the environment variable it is read from. */
  envVariable?: string | undefined;
  /** For objects: the layer of every leaf below `path`. */
  leaves?: Record<string, LayerName>;
}

export type ErrorListener = (error: ConfigError) => void;

const REDACTED = '[redacted]';

export class ConfigClient<S extends ServicesMap = ServicesMap> {
  readonly #options: ResolvedOptions;
  readonly #transport: HubTransport;
  /** Fleet reporting (docs/fleet.md); none with `fleetReport: false`. */
  readonly #fleet: FleetReporter | undefined;
  /** OpenTelemetry instruments; none with `metrics: false` or without `@opentelemetry/api`. */
  readonly #metrics: ClientMetrics | undefined;
  readonly #snapshots: SnapshotStore | undefined;
  /** Fresh values by service: the `get` hot path is one lookup here. */
  readonly #fresh: LRUCache<string, Promise<unknown>>;
  readonly #runtimes = new Map<string, ServiceRuntime>();
  readonly #pollers = new Map<string, Poller>();
  readonly #errorListeners = new Set<ErrorListener>();
  /** Enders of the open `changes()` iterators, called by `close()`. */
  readonly #streamEnds = new Set<() => void>();
  #watcher: NatsWatcher | undefined;
  #closed: Promise<void> | undefined;
  /** Aborted by close(): ends fetches in flight, retry waits and snapshot reads at once. */
  readonly #lifetime = new AbortController();

  /** Checks the options (throws `INVALID_OPTIONS`); does no I/O. */
  constructor(options: ConfigClientOptions<S>) {
    this.#options = resolveOptions(options as ConfigClientOptions);
    if (this.#options.nats && Object.keys(this.#options.services).length === 0) {
      // Hot reload subscribes per declared service; with none declared it would silently do nothing.
      throw new ConfigError('INVALID_OPTIONS', 'nats: hot reload needs the services to be declared in `services`');
    }
    const { transport, hubUrls, apiKey, logger, snapshotDir, cacheTtlMs } = this.#options;
    const fleet = this.#options.fleetReport ? this.#fleetReporter() : undefined;
    this.#fleet = fleet;
    const metrics = this.#options.metrics === false ? undefined : clientMetrics(this.#options.metrics.meter, logger);
    this.#metrics = metrics;
    this.#transport = new HubTransport({
      ...transport,
      hubUrls,
      apiKey,
      logger,
      random: Math.random,
      reportHeader: fleet && ((service) => fleet.headerFor(service)),
      onAnswer: fleet && ((hubUrl, service, status, headers) => fleet.onAnswer(hubUrl, service, status, headers)),
      onFetched: metrics && ((service, outcome, seconds) => metrics.fetched(service, outcome, seconds)),
    });
    this.#snapshots = snapshotDir === false ? undefined : new SnapshotStore(snapshotDir);
    // Bounded by size (one unit per entry) rather than `max`: with `max`, lru-cache preallocates its arrays
    // for all 10 000 entries (~2 ms and ~400 KB per client), which dominated a cold first `get` (bench figure 2).
    this.#fresh = new LRUCache({ maxSize: 10_000, sizeCalculation: () => 1, ttl: cacheTtlMs, updateAgeOnGet: false });
  }

  /** The service's config: fresh from cache, else the hub, else the fallback chain. */
  get<K extends keyof S & string>(name: K): Promise<ConfigOf<S[K]>>;
  get(name: UndeclaredName<S>): Promise<Record<string, unknown>>;
  get(name: string): Promise<unknown> {
    const hit = this.#fresh.get(name);
    if (hit !== undefined) return hit;
    if (this.#closed) return Promise.reject(closedError(name));
    const runtime = this.#runtime(name);
    if (runtime instanceof ConfigError) return Promise.reject(runtime);
    this.#startWatching(runtime);
    return runtime.get();
  }

  /** Fetches the service's config from the hub now (joins a fetch in flight, else starts one). */
  async refresh<K extends keyof S & string>(name: K): Promise<ConfigOf<S[K]>>;
  async refresh(name: UndeclaredName<S>): Promise<Record<string, unknown>>;
  async refresh(name: string): Promise<unknown> {
    if (this.#closed) throw closedError(name);
    const runtime = this.#runtime(name);
    if (runtime instanceof ConfigError) throw runtime;
    if (!runtime.hasValue) return this.get(name);
    this.#startWatching(runtime);
    return runtime.refresh();
  }

  /**
   * Calls `listener(next, prev, change)` after each committed change of the merged value. Returns the
   * unsubscribe function. Listener errors are reported through `onError`, never thrown.
   */
  onChange<K extends keyof S & string>(name: K, listener: ChangeListener<ConfigOf<S[K]>>): () => void;
  onChange(name: UndeclaredName<S>, listener: ChangeListener<Record<string, unknown>>): () => void;
  onChange(name: string, listener: ChangeListener<never>): () => void {
    if (this.#closed) throw closedError(name);
    const runtime = this.#runtime(name);
    if (runtime instanceof ConfigError) throw runtime;
    return runtime.onChange(listener as ChangeListener);
  }

  /**
   * The same deliveries as `onChange`, as an async iterator: `for await (const { next, change } of
   * client.changes(name, { signal }))`. Ends on `break`, when `signal` aborts, or when the client closes.
   */
  changes<K extends keyof S & string>(name: K, options?: ChangeStreamOptions): AsyncIterableIterator<ChangeEvent<ConfigOf<S[K]>>>;
  changes(name: UndeclaredName<S>, options?: ChangeStreamOptions): AsyncIterableIterator<ChangeEvent<Record<string, unknown>>>;
  changes(name: string, options: ChangeStreamOptions = {}): AsyncIterableIterator<ChangeEvent<unknown>> {
    return changeStream<unknown>(
      (listener) => this.onChange(name as UndeclaredName<S>, listener as ChangeListener<Record<string, unknown>>),
      (end) => {
        this.#streamEnds.add(end);
        return () => this.#streamEnds.delete(end);
      },
      options,
    );
  }

  /** Errors the client handles without throwing: rejected updates, bad notices, failing listeners. */
  onError(listener: ErrorListener): () => void {
    this.#errorListeners.add(listener);
    return () => {
      this.#errorListeners.delete(listener);
    };
  }

  status(name: (keyof S & string) | UndeclaredName<S>): ConfigStatus;
  status(name: string): ConfigStatus {
    const runtime = this.#runtime(name);
    if (runtime instanceof ConfigError) throw runtime;
    return { service: name, ...runtime.status(), nats: this.#watcher?.state ?? 'off' };
  }

  /** Which layer the value at `path` (dotted) came from; values at critical paths are redacted. */
  explain(name: (keyof S & string) | UndeclaredName<S>, path: string): Explanation;
  explain(name: string, path: string): Explanation {
    const runtime = this.#runtimes.get(name);
    const parts = splitPath(path);
    const dotted = parts.join('.');
    const provenance = runtime?.provenance;
    if (!runtime || !provenance) return { service: name, path: dotted, layer: 'absent', value: undefined };
    const envVariable = runtime.criticalPaths.includes(dotted) ? runtime.envVariableFor(dotted) : undefined;
    const served = runtime.committedValue;
    if (!hasPath(served, parts)) return { service: name, path: dotted, layer: 'absent', value: undefined, envVariable };
    // No path ever shows a critical value: at or below a critical path the value is redacted; above one
    // (the root included) the critical leaves inside it are.
    const shown = redactCritical(getPath(served, parts), parts, runtime.criticalPaths);
    const exact = provenance.get(dotted);
    if (exact) return { service: name, path: dotted, layer: exact, value: shown, envVariable };
    // Provenance is recorded before validation; leaves the schema stripped are not served, so not listed.
    const leaves: Record<string, LayerName> = {};
    for (const [leaf, layer] of provenance) {
      if ((leaf.startsWith(`${dotted}.`) || dotted === '') && hasPath(served, splitPath(leaf))) leaves[leaf] = layer;
    }
    const layers = new Set(Object.values(leaves));
    const layer = layers.size === 0 ? (shown === undefined ? 'absent' : 'schema') : layers.size === 1 ? [...layers][0]! : 'mixed';
    return { service: name, path: dotted, layer, value: shown, envVariable, leaves };
  }

  /** Stops timers and watchers, closes what the client opened; later calls fail with `CLIENT_CLOSED`. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#lifetime.abort(closedError(''));
      this.#fresh.clear();
      for (const end of [...this.#streamEnds]) end();
      for (const poller of this.#pollers.values()) poller.stop();
      for (const runtime of this.#runtimes.values()) runtime.close();
      this.#fleet?.close();
      this.#metrics?.close();
      await Promise.allSettled([this.#watcher?.close(), this.#transport.close(), this.#snapshots?.idle()]);
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #runtime(name: string): ServiceRuntime | ConfigError {
    const existing = this.#runtimes.get(name);
    if (existing) return existing;
    if (!isValidServiceName(name)) {
      return new ConfigError('INVALID_SERVICE_NAME', `service name ${JSON.stringify(String(name)).slice(0, 120)} must match ^[a-z0-9-]+$ (≤ 100 chars)`);
    }
    const declared = this.#options.services;
    if (Object.keys(declared).length > 0 && !Object.hasOwn(declared, name)) {
      // A declared client knows its services: an unknown name is a bug (or input reaching `get`), and would
      // otherwise cost a runtime, a poll timer and no hot reload for the life of the client.
      return new ConfigError('SERVICE_NOT_DECLARED', `service ${name} is not declared in \`services\` (declared: ${Object.keys(declared).join(', ')})`, { service: name });
    }
    const definition: ServiceDefinition = declared[name] ?? {};
    const fleet = this.#fleet;
    const metrics = this.#metrics;
    const runtime = new ServiceRuntime({
      name,
      definition,
      options: this.#options,
      transport: this.#transport,
      snapshots: this.#snapshots,
      fresh: this.#fresh,
      reportError: (error) => this.#reportError(error),
      isClosed: () => this.#closed !== undefined,
      signal: this.#lifetime.signal,
      onFleetEvent: fleet && ((event) => fleet.transitioned(name, event)),
      onMetricsEvent: metrics && ((event) => metrics.transitioned(name, event)),
    });
    fleet?.track(name, definition, () => runtime.status());
    metrics?.track(name, () => ({ confirmedAt: runtime.confirmedAt, revision: runtime.status().revision }));
    this.#runtimes.set(name, runtime);
    return runtime;
  }

  #fleetReporter(): FleetReporter {
    const { instanceId, pollIntervalMs, logger, recovery, hubUrls } = this.#options;
    const reporter = new FleetReporter({
      instanceId,
      pollIntervalMs,
      recoveryMaxDelayMs: recovery.maxDelayMs,
      hubUrls,
      logger,
      random: Math.random,
      send: (hubUrl, request) => this.#transport.send(hubUrl, request),
      preferredHubUrl: () => this.#transport.preferredHubUrl,
    });
    registerFleetReporter(this, reporter);
    return reporter;
  }

  /** Hot reload starts with the first use of a service, never in the constructor (no I/O there). */
  #startWatching(runtime: ServiceRuntime): void {
    const { pollIntervalMs, nats } = this.#options;
    if (pollIntervalMs !== false && !this.#pollers.has(runtime.name)) {
      const poller = new Poller({
        intervalMs: pollIntervalMs,
        // While failing, the recovery timer owns the retries; the poll would only add load.
        tick: async () => {
          await runtime.poll();
        },
        onError: () => undefined,
      });
      this.#pollers.set(runtime.name, poller);
      poller.start();
    }
    if (nats && !this.#watcher) {
      const services = Object.keys(this.#options.services);
      if (services.length === 0) return;
      this.#watcher = new NatsWatcher({
        services,
        subjectPrefix: nats.subjectPrefix,
        servers: nats.servers,
        connection: nats.connection,
        connectOptions: nats.connectOptions,
        verifyKeys: nats.verifyKeys,
        logger: this.#options.logger,
        onNotice: (service, notice, verified?: boolean) => this.#runtimes.get(service)?.handleNotice(notice, verified === true),
        onInvalidNotice: (_service, error) => this.#reportError(error),
        onResync: () => this.#resync(),
      });
      const watcher = this.#watcher;
      // The first subscription comes after the first fetch started (often after it ended): a change
      // committed in between was published to nobody. Resync once subscribed, as after a reconnect.
      watcher.start().then(
        () => {
          if (watcher.state === 'connected' && !this.#closed) this.#resync();
        },
        (error: unknown) => {
          this.#options.logger.warn({ err: errorMessage(error) }, 'nats watcher failed to start');
        },
      );
    }
  }

  /** Notices may have been missed: refetch every service that has a value or is loading one. */
  #resync(): void {
    for (const runtime of this.#runtimes.values()) runtime.resync();
  }

  #reportError(error: ConfigError): void {
    this.#options.logger.debug({ service: error.service, code: error.code }, error.message);
    this.#metrics?.errored(error);
    for (const listener of [...this.#errorListeners]) {
      try {
        listener(error);
      } catch {
        // An error listener that throws has nowhere left to report to.
      }
    }
  }
}

/** `value` (found at `at`) with every critical value at or below it replaced by `[redacted]`. */
function redactCritical(value: unknown, at: readonly string[], criticalPaths: readonly string[]): unknown {
  const dotted = at.join('.');
  if (criticalPaths.some((c) => dotted === c || dotted.startsWith(`${c}.`))) return REDACTED;
  let out = value;
  for (const critical of criticalPaths) {
    const inside = dotted === '' ? splitPath(critical) : critical.startsWith(`${dotted}.`) ? splitPath(critical).slice(at.length) : undefined;
    if (inside && hasPath(out, inside)) out = replacePath(out, inside);
  }
  return out;
}

/** A copy of `root` (plain objects copied along `path` only) with `[redacted]` at `path`. */
function replacePath(root: unknown, path: readonly string[]): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return REDACTED;
  const copy = { ...(root as Record<string, unknown>) };
  copy[head] = replacePath(copy[head], rest);
  return copy;
}

function closedError(service: string): ConfigError {
  return new ConfigError('CLIENT_CLOSED', 'the client is closed', { service });
}
