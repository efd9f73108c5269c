/** The pure parts of the hub's /metrics (examples/hub/metrics/): the bounded instance series and the scrape's cached read. */
import { describe, expect, it } from 'vitest';
import { CachedRead } from '../../examples/hub/metrics/cached-read.js';
import { instanceSeries, OTHER_SERVICES } from '../../examples/hub/metrics/instance-series.js';

describe('instanceSeries', () => {
  const group = (service_name: string, revision: number | null, count: number, last_error: string | null = null) => ({ service_name, revision, last_error, count });

  it('counts each service on_latest / behind / rejected against its current revision, every state present', () => {
    const series = instanceSeries(
      [group('a', 3, 2), group('a', 2, 1), group('a', 3, 4, 'CONFIG_INVALID'), group('b', 1, 1), group('gone', 5, 2)],
      new Map([
        ['a', 3],
        ['b', 2],
      ]),
      10,
    );
    expect(series).toEqual([
      { service: 'a', state: 'on_latest', count: 2 },
      { service: 'a', state: 'behind', count: 1 },
      { service: 'a', state: 'rejected', count: 4 },
      // A service without a config: everyone behind (docs/fleet.md §5).
      { service: 'gone', state: 'on_latest', count: 0 },
      { service: 'gone', state: 'behind', count: 2 },
      { service: 'gone', state: 'rejected', count: 0 },
      { service: 'b', state: 'on_latest', count: 0 },
      { service: 'b', state: 'behind', count: 1 },
      { service: 'b', state: 'rejected', count: 0 },
    ]);
  });

  it('names at most maxServices services, most instances first (ties by name), and sums the rest as _other', () => {
    const groups = [group('z', 1, 1), group('y', 1, 1), group('x', 1, 5), group('w', 1, 3)];
    const series = instanceSeries(groups, new Map([['x', 1]]), 2);
    expect([...new Set(series.map((s) => s.service))]).toEqual(['x', 'w', OTHER_SERVICES]);
    expect(series.filter((s) => s.service === OTHER_SERVICES)).toEqual([
      { service: OTHER_SERVICES, state: 'on_latest', count: 0 },
      { service: OTHER_SERVICES, state: 'behind', count: 2 },
      { service: OTHER_SERVICES, state: 'rejected', count: 0 },
    ]);
    expect(instanceSeries(groups, new Map(), 4).some((s) => s.service === OTHER_SERVICES)).toBe(false);
    expect(instanceSeries([], new Map(), 2)).toEqual([]);
  });
});

describe('CachedRead', () => {
  it('joins a read in flight and serves it while fresh, then reads again', async () => {
    let now = 0;
    let reads = 0;
    const cached = new CachedRead(async () => ++reads, { cacheMs: 1000, timeoutMs: 1000, now: () => now });
    const [a, b] = await Promise.all([cached.get(), cached.get()]);
    expect([a, b]).toEqual([{ ok: true, value: 1 }, { ok: true, value: 1 }]);
    now = 999;
    expect(await cached.get()).toEqual({ ok: true, value: 1 });
    now = 1000;
    expect(await cached.get()).toEqual({ ok: true, value: 2 });
  });

  it('a failure or a timeout is a result (never a rejection), cached like a success', async () => {
    let now = 0;
    let fail = true;
    const cached = new CachedRead(async () => {
      if (fail) throw new Error('db down');
      return 'ok';
    }, { cacheMs: 10, timeoutMs: 1000, now: () => now });
    expect(await cached.get()).toMatchObject({ ok: false, error: new Error('db down') });
    fail = false;
    expect((await cached.get()).ok).toBe(false);
    now = 10;
    expect(await cached.get()).toEqual({ ok: true, value: 'ok' });

    const hung = new CachedRead(() => new Promise<never>(() => {}), { cacheMs: 0, timeoutMs: 20 });
    const r = await hung.get();
    expect(r.ok).toBe(false);
    expect(String((r as { error: unknown }).error)).toMatch(/timed out after 20 ms/);
  });
});
