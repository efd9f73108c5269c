/**
 * The hub's Prometheus metrics (README "Metrics"), on a `Registry` of its own: a process may run many
 * hubs (the tests do), and prom-client's global default registry would mix their counters (and refuse a
 * second hub's metric of the same name). No label ever holds a config value or an API key name.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type Broadcaster, NATS_STATES } from '../broadcaster.js';
import type { Fleet } from '../fleet/fleet.js';
import type { CountGroup } from '../fleet/instance-sql.js';
import type { SqlStore } from '../store/sql-store.js';
import type { OutboxStats, WriteCommand } from '../store/types.js';
import { CachedRead } from './cached-read.js';
import { HttpMetrics } from './http-metrics.js';
import { currentRevisions, DEFAULT_METRICS_MAX_SERVICES, instanceSeries } from './instance-series.js';

/** How long a scrape's database reads (outbox stats, instance counts) are reused. @default 5_000 */
export const DEFAULT_METRICS_CACHE_MS = 5_000;
/** A scrape waits this long for the database, then reports `…_stats_up 0`. @default 1_500 */
export const METRICS_READ_TIMEOUT_MS = 1_500;

/** `hub_writes_total{action}` / `hub_write_duration_seconds{action}`: the write's kind. */
export type WriteAction = WriteCommand['kind'];
export const WRITE_ACTIONS: readonly WriteAction[] = ['replace', 'patch', 'delete', 'rollback'];
/** `committed`; `refused`: 422 (secret-looking keys or values, live consumers' schemas); `conflict`: 412 (`If-Match`). */
export type WriteOutcome = 'committed' | 'refused' | 'conflict';
const WRITE_OUTCOMES: readonly WriteOutcome[] = ['committed', 'refused', 'conflict'];

export const WRITE_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface HubMetricsOptions {
  store: Pick<SqlStore, 'outboxStats' | 'sql'>;
  fleet: Pick<Fleet, 'instances'>;
  broadcaster: Pick<Broadcaster, 'connected' | 'natsState' | 'reconnects' | 'published'>;
  /** @default DEFAULT_METRICS_CACHE_MS */
  cacheMs?: number | undefined;
  /** Services `hub_instances` lists by name; the others are summed under `service="_other"`. @default 50 */
  maxServices?: number | undefined;
  /** @default METRICS_READ_TIMEOUT_MS */
  readTimeoutMs?: number | undefined;
}

/** The hub's metrics options, checked before the store opens (a bad option fails fast and leaks nothing). */
export function resolveMetricsOptions(options: { metricsApiKey?: string | undefined; metricsCacheMs?: number | undefined; metricsMaxServices?: number | undefined }): {
  apiKey: string | undefined;
  cacheMs: number;
  maxServices: number;
} {
  const cacheMs = options.metricsCacheMs ?? DEFAULT_METRICS_CACHE_MS;
  const maxServices = options.metricsMaxServices ?? DEFAULT_METRICS_MAX_SERVICES;
  if (!Number.isFinite(cacheMs) || cacheMs < 0) throw new TypeError('metricsCacheMs must be a finite number >= 0');
  if (!Number.isSafeInteger(maxServices) || maxServices < 0) throw new TypeError('metricsMaxServices must be an integer >= 0');
  if (options.metricsApiKey !== undefined && options.metricsApiKey.length === 0) {
    throw new TypeError('metricsApiKey must not be empty (leave it unset for an open /metrics)');
  }
  return { apiKey: options.metricsApiKey, cacheMs, maxServices };
}

