/**
 * The fleet's pure rules (docs/fleet.md §1, §5): when an instance expires, and how instances are counted
 * against the current revision.
 */

/**
 * The bounds of an instance's expiry window: 3 s to 1 h. The upper bound is what a report can make the hub
 * keep: an instance that says it polls once a day (or a read key that floods ids with a huge `poll_ms`)
 * is forgotten after an hour of silence all the same.
 */
export const MIN_EXPIRY_MS = 3_000;
export const MAX_EXPIRY_MS = 3_600_000;
/** The window of an instance that does not poll (`poll_ms: 0`): 3 × 60 s. */
export const NO_POLL_EXPIRY_MS = 180_000;
/** The error code of an instance that rejected the hub's value (and serves an older one). */
export const REJECTED_ERROR = 'CONFIG_INVALID';

/** An instance expires after 3 × `poll_ms` of silence, bounded to [3 s, 1 h]; 180 s when it does not poll. */
export function expiryMs(pollMs: number): number {
  if (!Number.isFinite(pollMs) || pollMs <= 0) return NO_POLL_EXPIRY_MS;
  return Math.min(MAX_EXPIRY_MS, Math.max(MIN_EXPIRY_MS, 3 * pollMs));
}

export interface FleetSummary {
  total: number;
  on_latest: number;
  behind: number;
  rejected: number;
}

/** What the summary needs of an instance (or of a group of `count` instances alike). */
export interface CountedInstance {
  revision: number | null;
  last_error: string | null;
  /** @default 1 */
  count?: number;
}

export type InstanceState = 'rejected' | 'on_latest' | 'behind';

/**
 * `rejected` when its last error is `CONFIG_INVALID` (whatever revision it runs), `on_latest` when it runs
 * the current revision, `behind` otherwise (an older or unknown revision, or the service has no config:
 * `current` is `null`).
 */
export function instanceState(instance: CountedInstance, current: number | null): InstanceState {
  if (instance.last_error === REJECTED_ERROR) return 'rejected';
  if (current !== null && instance.revision === current) return 'on_latest';
  return 'behind';
}

export function summarize(instances: Iterable<CountedInstance>, current: number | null): FleetSummary {
  const summary: FleetSummary = { total: 0, on_latest: 0, behind: 0, rejected: 0 };
  for (const instance of instances) {
    const n = instance.count ?? 1;
    summary.total += n;
    summary[instanceState(instance, current)] += n;
  }
  return summary;
}

export const emptySummary = (): FleetSummary => ({ total: 0, on_latest: 0, behind: 0, rejected: 0 });
