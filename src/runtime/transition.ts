/**
 * What an outcome does to a service (pure apart from the schema check): the plan that the runtime's one
 * transition applies in its fixed order. The hub is authoritative — the answer to a request made after the
 * last confirmation wins, even with a lower revision (a restored or fresh hub, a lagging replica) — and only
 * an answer that raced a newer confirmed one loses. An unsigned notice never outranks the hub.
 */
import { ConfigError, errorMessage as describe, isConfigError } from '../errors.js';
import type { ConfigDocument } from '../hub/wire.js';
import type { PlainObject } from '../layers/paths.js';
import type { Resolved } from '../layers/resolve.js';
import type { Snapshot } from '../snapshot/file-store.js';
import { type Confirmed, type HubLayer, isOlder } from './decide.js';
import type { Committed } from './service-runtime.js';
import type { ChangeSource, ConfigSource } from './types.js';

/** Counters a fetch remembers at its start: confirmations by the hub, and commits of any kind. */
export interface Seen {
  confirmations: number;
  commits: number;
}

/** `hub`: an HTTP answer; `signed`: a notice with a valid hub signature; `unsigned`: an applied notice payload. */
export type Trust = 'hub' | 'signed' | 'unsigned';

export type Outcome =
  | { kind: 'document'; document: ConfigDocument; etag: string | undefined; seen: Seen; source: ChangeSource; trust: Trust }
  | { kind: 'not-modified'; seen: Seen }
  | { kind: 'not-found'; error: ConfigError; seen: Seen; source: ChangeSource }
  | { kind: 'failure'; error: ConfigError }
  | { kind: 'snapshot'; snapshot: Snapshot }
  | { kind: 'defaults'; cause: unknown };

export interface TransitionState {
  service: string;
  committed: Committed | undefined;
  source: ConfigSource | undefined;
  failing: boolean;
  lastError: ConfigError | undefined;
  confirmed: Confirmed;
  seen: Seen;
  resolve: (hub: PlainObject | undefined) => Resolved;
}

/** An error for `onError`; with a `key`, reported once while the state it describes lasts. */
export interface Reported {
  error: ConfigError;
  key?: string;
}

export interface Plan {
  commit?: { resolved: Resolved; hub: HubLayer | undefined; source: ChangeSource; droppedCriticalPaths: string[] };
  servedFrom?: ConfigSource;
  confirm?: Confirmed;
  failing: boolean;
  lastError: ConfigError | undefined;
  recovery: 'reset' | 'schedule' | 'keep';
  fresh: boolean;
  snapshot: 'write' | 'remove' | 'keep';
  report: Reported[];
  /** Ask the hub once more (an answer arrived that predates an unconfirmed notice value). */
  hint: boolean;
  throw?: ConfigError;
}

export function planTransition(outcome: Outcome, state: TransitionState): Plan {
  switch (outcome.kind) {
    case 'failure':
      return failed(state, outcome.error, outcome.error.code);
    case 'document':
      return planDocument(outcome, state);
    case 'not-modified': {
      const hub = state.committed?.hub;
      if (!hub || state.source === 'notice') {
        // A 304 without a document to reuse: the next fetch must be unconditional.
        return failed(state, new ConfigError('HUB_RESPONSE_INVALID', 'hub answered 304 to an unconditional request', { service: state.service }), 'HUB_RESPONSE_INVALID');
      }
      if (raced(outcome.seen, state)) return answered(state);
      return { ...answered(state), servedFrom: 'hub', confirm: { revision: hub.revision, updatedAt: hub.updatedAt } };
    }
    case 'not-found': {
      if (raced(outcome.seen, state)) return answered(state);
      let resolved: Resolved;
      try {
        resolved = state.resolve(undefined);
      } catch (invalid) {
        const error = new ConfigError('CONFIG_UNAVAILABLE', `hub has no config for ${state.service} and defaults + env do not validate: ${describe(invalid)}`, { service: state.service, cause: invalid });
        return failed(state, error, 'CONFIG_UNAVAILABLE');
      }
      return {
        commit: { resolved, hub: undefined, source: outcome.source, droppedCriticalPaths: [] },
        servedFrom: 'defaults',
        confirm: { revision: undefined, updatedAt: undefined },
        failing: false,
        lastError: outcome.error,
        recovery: 'reset',
        fresh: true,
        // A deleted config must not come back from disk at the next restart during an outage.
        snapshot: 'remove',
        report: [keyed(outcome.error, 'CONFIG_NOT_FOUND')],
        hint: false,
      };
    }
    case 'snapshot': {
      const snap = outcome.snapshot;
      const resolved = state.resolve(snap.config);
      const hub: HubLayer = { config: resolved.hub ?? {}, version: snap.version, updatedAt: snap.updatedAt, revision: snap.revision, etag: snap.etag };
      const droppedCriticalPaths = snap.droppedCriticalPaths ?? resolved.droppedCriticalPaths;
      return { ...unchanged(state), commit: { resolved, hub, source: 'refresh', droppedCriticalPaths }, servedFrom: 'snapshot' };
    }
    case 'defaults': {
      let resolved: Resolved;
      try {
        resolved = state.resolve(undefined);
      } catch (error) {
        const unavailable = new ConfigError(
          'CONFIG_UNAVAILABLE',
          `no layer of ${state.service} yields a valid config (hub: ${describe(outcome.cause)}; defaults + env: ${describe(error)})`,
          { service: state.service, cause: outcome.cause },
        );
        return { ...unchanged(state), throw: unavailable };
      }
      const lastError = state.lastError ?? (isConfigError(outcome.cause) ? outcome.cause : undefined);
      return { ...unchanged(state), lastError, commit: { resolved, hub: undefined, source: 'refresh', droppedCriticalPaths: [] }, servedFrom: 'defaults' };
    }
  }
}