/**
 * The process metrics (`hub_process_*`, `hub_nodejs_*`): once per process, in a registry of their own
 * that every hub's scrape includes. They describe the process, whichever hub serves them, and
 * `collectDefaultMetrics` starts an event-loop delay monitor and a GC observer that can never be stopped:
 * one per hub would leak one of each per hub a test process starts and closes.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'hub_' });
  }
  return processRegistry;
}

export class HubMetrics {
  readonly registry = new Registry();
  readonly http: HttpMetrics;
  readonly #writes: Counter<'action' | 'outcome'>;
  readonly #writeDuration: Histogram<'action'>;
  /** Label objects built once: a write costs no allocation of ours. */
  readonly #writeLabels = new Map<WriteAction, { duration: { action: WriteAction }; outcomes: Map<WriteOutcome, { action: WriteAction; outcome: WriteOutcome }> }>();

  constructor(options: HubMetricsOptions) {
    const { cacheMs, maxServices } = resolveMetricsOptions({ metricsCacheMs: options.cacheMs, metricsMaxServices: options.maxServices });
    const read = { cacheMs, timeoutMs: options.readTimeoutMs ?? METRICS_READ_TIMEOUT_MS };
    const registers = [this.registry];
    this.http = new HttpMetrics(this.registry);

    this.#writes = new Counter({
      name: 'hub_writes_total',
      help: 'Config writes (POST, PATCH, DELETE, rollback) by action and outcome: committed, refused (422), conflict (412).',
      labelNames: ['action', 'outcome'],
      registers,
    });
    this.#writeDuration = new Histogram({
      name: 'hub_write_duration_seconds',
      help: 'Committed writes: the store write (transaction, checks, audit and outbox rows) plus the immediate publish.',
      labelNames: ['action'],
      buckets: WRITE_DURATION_BUCKETS,
      registers,
    });
    // Every series from the start (0): rate() and alerts see the first write.
    for (const action of WRITE_ACTIONS) {
      const duration = { action };
      const outcomes = new Map(WRITE_OUTCOMES.map((outcome) => [outcome, { action, outcome }] as const));
      this.#writeLabels.set(action, { duration, outcomes });
      this.#writeDuration.zero(duration);
      for (const labels of outcomes.values()) this.#writes.inc(labels, 0);
    }

    // The outbox (`/health`'s numbers), read on scrape, cached; no values (only `_up 0`) when the DB fails.
    const outbox = new CachedRead<OutboxStats>(() => options.store.outboxStats(), read);
    const outboxUp: Gauge = new Gauge({
      name: 'hub_outbox_stats_up',
      help: '1 when the last read of the outbox stats succeeded, 0 when the database failed or timed out (hub_outbox_* then have no value).',
      registers,
      collect: async () => {
        outboxUp.set((await outbox.get()).ok ? 1 : 0);
      },
    });
    const outboxGauge = (name: string, help: string, pick: (s: OutboxStats) => number) => {
      const gauge: Gauge = new Gauge({
        name,
        help,
        registers,
        collect: async () => {
          const r = await outbox.get();
          // remove(), not reset(): reset() leaves an unlabelled gauge at 0, a false "nothing pending".
          if (r.ok) gauge.set(pick(r.value));
          else gauge.remove();
        },
      });
    };
    outboxGauge('hub_outbox_pending', 'Outbox rows not yet published to NATS (nor dead-lettered); without NATS they stay pending.', (s) => s.pending);
    outboxGauge('hub_outbox_dead', 'Dead-lettered outbox rows (kept until the outbox retention deletes them).', (s) => s.dead);
    outboxGauge('hub_outbox_lag_seconds', 'Age of the oldest pending outbox row (0 when none): how far the broadcast is behind.', (s) => s.lagMs / 1000);

    // The fleet (docs/fleet.md §5): live instances per service and state, bounded to `maxServices` services.
    const fleet = new CachedRead<{ groups: CountGroup[]; revisions: Map<string, number> }>(async () => {
      const [groups, revisions] = await Promise.all([options.fleet.instances.counts(), currentRevisions(options.store.sql)]);
      return { groups, revisions };
    }, read);
    const instancesUp: Gauge = new Gauge({
      name: 'hub_instances_stats_up',
      help: '1 when the last read of the instance counts succeeded, 0 when the database failed or timed out (hub_instances then has no value).',
      registers,
      collect: async () => {
        instancesUp.set((await fleet.get()).ok ? 1 : 0);
      },
    });
    const instances: Gauge<'service' | 'state'> = new Gauge<'service' | 'state'>({
      name: 'hub_instances',
      help: `Live reporting instances by service and state (on_latest, behind, rejected); at most ${maxServices} services by name (most instances first), the rest summed as service="_other".`,
      labelNames: ['service', 'state'],
      registers,
      collect: async () => {
        const r = await fleet.get();
        instances.reset();
        if (!r.ok) return;
        for (const s of instanceSeries(r.value.groups, r.value.revisions, maxServices)) instances.set({ service: s.service, state: s.state }, s.count);
      },
    });

    // NATS, from the broadcaster's own state: no I/O.
    const broadcaster = options.broadcaster;
    const natsConnected: Gauge = new Gauge({
      name: 'hub_nats_connected',
      help: '1 when the hub is connected to NATS, 0 otherwise (also when NATS is not configured: see hub_nats_state).',
      registers,
      collect: () => {
        natsConnected.set(broadcaster.connected ? 1 : 0);
      },
    });
    const natsState: Gauge<'state'> = new Gauge<'state'>({
      name: 'hub_nats_state',
      help: `The hub's NATS connection: 1 for the current state (${NATS_STATES.join(', ')}), 0 for the others.`,
      labelNames: ['state'],
      registers,
      collect: () => {
        const current = broadcaster.natsState;
        for (const state of NATS_STATES) natsState.set({ state }, state === current ? 1 : 0);
      },
    });
    const reconnects: Counter = new Counter({
      name: 'hub_nats_reconnects_total',
      help: 'Times the NATS connection came back after a disconnect.',
      registers,
      collect: () => {
        reconnects.reset();
        reconnects.inc(broadcaster.reconnects);
      },
    });
    const published: Counter = new Counter({
      name: 'hub_notices_published_total',
      help: 'Notices this hub published to NATS (right after a write, or by the outbox relay).',
      registers,
      collect: () => {
        published.reset();
        published.inc(broadcaster.published);
      },
    });
  }

  /** A write committed: its duration (store write + publish) and the count. */
  writeCommitted(action: WriteAction, seconds: number): void {
    const labels = this.#writeLabels.get(action)!;
    this.#writeDuration.observe(labels.duration, seconds);
    this.#writes.inc(labels.outcomes.get('committed')!);
  }

  /** A write refused (422) or in conflict (412). */
  writeFailed(action: WriteAction, outcome: Exclude<WriteOutcome, 'committed'>): void {
    this.#writes.inc(this.#writeLabels.get(action)!.outcomes.get(outcome)!);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text of this hub's metrics and the process's. Never rejects for a database failure. */
  async scrape(): Promise<string> {
    const [hub, process] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return `${hub}\n${process}`;
  }
}
