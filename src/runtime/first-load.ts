/**
 * The first load of a service: the hub within the startup budget; else the last-known-good snapshot — at
 * once when every hub has failed one round — else defaults + env. `strictStartup` turns the fallback into
 * `CONFIG_UNAVAILABLE`. The fetch goes on behind a fallback; its answer, if one comes, takes over through
 * the same transition.
 */
import { ConfigError, errorMessage as describe, isConfigError } from '../errors.js';
import { raceTimeout } from '../timeout.js';

export interface FirstLoadHost {
  readonly service: string;
  readonly strictStartup: boolean;
  readonly startupTimeoutMs: number;
  readonly hasSnapshots: boolean;
  /** Starts (or joins) the first fetch; `onRoundFailed` fires each time every hub has failed one round. */
  fetch(onRoundFailed: () => void): Promise<unknown>;
  /** Commits the snapshot unless a value is committed; true when it did. Never longer than `budgetMs`. */
  useSnapshot(budgetMs: number): Promise<boolean>;
  /** Commits defaults + env unless a value is committed; throws `CONFIG_UNAVAILABLE` when they fail the schema. */
  useDefaults(cause: unknown): void;
  /** The committed value (after one of the above succeeded). */
  value(): unknown;
}

/** A snapshot read that starts after the budget ran out still gets this long (a local file, normally µs). */
const LATE_SNAPSHOT_BUDGET_MS = 250;

export async function firstLoad(host: FirstLoadHost): Promise<unknown> {
  const deadline = Date.now() + host.startupTimeoutMs;
  const remaining = (): number => Math.max(LATE_SNAPSHOT_BUDGET_MS, deadline - Date.now());
  let roundFailed: () => void = () => undefined;
  const early =
    host.hasSnapshots && !host.strictStartup
      ? new Promise<'snapshot'>((resolve) => {
          roundFailed = () => {
            host.useSnapshot(remaining()).then((used) => used && resolve('snapshot'), () => undefined);
          };
        })
      : undefined;
  const attempt = host.fetch(() => roundFailed());
  let cause: unknown;
  try {
    const outcome = await raceTimeout(Promise.race([attempt.then(() => 'ok' as const), ...(early ? [early] : [])]), host.startupTimeoutMs);
    if (outcome !== 'timeout') return host.value();
    cause = new ConfigError('HUB_UNREACHABLE', `no answer from the hub within ${host.startupTimeoutMs} ms`, { service: host.service });
  } catch (error) {
    cause = error;
  }
  if (isConfigError(cause) && cause.code === 'CLIENT_CLOSED') throw cause;
  if (host.strictStartup) {
    // No silent downgrade: the caller asked for the hub's answer or an error. Recovery keeps running.
    throw new ConfigError('CONFIG_UNAVAILABLE', `strict startup: no config of ${host.service} from the hub (${describe(cause)})`, {
      service: host.service,
      cause,
    });
  }
  if (host.hasSnapshots) await host.useSnapshot(remaining());
  host.useDefaults(cause);
  return host.value();
}
