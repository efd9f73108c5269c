/** The public shapes of a service's runtime state: where a value comes from, what changed, the status. */

/**
 * Where the value being served comes from. `hub`: confirmed by the hub (an answer, or a notice with a
 * valid hub signature); `cache`: the hub's value, while the hub is failing; `notice`: an unsigned notice
 * payload applied with `nats.applyPayload`, not yet confirmed by the hub; `snapshot`: last-known-good
 * file; `defaults`: defaults + env.
 */
export type ConfigSource = 'hub' | 'cache' | 'notice' | 'snapshot' | 'defaults';
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

export interface RuntimeStatus {
  /** Where the served value comes from; `undefined` before the first `get`. */
  source: ConfigSource | undefined;
  /** True when the value is past its TTL, the last refresh failed, or it is a fallback (or there is no value yet). */
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