function planDocument(outcome: Extract<Outcome, { kind: 'document' }>, state: TransitionState): Plan {
  const doc = outcome.document;
  const fromHub = outcome.trust === 'hub';
  if (fromHub && raced(outcome.seen, state, doc)) return answered(state);
  const held = state.committed?.hub;
  if (fromHub && outcome.seen.commits !== state.seen.commits && state.source === 'notice' && held && isOlder(doc, { revision: held.revision, updatedAt: held.updatedAt })) {
    // This answer was asked for before an unconfirmed notice value was applied: keep that value until an
    // answer to a request made after it says what the hub really holds.
    return { ...answered(state), hint: true };
  }
  let resolved: Resolved;
  try {
    resolved = state.resolve(doc.config);
  } catch (error) {
    const invalid = isConfigError(error) ? error : new ConfigError('CONFIG_INVALID', describe(error), { service: state.service, cause: error });
    const key = `${invalid.code}:${doc.revision ?? doc.updated_at}`;
    // A bad notice payload says nothing about the hub: it is reported, and nothing else changes.
    if (!fromHub) return { ...unchanged(state), report: [keyed(invalid, key)], throw: invalid };
    return failed(state, invalid, key);
  }
  const hub: HubLayer = { config: resolved.hub ?? {}, version: doc.version, updatedAt: doc.updated_at, revision: doc.revision, etag: outcome.etag };
  const recovering = state.failing || state.source === 'snapshot' || (state.source === 'defaults' && state.lastError?.code !== 'CONFIG_NOT_FOUND');
  const commit = { resolved, hub, source: recovering ? 'recovery' : outcome.source, droppedCriticalPaths: resolved.droppedCriticalPaths } as const;
  if (outcome.trust === 'unsigned') return { ...unchanged(state), commit, servedFrom: 'notice', fresh: true };
  const report: Reported[] = [];
  const before = state.seen.confirmations > 0 ? state.confirmed : state.source === 'snapshot' && held ? { revision: held.revision, updatedAt: held.updatedAt } : undefined;
  if (before && isOlder(doc, before)) {
    report.push({
      error: new ConfigError(
        'HUB_REVISION_REGRESSED',
        `the hub's config of ${state.service} went back from revision ${before.revision ?? before.updatedAt} to ${doc.revision ?? doc.updated_at} (restored, fresh or lagging hub); serving the hub's answer`,
        { service: state.service },
      ),
    });
  }
  const prevHub = state.committed?.hub;
  const layerChanged = !prevHub || state.source !== 'hub' || prevHub.revision !== hub.revision || prevHub.etag !== hub.etag || prevHub.updatedAt !== hub.updatedAt;
  return {
    commit,
    servedFrom: 'hub',
    confirm: { revision: doc.revision, updatedAt: doc.updated_at },
    failing: false,
    lastError: undefined,
    recovery: 'reset',
    fresh: true,
    snapshot: layerChanged ? 'write' : 'keep',
    report,
    hint: false,
  };
}

/** The hub confirmed something after this request started (and, for a document, something newer than it). */
function raced(seen: Seen, state: TransitionState, doc?: ConfigDocument): boolean {
  return seen.confirmations !== state.seen.confirmations && (doc === undefined || isOlder(doc, state.confirmed));
}

/** Nothing changes but the service's health. */
function unchanged(state: TransitionState): Plan {
  return { failing: state.failing, lastError: state.lastError, recovery: 'keep', fresh: false, snapshot: 'keep', report: [], hint: false };
}

/** The hub answered (its answer changed nothing): healthy again, fresh. */
function answered(state: TransitionState): Plan {
  const lastError = state.lastError?.code === 'CONFIG_NOT_FOUND' && state.source === 'defaults' ? state.lastError : undefined;
  return {
    failing: false,
    lastError,
    recovery: 'reset',
    fresh: true,
    snapshot: 'keep',
    report: [],
    hint: false,
    servedFrom: state.source === 'cache' ? 'hub' : state.source,
  };
}

function failed(state: TransitionState, error: ConfigError, key: string): Plan {
  return {
    servedFrom: state.source === 'hub' ? 'cache' : state.source,
    failing: true,
    lastError: error,
    recovery: 'schedule',
    fresh: false,
    snapshot: 'keep',
    report: [keyed(error, key)],
    hint: false,
    throw: error,
  };
}

function keyed(error: ConfigError, key: string): Reported {
  return { error, key };
}
