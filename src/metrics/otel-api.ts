/**
 * The global meter of `@opentelemetry/api`, when the application has the API installed.
 *
 * OpenTelemetry asks libraries to depend on `@opentelemetry/api` only (never an SDK) and to record through
 * the global provider, which is a no-op until the application registers an SDK. The API is an *optional*
 * peer of this package, so it is never imported statically (the package must load without it, and a
 * bundler must not fail on it or pull in a second copy): it is required once per process, resolved from
 * this package's location, the first time a client with metrics is constructed — synchronously, so that the
 * instruments exist before the first fetch. Any copy of API 1.x will do: the global provider is shared
 * through a `Symbol.for` key on `globalThis`, whichever copy registered it.
 *
 * While no copy has registered a meter provider there, the API is not loaded at all (~30 ms at startup,
 * bench figure 7): it would hand out its no-op meter, which stays a no-op for good (API 1.x has no
 * delegating meter provider, and the client takes the meter of the provider registered at construction).
 */
import { createRequire } from 'node:module';
import { CLIENT_VERSION } from '../version.js';
import type { MetricsMeter } from './meter.js';

export const METER_NAME = '@central-hub/config';

/** The part of the API module used here. */
interface OtelApi {
  metrics: { getMeter(name: string, version?: string): MetricsMeter };
}

export type ApiLoad = { api: OtelApi } | { api: undefined; problem: unknown };

let cached: ApiLoad | undefined;

/** Where every copy of API 1.x keeps its globals (`registerGlobal` of its internal/global-utils). */
const API_GLOBALS = Symbol.for('opentelemetry.js.api.1');

/** The `problem` of a load skipped because no meter provider is registered (a normal case, like absence). */
export const NO_METER_PROVIDER: unique symbol = Symbol('no meter provider is registered');

/** The API module as `load` returns it, checked; `problem` when it is absent or not the API. */
export function apiFrom(load: () => unknown): ApiLoad {
  let module: unknown;
  try {
    module = load();
  } catch (error) {
    return { api: undefined, problem: error };
  }
  const metrics = (module as { metrics?: { getMeter?: unknown } } | null)?.metrics;
  if (typeof metrics?.getMeter !== 'function') return { api: undefined, problem: new Error('@opentelemetry/api has no metrics.getMeter (API < 1.3?)') };
  return { api: module as OtelApi };
}

/** Loads the API once per process (a miss is remembered too: resolution walks the file system). */
export function otelApi(): ApiLoad {
  // tsup shims `import.meta.url` in the CJS build (`shims: true`).
  cached ??= apiFrom(() => createRequire(import.meta.url)('@opentelemetry/api'));
  return cached;
}

/** True when some copy of API 1.x has registered a global meter provider (its `metrics` global). */
export function meterProviderRegistered(): boolean {
  const globals = (globalThis as Record<symbol, unknown>)[API_GLOBALS];
  return typeof globals === 'object' && globals !== null && (globals as { metrics?: unknown }).metrics !== undefined;
}

let installed: ApiLoad | undefined;

/**
 * The API for the global meter: loaded (`otelApi`) when a meter provider is registered or the API is loaded
 * already, else not; then only resolved (once per process), to tell "not installed" from "no provider".
 */
export function otelApiForGlobalMeter(): ApiLoad {
  if (cached !== undefined || meterProviderRegistered()) return otelApi();
  installed ??= resolvable(() => createRequire(import.meta.url).resolve('@opentelemetry/api'));
  return installed;
}

/** `{ problem: NO_METER_PROVIDER }` when `resolve` finds the API, else why it does not. */
export function resolvable(resolve: () => string): ApiLoad {
  try {
    resolve();
  } catch (error) {
    return { api: undefined, problem: error };
  }
  return { api: undefined, problem: NO_METER_PROVIDER };
}

/** Absent means not installed: that is the normal case of an optional peer, not worth a warning. */
export function isNotFound(problem: unknown): boolean {
  const code = (problem as { code?: unknown } | null)?.code;
  return code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND';
}

/** The global meter of this package, or the reason there is none. */
export function globalMeter(load: ApiLoad): { meter: MetricsMeter } | { meter: undefined; problem: unknown } {
  if (load.api === undefined) return { meter: undefined, problem: load.problem };
  try {
    return { meter: load.api.metrics.getMeter(METER_NAME, CLIENT_VERSION) };
  } catch (error) {
    return { meter: undefined, problem: error };
  }
}
