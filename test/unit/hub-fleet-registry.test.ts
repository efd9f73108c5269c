/**
 * The instance registry's write-behind (examples/hub/fleet/instance-registry.ts) over a fake table and
 * fake timers: at most one flush per interval, at once when the last one is that old, retried after a
 * database error, flushed by close().
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InstanceRegistry } from '../../examples/hub/fleet/instance-registry.js';
import type { InstanceFields } from '../../examples/hub/fleet/report.js';
import type { SqlExecutor } from '../../examples/hub/store/sql-driver.js';

const fields = (id: string, over: Partial<InstanceFields> = {}): InstanceFields => ({
  service_name: 'svc',
  instance_id: id,
  host: 'h',
  pid: 1,
  client_version: '0.1.0',
  revision: 1,
  source: 'hub',
  stale: false,
  last_error: null,
  schema_hash: null,
  expiry_ms: 3000,
  ...over,
});

function fakeDb() {
  const upserts: { at: number; rows: { instance_id: string; last_error: string | null; last_seen: number }[] }[] = [];
  let prunes = 0;
  let failing = false;
  const db: SqlExecutor = {
    async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
      if (failing) throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
      if (text.includes('INSERT INTO config_instances')) upserts.push({ at: Date.now(), rows: JSON.parse(params[0] as string) });
      if (text.includes('DELETE FROM config_instances')) prunes++;
      return [{ n: 0 } as T];
    },
    async exec() {},
  };
  return { db, upserts, prunes: () => prunes, fail: (on: boolean) => (failing = on) };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('InstanceRegistry write-behind', () => {
  it('flushes at once when the last flush is ≥ 1 s ago, else at most once per second, batched', async () => {
    const t = fakeDb();
    const reg = new InstanceRegistry({ db: t.db });
    reg.record(fields('a'));
    await vi.advanceTimersByTimeAsync(0);
    expect(t.upserts.map((u) => [u.at - 1_000_000, u.rows.length])).toEqual([[0, 1]]);
    await vi.advanceTimersByTimeAsync(100);
    reg.record(fields('b'));
    reg.record(fields('c'));
    reg.record(fields('b', { last_error: 'CONFIG_INVALID' }));
    await vi.advanceTimersByTimeAsync(800);
    expect(t.upserts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(t.upserts).toHaveLength(2);
    // One row per instance, the newest sighting: a rejection reaches the table within the interval.
    expect(t.upserts[1]!.rows.map((r) => [r.instance_id, r.last_error])).toEqual([
      ['b', 'CONFIG_INVALID'],
      ['c', null],
    ]);
    expect(t.upserts[1]!.at - t.upserts[0]!.at).toBe(1000);
    // Quiet for longer than the interval: the next record flushes at once again.
    await vi.advanceTimersByTimeAsync(5000);
    reg.record(fields('d'));
    await vi.advanceTimersByTimeAsync(0);
    expect(t.upserts).toHaveLength(3);
    await reg.close();
  });

  it('a database error is logged, never thrown; the records stay and are retried with a backoff', async () => {
    const t = fakeDb();
    const errors: string[] = [];
    const reg = new InstanceRegistry({ db: t.db, onError: (message) => errors.push(message) });
    t.fail(true);
    reg.record(fields('a', { expiry_ms: 60_000 }));
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toHaveLength(1);
    expect(reg.unflushed().map((r) => r.instance_id)).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(1999);
    expect(errors).toHaveLength(1); // backing off: 2 s after one failure
    await vi.advanceTimersByTimeAsync(1);
    expect(errors).toHaveLength(2);
    t.fail(false);
    await vi.advanceTimersByTimeAsync(4000);
    expect(t.upserts.map((u) => u.rows.map((r) => r.instance_id))).toEqual([['a']]);
    expect(reg.unflushed()).toEqual([]);
    await reg.close();
  });

  it('records that expired while the database was down are dropped, not written', async () => {
    const t = fakeDb();
    const reg = new InstanceRegistry({ db: t.db, onError: () => {} });
    t.fail(true);
    reg.record(fields('a', { expiry_ms: 3000 }));
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(4000);
    t.fail(false);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(t.upserts).toEqual([]);
    expect(reg.unflushed()).toEqual([]);
    await reg.close();
  });

  it('close() flushes what is waiting and stops: later records are ignored, no timer is left', async () => {
    const t = fakeDb();
    const reg = new InstanceRegistry({ db: t.db });
    reg.record(fields('a'));
    await vi.advanceTimersByTimeAsync(0);
    reg.record(fields('b'));
    await reg.close();
    expect(t.upserts.map((u) => u.rows.map((r) => r.instance_id))).toEqual([['a'], ['b']]);
    reg.record(fields('c'));
    expect(vi.getTimerCount()).toBe(0);
    await reg.close();
    expect(t.upserts).toHaveLength(2);
  });

  it('unflushed() holds only live records; the pending set is bounded; expired rows are deleted now and then', async () => {
    const t = fakeDb();
    const reg = new InstanceRegistry({ db: t.db, maxPending: 2, pruneIntervalMs: 60_000 });
    reg.record(fields('a', { expiry_ms: 3000 }));
    reg.record(fields('b', { expiry_ms: 10_000 }));
    reg.record(fields('c'));
    expect(reg.dropped).toBe(1);
    expect(reg.unflushed(Date.now() + 5000).map((r) => r.instance_id)).toEqual(['b']);
    expect(reg.unflushed(Date.now(), 'other')).toEqual([]);
    await vi.advanceTimersByTimeAsync(0);
    expect(t.prunes()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    reg.record(fields('d'));
    await vi.advanceTimersByTimeAsync(0);
    expect(t.prunes()).toBe(1);
    await reg.close();
  });
});
