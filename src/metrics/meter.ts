/**
 * The part of an OpenTelemetry `Meter` (`@opentelemetry/api` ≥ 1.3) the client uses, typed structurally: a
 * `Meter` of the API is one, and the package's types do not name `@opentelemetry/api` (an optional peer: a
 * TypeScript project without it installed must still compile against our `.d.ts`).
 */

export type MetricAttributes = Record<string, string | number | boolean>;

export interface InstrumentOptions {
  description?: string;
  unit?: string;
  /** Honoured by SDKs of API ≥ 1.7, ignored by older ones. */
  advice?: { explicitBucketBoundaries?: number[] };
}

export interface MetricsHistogram {
  record(value: number, attributes?: MetricAttributes): void;
}

export interface MetricsCounter {
  add(value: number, attributes?: MetricAttributes): void;
}

/** An observable instrument, handed back to the meter only. */
export type MetricsObservable = object;

export interface MetricsBatchResult {
  observe(observable: MetricsObservable, value: number, attributes?: MetricAttributes): void;
}

export type MetricsBatchCallback = (result: MetricsBatchResult) => void;

/** An OpenTelemetry `Meter` (`metrics.getMeter(…)` of `@opentelemetry/api`, or `meterProvider.getMeter(…)` of an SDK). */
export interface MetricsMeter {
  createHistogram(name: string, options?: InstrumentOptions): MetricsHistogram;
  createCounter(name: string, options?: InstrumentOptions): MetricsCounter;
  createObservableGauge(name: string, options?: InstrumentOptions): MetricsObservable;
  addBatchObservableCallback(callback: MetricsBatchCallback, observables: MetricsObservable[]): void;
  removeBatchObservableCallback(callback: MetricsBatchCallback, observables: MetricsObservable[]): void;
}

export interface MetricsOptions {
  /**
   * The meter to record with, e.g. `meterProvider.getMeter('@central-hub/config')`.
   * @default the global meter provider's (`metrics.getMeter('@central-hub/config', version)`), when `@opentelemetry/api` is installed
   */
  meter?: MetricsMeter;
}

/** The methods `metrics.meter` must have (`INVALID_OPTIONS` otherwise). */
export const METER_METHODS = [
  'createHistogram',
  'createCounter',
  'createObservableGauge',
  'addBatchObservableCallback',
  'removeBatchObservableCallback',
] as const satisfies ReadonlyArray<keyof MetricsMeter>;
