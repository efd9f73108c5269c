/**
 * The client's OpenTelemetry instruments. Recorded at three points only: the transport's `fetchConfig`
 * (`fetch.duration`), the end of each runtime transition (`changes.*`) and the client's one error funnel,
 * the same that feeds `onError` (`errors`); the gauges are read from the runtimes when the SDK collects.
 * A client without metrics has none of this: every hook is `undefined`.
 */
import type { ConfigError } from '../errors.js';
import type { FetchOutcome } from '../hub/transport.js';
import type { Logger } from '../logger.js';
import type { ChangeSource } from '../runtime/types.js';
import type { MetricsBatchResult, MetricsCounter, MetricsHistogram, MetricsMeter, MetricsObservable } from './meter.js';
import type { MetricsEvent } from './metrics-event.js';
import { type ApiLoad, globalMeter, isNotFound, NO_METER_PROVIDER, otelApiForGlobalMeter } from './otel-api.js';

export const INSTRUMENTS = {
  age: 'central_hub.config.age',
  revision: 'central_hub.config.revision',
  fetchDuration: 'central_hub.fetch.duration',
  errors: 'central_hub.errors',
  applied: 'central_hub.changes.applied',
  rejected: 'central_hub.changes.rejected',
} as const;

/** The OpenTelemetry HTTP client duration buckets (semantic conventions), in seconds. */
export const FETCH_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** What the gauges read from a service's runtime. */
export interface ServiceGauges {
  /** Epoch ms of the hub's last confirmation of the served value (a snapshot's `savedAt` before any). */
  confirmedAt: number | undefined;
  /** The served hub layer's revision. */
  revision: number | undefined;
}

export class ClientMetrics {
  readonly #meter: MetricsMeter;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #fetchDuration: MetricsHistogram;
  readonly #errors: MetricsCounter;
  readonly #applied: MetricsCounter;
  readonly #rejected: MetricsCounter;
  readonly #observables: MetricsObservable[];
  readonly #services = new Map<string, () => ServiceGauges>();
  readonly #observe = (result: MetricsBatchResult): void => this.#observeGauges(result);
  #failed = false;

  /** Throws what the meter throws (the caller then goes without metrics). */
  constructor(meter: MetricsMeter, logger: Logger, now: () => number = Date.now) {
    this.#meter = meter;
    this.#logger = logger;
    this.#now = now;
    this.#fetchDuration = meter.createHistogram(INSTRUMENTS.fetchDuration, {
      description: 'Duration of a config fetch from the hub, retries and failover included',
      unit: 's',
      advice: { explicitBucketBoundaries: FETCH_DURATION_BUCKETS },
    });
    this.#errors = meter.createCounter(INSTRUMENTS.errors, { description: 'Errors reported through onError, by code', unit: '{error}' });
    this.#applied = meter.createCounter(INSTRUMENTS.applied, { description: 'Changes of the served config announced to onChange listeners', unit: '{change}' });
    this.#rejected = meter.createCounter(INSTRUMENTS.rejected, { description: 'Config updates refused by the schema (CONFIG_INVALID)', unit: '{change}' });
    const age = meter.createObservableGauge(INSTRUMENTS.age, { description: 'Time since the hub last confirmed the served config', unit: 's' });
    const revision = meter.createObservableGauge(INSTRUMENTS.revision, { description: 'Hub revision of the served config', unit: '{revision}' });
    this.#observables = [age, revision];
    meter.addBatchObservableCallback(this.#observe, this.#observables);
  }

  /** Starts observing a service's gauges (its runtime was just made). */
  track(service: string, gauges: () => ServiceGauges): void {
    this.#services.set(service, gauges);
  }

  /** The transport's `onFetched`: one finished `fetchConfig`. */
  fetched(service: string, outcome: FetchOutcome, seconds: number): void {
    try {
      this.#fetchDuration.record(seconds, { service, outcome });
    } catch (error) {
      this.#recordFailed(error);
    }
  }

  /** The runtime's last effect of a transition. */
  transitioned(service: string, event: MetricsEvent | undefined): void {
    if (event === undefined) return;
    const { applied, rejected } = event;
    try {
      if (applied !== undefined) this.#applied.add(1, { service, source: applied satisfies ChangeSource });
      if (rejected) this.#rejected.add(1, { service });
    } catch (error) {
      this.#recordFailed(error);
    }
  }

  /** The client's error funnel (the one `onError` listeners are called from). */
  errored(error: ConfigError): void {
    try {
      this.#errors.add(1, error.service === undefined ? { code: error.code } : { service: error.service, code: error.code });
    } catch (failure) {
      this.#recordFailed(failure);
    }
  }

  /** Unregisters the gauges' callback: a closed client observes nothing. */
  close(): void {
    this.#services.clear();
    try {
      this.#meter.removeBatchObservableCallback(this.#observe, this.#observables);
    } catch (error) {
      this.#recordFailed(error);
    }
  }

  #observeGauges(result: MetricsBatchResult): void {
    const [age, revision] = this.#observables as [MetricsObservable, MetricsObservable];
    const now = this.#now();
    for (const [service, read] of this.#services) {
      const { confirmedAt, revision: served } = read();
      // A clock stepped back never shows a negative age.
      if (confirmedAt !== undefined) result.observe(age, Math.max(0, now - confirmedAt) / 1000, { service });
      if (served !== undefined) result.observe(revision, served, { service });
    }
  }

  /** A user's meter cannot break the client (try/catch at each call: no closure on the fetch path); logged once. */
  #recordFailed(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#logger.warn({ err: String(error) }, 'recording a metric failed (config delivery is not affected)');
  }
}

/**
 * The client's metrics: with the given meter, else the global one of `@opentelemetry/api`; none (and no
 * cost at all) when the API is not installed, no meter provider is registered, or the meter refuses the
 * instruments.
 */
export function clientMetrics(meter: MetricsMeter | undefined, logger: Logger, load: () => ApiLoad = otelApiForGlobalMeter): ClientMetrics | undefined {
  let chosen = meter;
  if (chosen === undefined) {
    const found = globalMeter(load());
    if (found.meter === undefined) {
      if (found.problem === NO_METER_PROVIDER) logger.debug({}, 'metrics off: no global meter provider is registered');
      else if (isNotFound(found.problem)) logger.debug({}, 'metrics off: @opentelemetry/api is not installed');
      else logger.warn({ err: String(found.problem) }, 'metrics off: @opentelemetry/api could not be loaded');
      return undefined;
    }
    chosen = found.meter;
  }
  try {
    return new ClientMetrics(chosen, logger);
  } catch (error) {
    logger.warn({ err: String(error) }, 'metrics off: the meter refused the instruments');
    return undefined;
  }
}
