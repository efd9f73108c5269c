/**
 * The runtime's pure parts (src/runtime/*) at their edges, found by mutation testing
 * (`npm run test:mutation`): the trigger policy table, which answer or notice is older, the notice fetch
 * budget, single flight with one follow-up, the recovery backoff, the first-load fallback road, and the
 * plan every outcome turns into.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ConfigError } from '../../src/errors.js';
import type { ConfigDocument, Notice } from '../../src/hub/wire.js';
import { resolveConfig } from '../../src/layers/resolve.js';
import { type HubLayer, isOlder, isSameRevisionOtherContent, isStaleNotice, noticeDocument } from '../../src/runtime/decide.js';
import { FetchBudget } from '../../src/runtime/fetch-budget.js';
import { type FirstLoadHost, firstLoad } from '../../src/runtime/first-load.js';
import { errorMessage as describeError } from '../../src/errors.js';
import { RecoveryTimer } from '../../src/runtime/recovery-timer.js';
import type { Committed } from '../../src/runtime/service-runtime.js';
import { SingleFlight } from '../../src/runtime/single-flight.js';
import { type Outcome, planTransition, type TransitionState } from '../../src/runtime/transition.js';
import { decideTrigger, type TriggerState } from '../../src/runtime/trigger-policy.js';

describe('decideTrigger', () => {
  const state = (over: Partial<TriggerState> = {}): TriggerState => ({
    closed: false,
    hasValue: true,
    fresh: false,
    failing: false,
    fetching: false,
    ...over,
  });

  it('a closed client never fetches', () => {
    for (const trigger of ['get', 'poll', 'notice', 'resync', 'recovery', 'refresh'] as const) {
      expect(decideTrigger(trigger, state({ closed: true, hasValue: false, fetching: true }))).toBe('none');
    }
  });

  it('get: first load without a value; stale-while-revalidate; never while fresh or failing', () => {
    expect(decideTrigger('get', state({ hasValue: false }))).toBe('first-load');
    expect(decideTrigger('get', state({ fresh: true }))).toBe('none');
    expect(decideTrigger('get', state({ failing: true }))).toBe('none');
    expect(decideTrigger('get', state())).toBe('join');
  });

  it('poll: only with a value and a healthy hub', () => {
    expect(decideTrigger('poll', state())).toBe('join');
    expect(decideTrigger('poll', state({ hasValue: false }))).toBe('none');
    expect(decideTrigger('poll', state({ failing: true }))).toBe('none');
  });

  it('notice / resync: a follow-up behind a fetch in flight, else a fetch, an expedited retry while failing, nothing without a value', () => {
    for (const trigger of ['notice', 'resync'] as const) {
      expect(decideTrigger(trigger, state({ fetching: true, failing: true, hasValue: false }))).toBe('follow-up');
      expect(decideTrigger(trigger, state({ hasValue: false }))).toBe('none');
      expect(decideTrigger(trigger, state({ failing: true }))).toBe('expedite');
      expect(decideTrigger(trigger, state())).toBe('follow-up');
    }
  });

  it('recovery joins; refresh follows up, or is the first load', () => {
    expect(decideTrigger('recovery', state({ failing: true, hasValue: false }))).toBe('join');
    expect(decideTrigger('refresh', state())).toBe('follow-up');
    expect(decideTrigger('refresh', state({ hasValue: false }))).toBe('first-load');
  });
});

const layer = (config: Record<string, unknown>, over: Partial<HubLayer> = {}): HubLayer => ({
  config,
  version: '1',
  updatedAt: 100,
  revision: 5,
  etag: undefined,
  ...over,
});

describe('decide', () => {
  it('isOlder compares revisions when both have one, else updated_at', () => {
    expect(isOlder({ revision: 4, updated_at: 999 }, { revision: 5, updatedAt: 1 })).toBe(true);
    expect(isOlder({ revision: 5, updated_at: 1 }, { revision: 5, updatedAt: 999 })).toBe(false);
    expect(isOlder({ revision: 6, updated_at: 1 }, { revision: 5, updatedAt: 999 })).toBe(false);
    expect(isOlder({ updated_at: 1 }, { revision: 5, updatedAt: 2 })).toBe(true);
    expect(isOlder({ revision: 9, updated_at: 2 }, { revision: undefined, updatedAt: 2 })).toBe(false);
    expect(isOlder({ updated_at: 3 }, { revision: undefined, updatedAt: 2 })).toBe(false);
    expect(isOlder({ updated_at: 1 }, { revision: undefined, updatedAt: undefined })).toBe(false);
  });

  it('isStaleNotice: not newer than the confirmed revision, or older by updated_at, or the same change again', () => {
    const confirmed = { revision: 5, updatedAt: 100 };
    const current = layer({ a: 1 });
    expect(isStaleNotice({ service_name: 's', revision: 5 } as Notice, confirmed, current, [])).toBe(true);
    expect(isStaleNotice({ service_name: 's', revision: 4 } as Notice, confirmed, current, [])).toBe(true);
    expect(isStaleNotice({ service_name: 's', revision: 6 } as Notice, confirmed, current, [])).toBe(false);
    const byTime = { revision: undefined, updatedAt: 100 };
    expect(isStaleNotice({ service_name: 's' } as Notice, byTime, current, [])).toBe(false);
    expect(isStaleNotice({ service_name: 's', updated_at: 99 } as Notice, { revision: undefined, updatedAt: undefined }, current, [])).toBe(false);
    expect(isStaleNotice({ service_name: 's', updated_at: 99 } as Notice, byTime, current, [])).toBe(true);
    expect(isStaleNotice({ service_name: 's', updated_at: 101, config: { a: 1 } } as Notice, byTime, current, [])).toBe(false);
    // Same time: stale only when it carries the config already held.
    expect(isStaleNotice({ service_name: 's', updated_at: 100 } as Notice, byTime, current, [])).toBe(false);
    expect(isStaleNotice({ service_name: 's', updated_at: 100, config: { a: 1 } } as Notice, byTime, undefined, [])).toBe(false);
    expect(isStaleNotice({ service_name: 's', updated_at: 100, config: { a: 1 } } as Notice, byTime, current, [])).toBe(true);
    expect(isStaleNotice({ service_name: 's', updated_at: 100, config: { a: 2 } } as Notice, byTime, current, [])).toBe(false);
    // The held layer has its critical paths removed: the notice is compared the same way.
    expect(isStaleNotice({ service_name: 's', updated_at: 100, config: { a: 1, secret: 'x' } } as Notice, byTime, current, ['secret'])).toBe(true);
  });

  it('isSameRevisionOtherContent: the confirmed revision with another config', () => {
    const confirmed = { revision: 5, updatedAt: 100 };
    const current = layer({ a: 1 });
    const notice = (n: Partial<Notice>) => ({ service_name: 's', ...n }) as Notice;
    expect(isSameRevisionOtherContent(notice({ revision: 5, config: { a: 2 } }), confirmed, current, [])).toBe(true);
    expect(isSameRevisionOtherContent(notice({ revision: 5, config: { a: 1 } }), confirmed, current, [])).toBe(false);
    expect(isSameRevisionOtherContent(notice({ revision: 5, config: { a: 1, k: 1 } }), confirmed, current, ['k'])).toBe(false);
    expect(isSameRevisionOtherContent(notice({ revision: 4, config: { a: 2 } }), confirmed, current, [])).toBe(false);
    expect(isSameRevisionOtherContent(notice({ config: { a: 2 } }), { revision: undefined, updatedAt: 1 }, current, [])).toBe(false);
    expect(isSameRevisionOtherContent(notice({ revision: 5 }), confirmed, current, [])).toBe(false);
    expect(isSameRevisionOtherContent(notice({ revision: 5, config: { a: 2 } }), confirmed, undefined, [])).toBe(false);
  });

  it('noticeDocument: only a notice with config and updated_at is a document', () => {
    expect(noticeDocument('s', { service_name: 's', updated_at: 1 } as Notice)).toBeUndefined();
    expect(noticeDocument('s', { service_name: 's', config: {} } as Notice)).toBeUndefined();
    expect(noticeDocument('svc', { service_name: 'x', config: { a: 1 }, updated_at: 7 } as Notice)).toEqual({
      service_name: 'svc',
      config: { a: 1 },
      version: '',
      updated_at: 7,
      revision: undefined,
    });
    expect(noticeDocument('svc', { service_name: 'svc', config: {}, updated_at: 7, version: 'v2', revision: 3 } as Notice)).toMatchObject({ version: 'v2', revision: 3 });
  });
});

describe('FetchBudget', () => {
  it('a burst at once, then one token per refill interval, never more than the burst', () => {
    let now = 1_000;
    const budget = new FetchBudget(2, 1_000, () => now);
    expect(budget.waitMs()).toBe(0);
    expect(budget.take()).toBe(true);
    expect(budget.take()).toBe(true);
    expect(budget.take()).toBe(false);
    expect(budget.waitMs()).toBe(1_000);
    now += 1;
    expect(budget.waitMs()).toBe(999);
    now += 499;
    expect(budget.take()).toBe(false);
    expect(budget.waitMs()).toBe(500);
    now += 500;
    expect(budget.take()).toBe(true);
    expect(budget.take()).toBe(false);
    // A long quiet spell refills up to the burst only.
    now += 60_000;
    expect(budget.take()).toBe(true);
    expect(budget.take()).toBe(true);
    expect(budget.take()).toBe(false);
  });

  it('a refund gives one token back, never more than the burst', () => {
    const now = 0;
    const budget = new FetchBudget(2, 1_000, () => now);
    budget.refund();
    expect(budget.take()).toBe(true);
    expect(budget.take()).toBe(true);
    expect(budget.take()).toBe(false);
    budget.refund();
    expect(budget.waitMs()).toBe(0);
    expect(budget.take()).toBe(true);
    expect(budget.take()).toBe(false);
  });
});

describe('SingleFlight', () => {
  function deferred() {
    let resolve!: (v: string) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  }

  it('joins the fetch in flight; at most one follow-up is queued behind it, shared by every caller', async () => {
    const flight = new SingleFlight<string>();
    const first = deferred();
    let starts = 0;
    const start = () => {
      starts++;
      return starts === 1 ? first.promise : Promise.resolve(`run ${starts}`);
    };
    expect(flight.busy).toBe(false);
    const a = flight.run(start);
    expect(flight.busy).toBe(true);
    expect(flight.run(start)).toBe(a);
    const f1 = flight.run(start, true);
    const f2 = flight.run(start, true);
    expect(f2).toBe(f1);
    expect(starts).toBe(1);
    first.resolve('run 1');
    expect(await a).toBe('run 1');
    expect(await f1).toBe('run 2');
    expect(starts).toBe(2);
    expect(flight.busy).toBe(false);
    // After the follow-up, a new follow-up request is a new run.
    expect(await flight.run(start, true)).toBe('run 3');
  });

  it('the follow-up still runs when the fetch in flight fails', async () => {
    const flight = new SingleFlight<string>();
    const first = deferred();
    const a = flight.run(() => first.promise);
    const follow = flight.run(() => Promise.resolve('after'), true);
    first.reject(new Error('down'));
    await expect(a).rejects.toThrow('down');
    expect(await follow).toBe('after');
    expect(flight.busy).toBe(false);
  });

  it('a follow-up without a fetch in flight is just a fetch', async () => {
    const flight = new SingleFlight<string>();
    expect(await flight.run(() => Promise.resolve('x'), true)).toBe('x');
  });
});

describe('RecoveryTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const delays = { minDelayMs: 100, maxDelayMs: 1_000, unauthorizedDelayMs: 10_000 };

  it('backs off from minDelayMs (full jitter on top), capped; one retry armed at a time; reset starts over', () => {
    const fire = vi.fn();
    const timer = new RecoveryTimer(delays, fire, () => 0.5);
    expect(timer.armed).toBe(false);
    timer.schedule(false); // 100 + 0.5 · 100
    expect(timer.armed).toBe(true);
    vi.advanceTimersByTime(149);
    expect(fire).not.toHaveBeenCalled();
    timer.schedule(false); // already armed: ignored
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(1);
    expect(timer.armed).toBe(false);
    timer.schedule(false); // 100 + 0.5 · 200
    vi.advanceTimersByTime(199);
    expect(fire).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(2);
    for (let i = 0; i < 10; i++) {
      timer.schedule(false);
      vi.advanceTimersByTime(10_000);
    }
    timer.schedule(false); // capped: 100 + 0.5 · 1000
    vi.advanceTimersByTime(599);
    expect(fire).toHaveBeenCalledTimes(12);
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(13);
    timer.schedule(false);
    timer.reset();
    expect(timer.armed).toBe(false);
    vi.advanceTimersByTime(10_000);
    expect(fire).toHaveBeenCalledTimes(13);
    timer.schedule(false); // after reset: attempt 0 again
    vi.advanceTimersByTime(150);
    expect(fire).toHaveBeenCalledTimes(14);
  });

  it('unauthorized: the hard delay, jittered ±20 %, and never expedited', () => {
    const fire = vi.fn();
    const timer = new RecoveryTimer(delays, fire, () => 0);
    timer.schedule(true); // 10 000 · 0.8
    timer.expedite();
    vi.advanceTimersByTime(7_999);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(1);
    const high = new RecoveryTimer(delays, fire, () => 1);
    high.schedule(true); // 10 000 · 1.2
    vi.advanceTimersByTime(11_999);
    expect(fire).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(2);
  });

  it('expedite brings a distant retry forward to minDelayMs, leaves a near one alone, and does nothing unarmed', () => {
    const fire = vi.fn();
    const timer = new RecoveryTimer({ minDelayMs: 100, maxDelayMs: 100_000, unauthorizedDelayMs: 1 }, fire, () => 0.99);
    timer.expedite();
    expect(timer.armed).toBe(false);
    for (let i = 0; i < 6; i++) {
      timer.schedule(false);
      vi.advanceTimersByTime(100_000);
    }
    expect(fire).toHaveBeenCalledTimes(6);
    timer.schedule(false); // 100 + 0.99 · 6 400 ≈ 6 436 ms away
    vi.advanceTimersByTime(1_000);
    timer.expedite();
    vi.advanceTimersByTime(99);
    expect(fire).toHaveBeenCalledTimes(6);
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(7);
    // A retry due within minDelayMs is not pushed back.
    timer.reset();
    timer.schedule(false); // 100 + 0.99 · 100 = 199
    vi.advanceTimersByTime(120);
    timer.expedite();
    vi.advanceTimersByTime(79);
    expect(fire).toHaveBeenCalledTimes(8);
  });

  it('cancel disarms without firing', () => {
    const fire = vi.fn();
    const timer = new RecoveryTimer(delays, fire, () => 0);
    timer.schedule(false);
    timer.cancel();
    expect(timer.armed).toBe(false);
    vi.advanceTimersByTime(10_000);
    expect(fire).not.toHaveBeenCalled();
  });
});

describe('firstLoad', () => {
  function host(over: Partial<FirstLoadHost> & { fetchImpl?: (onRoundFailed: () => void) => Promise<unknown> } = {}) {
    const calls: string[] = [];
    const budgets: number[] = [];
    let committed: unknown;
    const h: FirstLoadHost = {
      service: 'svc',
      strictStartup: false,
      startupTimeoutMs: 1_000,
      hasSnapshots: false,
      fetch: over.fetchImpl ?? (() => new Promise(() => undefined)),
      useSnapshot: async (budgetMs) => {
        calls.push('snapshot');
        budgets.push(budgetMs);
        return false;
      },
      useDefaults: (cause) => {
        calls.push(`defaults:${(cause as ConfigError).code ?? describeError(cause)}`);
        committed ??= 'defaults';
      },
      value: () => committed,
      ...over,
    };
    return { h, calls, budgets, commit: (v: unknown) => (committed = v) };
  }

  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the hub within the budget: its value, no fallback', async () => {
    const t = host();
    t.h.fetch = async () => {
      t.commit('hub');
    };
    await expect(firstLoad(t.h)).resolves.toBe('hub');
    expect(t.calls).toEqual([]);
  });

  it('no answer within the budget: defaults + env with HUB_UNREACHABLE naming the budget', async () => {
    const causes: unknown[] = [];
    const t = host({ useDefaults: (cause) => causes.push(cause) });
    const result = firstLoad(t.h);
    await vi.advanceTimersByTimeAsync(999);
    expect(causes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await result;
    expect(causes).toHaveLength(1);
    expect(causes[0]).toMatchObject({ code: 'HUB_UNREACHABLE', service: 'svc', message: 'no answer from the hub within 1000 ms' });
  });

  it('a failed fetch falls back at once, with the failure as cause; a snapshot is tried first', async () => {
    const t = host({ hasSnapshots: true, fetchImpl: async () => Promise.reject(new ConfigError('UNAUTHORIZED', 'no')) });
    await expect(firstLoad(t.h)).resolves.toBe('defaults');
    expect(t.calls).toEqual(['snapshot', 'defaults:UNAUTHORIZED']);
    expect(t.budgets[0]).toBeGreaterThan(900);
    expect(t.budgets[0]).toBeLessThanOrEqual(1_000);
  });

  it('CLIENT_CLOSED is passed through, never a fallback', async () => {
    const closed = new ConfigError('CLIENT_CLOSED', 'closed');
    const t = host({ hasSnapshots: true, fetchImpl: async () => Promise.reject(closed) });
    await expect(firstLoad(t.h)).rejects.toBe(closed);
    expect(t.calls).toEqual([]);
  });

  it('strict startup: CONFIG_UNAVAILABLE with the cause, no snapshot and no defaults, even after a failed round', async () => {
    const cause = new ConfigError('HUB_ERROR', 'hub answered 503');
    const t = host({
      strictStartup: true,
      hasSnapshots: true,
      fetchImpl: async (onRoundFailed) => {
        onRoundFailed();
        throw cause;
      },
    });
    const error = await firstLoad(t.h).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONFIG_UNAVAILABLE', service: 'svc', cause, message: 'strict startup: no config of svc from the hub (hub answered 503)' });
    expect(t.calls).toEqual([]);
    const plain = host({ strictStartup: true, fetchImpl: async () => Promise.reject('text') });
    await expect(firstLoad(plain.h)).rejects.toThrow('(text)');
  });

  it('a failed round with a snapshot serves the snapshot at once, before the budget ends', async () => {
    const t = host({ hasSnapshots: true, startupTimeoutMs: 60_000 });
    t.h.useSnapshot = async (budgetMs) => {
      t.budgets.push(budgetMs);
      t.commit('snapshot');
      return true;
    };
    t.h.fetch = (onRoundFailed) => {
      onRoundFailed();
      return new Promise(() => undefined);
    };
    await expect(firstLoad(t.h)).resolves.toBe('snapshot');
    expect(t.budgets).toEqual([60_000]);
  });

  it('no snapshot after a failed round: the wait goes on to the budget, then a late snapshot read gets at least 250 ms', async () => {
    const t = host({
      hasSnapshots: true,
      fetchImpl: (onRoundFailed) => {
        onRoundFailed();
        return new Promise(() => undefined);
      },
    });
    const result = firstLoad(t.h);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(result).resolves.toBe('defaults');
    expect(t.calls).toEqual(['snapshot', 'snapshot', 'defaults:HUB_UNREACHABLE']);
    expect(t.budgets[1]).toBe(250);
  });

  it('describe: an error by its message, anything else as text', () => {
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(describeError(42)).toBe('42');
  });
});

describe('planTransition', () => {
  const schema = z.object({ a: z.number(), secret: z.string().optional() });
  const resolve = (hub: Record<string, unknown> | undefined) =>
    resolveConfig({ service: 'svc', schema, defaults: { a: 0 }, hub, env: { values: {}, sources: new Map(), missing: new Map() }, criticalPaths: ['secret'] });

  function committed(config: Record<string, unknown>, hub: HubLayer | undefined): Committed {
    const resolved = resolve(config);
    return { value: resolved.value, plain: resolved.plain, promise: Promise.resolve(resolved.value), provenance: resolved.provenance, hub, droppedCriticalPaths: [] };
  }

  const hubLayer = layer({ a: 1 }, { etag: '"e5"' });
  const base = (over: Partial<TransitionState> = {}): TransitionState => ({
    service: 'svc',
    committed: committed({ a: 1 }, hubLayer),
    source: 'hub',
    failing: false,
    lastError: undefined,
    confirmed: { revision: 5, updatedAt: 100 },
    seen: { confirmations: 1, commits: 1 },
    resolve,
    ...over,
  });
  const seen = { confirmations: 1, commits: 1 };
  const doc = (over: Partial<ConfigDocument> = {}): ConfigDocument => ({ service_name: 'svc', config: { a: 2 }, version: '2', updated_at: 200, revision: 6, ...over });
  const fromHub = (d: ConfigDocument, over: Partial<Extract<Outcome, { kind: 'document' }>> = {}): Outcome => ({
    kind: 'document',
    document: d,
    etag: '"e6"',
    seen,
    source: 'poll',
    trust: 'hub',
    ...over,
  });

  it('failure: serve the cache, schedule recovery, report once per code, throw', () => {
    const error = new ConfigError('HUB_UNREACHABLE', 'down');
    const plan = planTransition({ kind: 'failure', error }, base());
    expect(plan).toEqual({
      servedFrom: 'cache',
      failing: true,
      lastError: error,
      recovery: 'schedule',
      fresh: false,
      snapshot: 'keep',
      report: [{ error, key: 'HUB_UNREACHABLE' }],
      hint: false,
      throw: error,
    });
    expect(planTransition({ kind: 'failure', error }, base({ source: 'snapshot' })).servedFrom).toBe('snapshot');
  });

  it('a new hub document: committed, confirmed, written to the snapshot, recovery reset', () => {
    const plan = planTransition(fromHub(doc()), base());
    expect(plan).toMatchObject({
      servedFrom: 'hub',
      confirm: { revision: 6, updatedAt: 200 },
      failing: false,
      lastError: undefined,
      recovery: 'reset',
      fresh: true,
      snapshot: 'write',
      report: [],
      hint: false,
    });
    expect(plan.throw).toBeUndefined();
    expect(plan.commit).toMatchObject({ source: 'poll', hub: { config: { a: 2 }, version: '2', updatedAt: 200, revision: 6, etag: '"e6"' }, droppedCriticalPaths: [] });
    expect(plan.commit?.resolved.value).toEqual({ a: 2 });
  });

  it('the same hub layer again is not rewritten to disk; any difference in revision, etag or time is', () => {
    const same = doc({ config: { a: 1 }, revision: 5, updated_at: 100 });
    expect(planTransition(fromHub(same, { etag: '"e5"' }), base()).snapshot).toBe('keep');
    expect(planTransition(fromHub(same, { etag: '"other"' }), base()).snapshot).toBe('write');
    expect(planTransition(fromHub({ ...same, updated_at: 101 }, { etag: '"e5"' }), base()).snapshot).toBe('write');
    expect(planTransition(fromHub({ ...same, revision: 7 }, { etag: '"e5"' }), base()).snapshot).toBe('write');
    expect(planTransition(fromHub(same, { etag: '"e5"' }), base({ source: 'cache' })).snapshot).toBe('write');
    expect(planTransition(fromHub(same, { etag: '"e5"' }), base({ committed: committed({ a: 1 }, undefined) })).snapshot).toBe('write');
  });

  it('critical paths the hub tried to set are dropped and listed', () => {
    const plan = planTransition(fromHub(doc({ config: { a: 2, secret: 'x' } })), base());
    expect(plan.commit?.droppedCriticalPaths).toEqual(['secret']);
    expect(plan.commit?.hub?.config).toEqual({ a: 2 });
  });

  it('a change after a failure, a snapshot or a fallback is a recovery; after a 404 it is not', () => {
    const recoveryOf = (over: Partial<TransitionState>) => planTransition(fromHub(doc()), base(over)).commit?.source;
    expect(recoveryOf({ failing: true })).toBe('recovery');
    expect(recoveryOf({ source: 'snapshot' })).toBe('recovery');
    expect(recoveryOf({ source: 'defaults', lastError: new ConfigError('HUB_UNREACHABLE', 'x') })).toBe('recovery');
    expect(recoveryOf({ source: 'defaults', lastError: undefined })).toBe('recovery');
    expect(recoveryOf({ source: 'defaults', lastError: new ConfigError('CONFIG_NOT_FOUND', 'x') })).toBe('poll');
    expect(recoveryOf({})).toBe('poll');
  });

  it('an answer older than the last confirmed one is served, with HUB_REVISION_REGRESSED', () => {
    const plan = planTransition(fromHub(doc({ revision: 3 })), base());
    expect(plan.commit).toBeDefined();
    expect(plan.report.map((r) => r.error.code)).toEqual(['HUB_REVISION_REGRESSED']);
    expect(plan.report[0]?.error.message).toBe(
      "the hub's config of svc went back from revision 5 to 3 (restored, fresh or lagging hub); serving the hub's answer",
    );
    expect(plan.report[0]?.key).toBeUndefined();
    // Compared by updated_at when there are no revisions.
    const timed = planTransition(fromHub(doc({ revision: undefined, updated_at: 50 })), base({ confirmed: { revision: undefined, updatedAt: 100 } }));
    expect(timed.report[0]?.error.message).toContain('from revision 100 to 50');
    // Before any confirmation, a snapshot's revision is the reference; without one there is none.
    const overSnapshot = base({ source: 'snapshot', seen: { confirmations: 0, commits: 1 }, confirmed: { revision: undefined, updatedAt: undefined } });
    expect(planTransition(fromHub(doc({ revision: 3 }), { seen: { confirmations: 0, commits: 1 } }), overSnapshot).report).toHaveLength(1);
    const overDefaults = { ...overSnapshot, source: 'defaults' as const };
    expect(planTransition(fromHub(doc({ revision: 3 }), { seen: { confirmations: 0, commits: 1 } }), overDefaults).report).toEqual([]);
    expect(planTransition(fromHub(doc({ revision: 7 })), base()).report).toEqual([]);
  });

  it('an answer that raced a newer confirmed one changes nothing but health', () => {
    const state = base({ seen: { confirmations: 2, commits: 2 }, failing: true, lastError: new ConfigError('HUB_UNREACHABLE', 'x') });
    const plan = planTransition(fromHub(doc({ revision: 4 })), state);
    expect(plan).toEqual({ failing: false, lastError: undefined, recovery: 'reset', fresh: true, snapshot: 'keep', report: [], hint: false, servedFrom: 'hub' });
    // A raced answer that is not older is applied.
    expect(planTransition(fromHub(doc({ revision: 9 })), state).commit).toBeDefined();
  });

  it('an answer asked for before an unconfirmed notice value, and older than it, keeps that value and asks again', () => {
    const notice = layer({ a: 3 }, { revision: 8, updatedAt: 300 });
    const state = base({ source: 'notice', committed: committed({ a: 3 }, notice), seen: { confirmations: 1, commits: 2 } });
    const plan = planTransition(fromHub(doc({ revision: 6 })), state);
    expect(plan.commit).toBeUndefined();
    expect(plan.hint).toBe(true);
    expect(plan.servedFrom).toBe('notice');
    // Asked for after the notice value (same commit count): the hub's answer wins.
    expect(planTransition(fromHub(doc({ revision: 6 }), { seen: { confirmations: 1, commits: 2 } }), state).commit).toBeDefined();
    // Newer than the notice value: applied.
    expect(planTransition(fromHub(doc({ revision: 9 })), state).commit).toBeDefined();
    // A signed notice is not held back by this.
    expect(planTransition(fromHub(doc({ revision: 6 }), { trust: 'signed' }), state).commit).toBeDefined();
  });

  it('an invalid hub document: a failure reported once per code and revision (updated_at without one)', () => {
    const plan = planTransition(fromHub(doc({ config: { a: 'x' } })), base());
    expect(plan).toMatchObject({ failing: true, recovery: 'schedule', servedFrom: 'cache', fresh: false });
    expect(plan.throw?.code).toBe('CONFIG_INVALID');
    expect(plan.report[0]?.key).toBe('CONFIG_INVALID:6');
    expect(planTransition(fromHub(doc({ config: { a: 'x' }, revision: undefined })), base()).report[0]?.key).toBe('CONFIG_INVALID:200');
  });

  it('a resolver that throws something else is still a CONFIG_INVALID failure', () => {
    const state = base({
      resolve: () => {
        throw new TypeError('broken transform');
      },
    });
    const plan = planTransition(fromHub(doc()), state);
    expect(plan.throw).toMatchObject({ code: 'CONFIG_INVALID', message: 'broken transform', service: 'svc' });
    expect(plan.throw?.cause).toBeInstanceOf(TypeError);
  });

  it('an invalid notice payload is reported and thrown; the hub is not marked failing', () => {
    const plan = planTransition(fromHub(doc({ config: { a: 'x' } }), { trust: 'unsigned', source: 'nats' }), base());
    expect(plan).toMatchObject({ failing: false, recovery: 'keep', fresh: false, snapshot: 'keep', hint: false });
    expect(plan.servedFrom).toBeUndefined();
    expect(plan.report).toHaveLength(1);
    expect(plan.throw?.code).toBe('CONFIG_INVALID');
  });

  it('an unsigned notice payload is served as notice, unconfirmed and not written to disk; a signed one as the hub', () => {
    const unsigned = planTransition(fromHub(doc(), { trust: 'unsigned', source: 'nats' }), base());
    expect(unsigned).toMatchObject({ servedFrom: 'notice', fresh: true, snapshot: 'keep', recovery: 'keep', failing: false });
    expect(unsigned.confirm).toBeUndefined();
    expect(unsigned.commit?.source).toBe('nats');
    const signed = planTransition(fromHub(doc(), { trust: 'signed', source: 'nats' }), base());
    expect(signed).toMatchObject({ servedFrom: 'hub', confirm: { revision: 6, updatedAt: 200 }, snapshot: 'write' });
  });

  it('304: confirms the held layer; without one (or over a notice value) it is invalid', () => {
    const plan = planTransition({ kind: 'not-modified', seen }, base({ source: 'cache', failing: true }));
    expect(plan).toMatchObject({ servedFrom: 'hub', confirm: { revision: 5, updatedAt: 100 }, failing: false, recovery: 'reset', fresh: true });
    const none = planTransition({ kind: 'not-modified', seen }, base({ committed: committed({ a: 1 }, undefined) }));
    expect(none.throw).toMatchObject({ code: 'HUB_RESPONSE_INVALID', message: 'hub answered 304 to an unconditional request' });
    expect(none.report[0]?.key).toBe('HUB_RESPONSE_INVALID');
    expect(planTransition({ kind: 'not-modified', seen }, base({ source: 'notice' })).throw?.code).toBe('HUB_RESPONSE_INVALID');
    const raced = planTransition({ kind: 'not-modified', seen }, base({ seen: { confirmations: 2, commits: 1 } }));
    expect(raced.confirm).toBeUndefined();
    expect(raced.fresh).toBe(true);
  });

  it('answered keeps a 404 as the last error only while serving defaults', () => {
    const notFound = new ConfigError('CONFIG_NOT_FOUND', 'gone');
    const state = base({ source: 'defaults', lastError: notFound, committed: committed({}, undefined), seen: { confirmations: 2, commits: 1 } });
    expect(planTransition({ kind: 'not-modified', seen }, state).throw?.code).toBe('HUB_RESPONSE_INVALID');
    const raced = planTransition(fromHub(doc({ revision: 1 })), { ...state, confirmed: { revision: 5, updatedAt: 100 } });
    expect(raced.lastError).toBe(notFound);
    expect(raced.servedFrom).toBe('defaults');
    const other = planTransition(fromHub(doc({ revision: 1 })), { ...state, lastError: new ConfigError('HUB_UNREACHABLE', 'x') });
    expect(other.lastError).toBeUndefined();
    const notDefaults = planTransition(fromHub(doc({ revision: 1 })), { ...state, source: 'snapshot' });
    expect(notDefaults.lastError).toBeUndefined();
  });

  it('404: defaults + env, the snapshot removed, reported once; unless defaults fail the schema', () => {
    const error = new ConfigError('CONFIG_NOT_FOUND', 'gone');
    const plan = planTransition({ kind: 'not-found', error, seen, source: 'poll' }, base());
    expect(plan).toMatchObject({
      servedFrom: 'defaults',
      confirm: { revision: undefined, updatedAt: undefined },
      failing: false,
      lastError: error,
      recovery: 'reset',
      fresh: true,
      snapshot: 'remove',
      report: [{ error, key: 'CONFIG_NOT_FOUND' }],
      hint: false,
    });
    expect(plan.commit).toMatchObject({ hub: undefined, source: 'poll', droppedCriticalPaths: [] });
    expect(plan.commit?.resolved.value).toEqual({ a: 0 });
    const bad = base({
      resolve: () => {
        throw new Error('a: required');
      },
    });
    const failed = planTransition({ kind: 'not-found', error, seen, source: 'poll' }, bad);
    expect(failed.throw).toMatchObject({ code: 'CONFIG_UNAVAILABLE', message: 'hub has no config for svc and defaults + env do not validate: a: required' });
    expect(failed.report[0]?.key).toBe('CONFIG_UNAVAILABLE');
    expect(failed.failing).toBe(true);
    const raced = planTransition({ kind: 'not-found', error, seen, source: 'poll' }, base({ seen: { confirmations: 3, commits: 1 } }));
    expect(raced.commit).toBeUndefined();
    expect(raced.snapshot).toBe('keep');
  });

  it('snapshot: committed as served from the snapshot, its dropped paths kept (or recomputed for old files); health unchanged', () => {
    const snapshot = { service: 'svc', config: { a: 4, secret: 's' }, version: '4', updatedAt: 40, revision: 4, etag: '"e4"', savedAt: 1 };
    const plan = planTransition({ kind: 'snapshot', snapshot }, base({ committed: undefined, source: undefined, failing: true, lastError: new ConfigError('HUB_UNREACHABLE', 'x') }));
    expect(plan).toMatchObject({ servedFrom: 'snapshot', failing: true, recovery: 'keep', fresh: false, snapshot: 'keep', report: [], hint: false });
    expect(plan.lastError?.code).toBe('HUB_UNREACHABLE');
    expect(plan.commit).toMatchObject({ source: 'refresh', hub: { config: { a: 4 }, version: '4', updatedAt: 40, revision: 4, etag: '"e4"' }, droppedCriticalPaths: ['secret'] });
    const kept = planTransition({ kind: 'snapshot', snapshot: { ...snapshot, droppedCriticalPaths: ['other'] } }, base());
    expect(kept.commit?.droppedCriticalPaths).toEqual(['other']);
  });

  it('defaults: committed with the cause as last error (a ConfigError only); or CONFIG_UNAVAILABLE naming both failures', () => {
    const cause = new ConfigError('HUB_UNREACHABLE', 'down');
    const plan = planTransition({ kind: 'defaults', cause }, base({ committed: undefined, source: undefined }));
    expect(plan).toMatchObject({ servedFrom: 'defaults', lastError: cause, recovery: 'keep', fresh: false, snapshot: 'keep' });
    expect(plan.commit).toMatchObject({ hub: undefined, source: 'refresh', droppedCriticalPaths: [] });
    expect(planTransition({ kind: 'defaults', cause: new Error('x') }, base()).lastError).toBeUndefined();
    const earlier = new ConfigError('UNAUTHORIZED', 'no');
    expect(planTransition({ kind: 'defaults', cause }, base({ lastError: earlier })).lastError).toBe(earlier);
    const bad = base({
      resolve: () => {
        throw new Error('a: required');
      },
    });
    const failed = planTransition({ kind: 'defaults', cause }, bad);
    expect(failed.commit).toBeUndefined();
    expect(failed.throw).toMatchObject({
      code: 'CONFIG_UNAVAILABLE',
      service: 'svc',
      cause,
      message: 'no layer of svc yields a valid config (hub: down; defaults + env: a: required)',
    });
  });
});
