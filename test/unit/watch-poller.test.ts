import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { jitteredDelay, Poller } from '../../src/watch/poller.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('jitteredDelay', () => {
  it('spans intervalMs × (1 ± jitter) and never goes below zero', () => {
    expect(jitteredDelay(1000, 0.2, () => 0)).toBe(800);
    expect(jitteredDelay(1000, 0.2, () => 0.5)).toBe(1000);
    expect(jitteredDelay(1000, 0.2, () => 0.999_999)).toBe(1200);
    expect(jitteredDelay(1000, 0, () => 0)).toBe(1000);
    expect(jitteredDelay(1000, 1, () => 0)).toBe(0);
    const draws = Array.from({ length: 10_000 }, () => jitteredDelay(60_000, 0.2, Math.random));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(48_000);
    expect(Math.max(...draws)).toBeLessThanOrEqual(72_000);
  });
});

describe('Poller', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('rejects bad options in the constructor', () => {
    const tick = async (): Promise<void> => {};
    expect(() => new Poller({ intervalMs: 0, tick })).toThrow(/intervalMs/);
    expect(() => new Poller({ intervalMs: Number.NaN, tick })).toThrow(/intervalMs/);
    expect(() => new Poller({ intervalMs: 10, jitter: 1.5, tick })).toThrow(/jitter/);
    expect(() => new Poller({ intervalMs: 10, jitter: -0.1, tick })).toThrow(/jitter/);
  });

  it('schedules the next tick only after the current one settles', async () => {
    const pending: Array<ReturnType<typeof deferred>> = [];
    const tick = vi.fn(() => {
      const d = deferred();
      pending.push(d);
      return d.promise;
    });
    const poller = new Poller({ intervalMs: 1000, jitter: 0, tick });
    poller.start();
    await vi.advanceTimersByTimeAsync(999);
    expect(tick).toHaveBeenCalledTimes(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(tick).toHaveBeenCalledTimes(1);
    // A slow tick: no overlap however long it takes.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(tick).toHaveBeenCalledTimes(1);
    pending[0]?.resolve();
    await vi.advanceTimersByTimeAsync(999);
    expect(tick).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(tick).toHaveBeenCalledTimes(2);
    poller.stop();
  });

  it('draws each delay within the jitter bounds', async () => {
    const tick = vi.fn(async () => {});
    let r = 0;
    const poller = new Poller({ intervalMs: 1000, jitter: 0.2, tick, random: () => r });
    r = 0; // 800 ms
    poller.start();
    await vi.advanceTimersByTimeAsync(799);
    expect(tick).toHaveBeenCalledTimes(0);
    r = 0.999_999; // the next delay: 1200 ms
    await vi.advanceTimersByTimeAsync(1);
    expect(tick).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1199);
    expect(tick).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(tick).toHaveBeenCalledTimes(2);
    poller.stop();
  });

  it('reports a throwing or rejecting tick and keeps the schedule', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const tick = vi.fn((): Promise<void> => {
      n += 1;
      if (n === 1) throw new Error('sync boom');
      if (n === 2) return Promise.reject(new Error('async boom'));
      return Promise.resolve();
    });
    const poller = new Poller({
      intervalMs: 100,
      jitter: 0,
      tick,
      onError: (e) => {
        errors.push(e);
        throw new Error('a broken error channel must not stop the poll');
      },
    });
    poller.start();
    await vi.advanceTimersByTimeAsync(300);
    expect(tick).toHaveBeenCalledTimes(3);
    expect(errors.map((e) => (e as Error).message)).toEqual(['sync boom', 'async boom']);
    await vi.advanceTimersByTimeAsync(100);
    expect(tick).toHaveBeenCalledTimes(4);
    poller.stop();
  });

  it('stop() cancels the pending timer, is idempotent, and a tick in flight schedules nothing', async () => {
    const tick = vi.fn(async () => {});
    const poller = new Poller({ intervalMs: 100, jitter: 0, tick });
    poller.start();
    poller.stop();
    poller.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(tick).not.toHaveBeenCalled();

    const d = deferred();
    const slow = vi.fn(() => d.promise);
    const p2 = new Poller({ intervalMs: 100, jitter: 0, tick: slow });
    p2.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(slow).toHaveBeenCalledTimes(1);
    p2.stop();
    p2.start(); // restart while the old tick is still in flight
    d.resolve();
    await vi.advanceTimersByTimeAsync(100);
    // Exactly one schedule survives: the restarted one, not a fork from the old tick.
    expect(slow).toHaveBeenCalledTimes(2);
    p2.stop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(slow).toHaveBeenCalledTimes(2);
  });

  it('start() twice does not double the schedule', async () => {
    const tick = vi.fn(async () => {});
    const poller = new Poller({ intervalMs: 100, jitter: 0, tick });
    poller.start();
    poller.start();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(350);
    expect(tick).toHaveBeenCalledTimes(3);
    poller.stop();
  });
});

describe('Poller timers', () => {
  it('unref()s its timers so it never holds the process', () => {
    vi.useRealTimers();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const poller = new Poller({ intervalMs: 60_000, tick: async () => {} });
    poller.start();
    const timer = spy.mock.results.at(-1)?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    poller.stop();
    spy.mockRestore();
  });
});
