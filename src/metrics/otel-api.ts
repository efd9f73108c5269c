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
