/**
 * When a trigger fetches (pure). Every reason to talk to the hub — a `get` past the TTL, the poll, a notice,
 * a reconnect resync, the recovery timer, an explicit `refresh()` — is decided here and nowhere else.
 */
export type Trigger = 'get' | 'poll' | 'notice' | 'resync' | 'recovery' | 'refresh';

export interface TriggerState {
  closed: boolean;
  /** A value is committed (hub, notice, snapshot or defaults). */
  hasValue: boolean;
  /** The committed value is within its TTL. */
  fresh: boolean;
  /** The last fetch failed; the recovery timer owns the retries. */
  failing: boolean;
  /** A fetch is in flight. */
  fetching: boolean;
}

/**
 * `none`: nothing to do. `join`: share the fetch in flight, else start one. `follow-up`: one more fetch
 * after the one in flight (the caller may know of a change it started too early to see). `expedite`: bring
 * the recovery retry forward (the hub may be back). `first-load`: the startup road.
 */
export type TriggerAction = 'none' | 'join' | 'follow-up' | 'expedite' | 'first-load';

export function decideTrigger(trigger: Trigger, state: TriggerState): TriggerAction {
  if (state.closed) return 'none';
  switch (trigger) {
    case 'get':
      if (!state.hasValue) return 'first-load';
      // Stale-while-revalidate; while failing, a tight `get` loop never turns into a request loop.
      return state.fresh || state.failing ? 'none' : 'join';
    case 'poll':
      return state.hasValue && !state.failing ? 'join' : 'none';
    case 'notice':
    case 'resync':
      // A fetch in flight may have read the row before the change this hint announces: fetch once more
      // after it, also while failing (the recovery fetch may predate the change).
      if (state.fetching) return 'follow-up';
      if (!state.hasValue) return 'none';
      // A failing hub gets no request per message; the hint only brings a distant retry forward.
      return state.failing ? 'expedite' : 'follow-up';
    case 'recovery':
      return 'join';
    case 'refresh':
      return state.hasValue ? 'follow-up' : 'first-load';
  }
}
