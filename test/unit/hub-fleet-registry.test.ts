/**
 * The instance registry's write-behind (examples/hub/fleet/instance-registry.ts) over a fake table and
 * fake timers: at most one flush per interval, at once when the last one is that old, retried after a
 * database error, flushed by close().
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FLUSH_FAILURES_DEGRADED, InstanceRegistry } from '../../examples/hub/fleet/instance-registry.js';
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
    expect(reg.record(fields('c'))).toBe(false);
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

/**
 * config_instances in a Map, for the reads: the upsert (newest sighting wins), the live rows of a service,
 * and the grouped counts merged with the unflushed rows passed as JSON. `readDelay` makes every read see
 * the table as it was when the read began, and answer only after that many ms (a read racing a flush).
 */
function tableDb(readDelay = 0) {
  type Row = { service_name: string; instance_id: string; revision: number | null; last_error: string | null; last_seen: number; expires_at: number };
  const table = new Map<string, Row>();
  let failing = false;
  const later = <T>(value: T): Promise<T> => (readDelay === 0 ? Promise.resolve(value) : new Promise((r) => setTimeout(() => r(value), readDelay)));
  const db: SqlExecutor = {
    async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
      if (failing) throw Object.assign(new Error('relation "config_instances" does not exist'), { code: '42P01' });
      if (text.includes('INSERT INTO config_instances')) {
        for (const r of JSON.parse(params[0] as string) as Row[]) {
          const key = `${r.service_name}\u0000${r.instance_id}`;
          const known = table.get(key);
          if (known === undefined || known.last_seen <= r.last_seen) table.set(key, r);
        }
        return [];
      }
      if (text.includes('DELETE FROM config_instances')) return [{ n: 0 } as T];
      const snapshot = [...table.values()];
      if (text.includes('ORDER BY instance_id LIMIT')) {
        const [service, now, limit] = params as [string, number, number];
        const live = snapshot.filter((r) => r.service_name === service && r.expires_at > now).sort((a, b) => (a.instance_id < b.instance_id ? -1 : 1));
        return later(live.slice(0, limit).map((r) => ({ host: 'h', pid: 1, client_version: '0.1.0', source: 'hub', stale: false, schema_hash: null, ...r })) as T[]);
      }
      if (text.includes('FROM live GROUP BY')) {
        const [now, mem, service] = params as [number, string, string | null];
        const merged = new Map<string, Row>();
        for (const r of [...snapshot.filter((r) => r.expires_at > now), ...(JSON.parse(mem) as Row[])]) {
          if (service !== null && r.service_name !== service) continue;
          const key = `${r.service_name}\u0000${r.instance_id}`;
          const known = merged.get(key);
          if (known === undefined || known.last_seen <= r.last_seen) merged.set(key, r);
        }
        const groups = new Map<string, { service_name: string; revision: number | null; last_error: string | null; n: number }>();
        for (const r of merged.values()) {
          const last_error = r.last_error === 'CONFIG_INVALID' ? r.last_error : null;
          const key = `${r.service_name}\u0000${r.revision}\u0000${last_error}`;
          const g = groups.get(key) ?? { service_name: r.service_name, revision: r.revision, last_error, n: 0 };
          g.n++;
          groups.set(key, g);
        }
        return later([...groups.values()] as T[]);
      }
      return [];
    },
    async exec() {},
  };
  return { db, table, fail: (on: boolean) => (failing = on) };
}

const ids = (rows: { instance_id: string }[]) => rows.map((r) => r.instance_id);
const total = (groups: { count: number }[]) => groups.reduce((n, g) => n + g.count, 0);

describe('InstanceRegistry reads', () => {
  it('view() takes the unflushed records before it reads the table: a record flushed meanwhile is not missing', async () => {
    const t = tableDb(50);
    const reg = new InstanceRegistry({ db: t.db, flushIntervalMs: 10 });
    reg.record(fields('a', { expiry_ms: 60_000 }));
    await vi.advanceTimersByTimeAsync(0); // flushed: in the table
    reg.record(fields('b', { expiry_ms: 60_000 }));
    // The view's table read starts now (the table holds a only) and answers in 50 ms; b is flushed at 10 ms.
    const view = reg.view('svc');
    await vi.advanceTimersByTimeAsync(10);
    expect(reg.unflushed()).toEqual([]);
    expect(t.table.size).toBe(2);
    await vi.advanceTimersByTimeAsync(50);
    const v = await view;
    expect(ids(v.instances)).toEqual(['a', 'b']);
    expect(total(v.groups)).toBe(2);
    await reg.close();
  });

  it('the summary counts every live instance, not only the listed ones; the view then says truncated', async () => {
    const t = tableDb();
    const reg = new InstanceRegistry({ db: t.db, maxViewInstances: 2 });
    for (const id of ['a', 'b', 'c']) reg.record(fields(id, { expiry_ms: 60_000 }));
    const waiting = await reg.view('svc');
    expect([ids(waiting.instances), total(waiting.groups), waiting.truncated]).toEqual([['a', 'b'], 3, true]);
    await reg.flush();
    reg.record(fields('d', { expiry_ms: 60_000 }));
    const mixed = await reg.view('svc');
    expect([ids(mixed.instances), total(mixed.groups), mixed.truncated]).toEqual([['a', 'b'], 4, true]);
    // The same counts as the list route's (counts(): every service, one query).
    expect(total((await reg.counts()).filter((g) => g.service_name === 'svc'))).toBe(4);
    const fits = await new InstanceRegistry({ db: t.db, maxViewInstances: 10 }).view('svc');
    expect([fits.instances.length, fits.truncated]).toEqual([3, false]);
    await reg.close();
  });
});

describe('InstanceRegistry against a flood of instance ids', () => {
  it('records at most maxPerService live instances per service: new ids beyond are dropped and counted, the view says truncated', async () => {
    const t = tableDb();
    const reg = new InstanceRegistry({ db: t.db, maxPerService: 3 });
    for (const id of ['a', 'b', 'c']) expect(reg.record(fields(id, { expiry_ms: 10_000 }))).toBe(true);
    expect(reg.record(fields('d', { expiry_ms: 10_000 }))).toBe(false);
    expect(reg.record(fields('x', { service_name: 'other', expiry_ms: 10_000 }))).toBe(true);
    expect(reg.dropped).toBe(1);
    await reg.flush();
    // Known instances are still refreshed (also after their flush).
    expect(reg.record(fields('a', { expiry_ms: 10_000, revision: 2 }))).toBe(true);
    const v = await reg.view('svc');
    expect([ids(v.instances), v.truncated]).toEqual([['a', 'b', 'c'], true]);
    expect((await reg.view('other')).truncated).toBe(false);
    // Once instances expire, their places are free again.
    await vi.advanceTimersByTimeAsync(11_000);
    expect(reg.record(fields('d', { expiry_ms: 10_000 }))).toBe(true);
    await reg.close();
  });

  it('caps the instances of all services (maxInstances)', () => {
    const reg = new InstanceRegistry({ db: tableDb().db, maxInstances: 2 });
    expect([reg.record(fields('a')), reg.record(fields('b', { service_name: 's2' })), reg.record(fields('c', { service_name: 's3' }))]).toEqual([true, true, false]);
    expect(reg.dropped).toBe(1);
    void reg.close();
  });

  it('the pending limit never drops a refresh of a known instance: it replaces its entry; only new ids are dropped, and counted', async () => {
    const t = tableDb();
    const reg = new InstanceRegistry({ db: t.db, maxPending: 2, onError: () => {} });
    reg.record(fields('a', { expiry_ms: 60_000 }));
    reg.record(fields('b', { expiry_ms: 60_000 }));
    await reg.flush();
    t.fail(true); // flushes fail: what waits stays waiting
    reg.record(fields('n1', { expiry_ms: 60_000 }));
    reg.record(fields('n2', { expiry_ms: 60_000 }));
    expect(reg.record(fields('n3', { expiry_ms: 60_000 }))).toBe(false);
    // a and b were flushed before; two new ids fill the pending set: their refreshes are recorded all the same.
    expect(reg.record(fields('a', { expiry_ms: 60_000, revision: 7 }))).toBe(true);
    expect(reg.record(fields('b', { expiry_ms: 60_000, revision: 7 }))).toBe(true);
    expect(reg.record(fields('a', { expiry_ms: 60_000, revision: 8 }))).toBe(true);
    expect(reg.dropped).toBe(1);
    expect(reg.unflushed().map((r) => [r.instance_id, r.revision])).toEqual([
      ['n1', 1],
      ['n2', 1],
      ['a', 8],
      ['b', 7],
    ]);
    t.fail(false);
    await reg.close();
    expect([...t.table.values()].map((r) => [r.instance_id, r.revision]).sort()).toEqual([
      ['a', 8],
      ['b', 7],
      ['n1', 1],
      ['n2', 1],
    ]);
  });
});

describe('InstanceRegistry health', () => {
  it('tells what waits, what was dropped, and the last flush error while flushes fail', async () => {
    const t = tableDb();
    const reg = new InstanceRegistry({ db: t.db, maxPerService: 1, onError: () => {} });
    reg.record(fields('a', { expiry_ms: 60_000 }));
    reg.record(fields('b', { expiry_ms: 60_000 }));
    expect(reg.health()).toEqual({ pending: 1, dropped: 1, failures: 0 });
    t.fail(true);
    for (let i = 0; i < FLUSH_FAILURES_DEGRADED; i++) await reg.flush();
    expect(reg.health()).toEqual({ pending: 1, dropped: 1, failures: 3, last_flush_error: 'relation "config_instances" does not exist' });
    t.fail(false);
    await reg.flush();
    expect(reg.health()).toEqual({ pending: 0, dropped: 1, failures: 0 });
    await reg.close();
  });
});

describe('InstanceRegistry after the database recovers', () => {
  it('an explicit flush that succeeds drops the retry timer of the backoff: the next record is flushed within the interval', async () => {
    const t = fakeDb();
    const reg = new InstanceRegistry({ db: t.db, onError: () => {} });
    t.fail(true);
    reg.record(fields('a', { expiry_ms: 600_000 }));
    for (let i = 0; i < 4; i++) await reg.flush(); // backing off: the next retry is 30 s away
    t.fail(false);
    await reg.flush();
    expect(t.upserts.map((u) => u.rows.map((r) => r.instance_id))).toEqual([['a']]);
    await vi.advanceTimersByTimeAsync(1000);
    reg.record(fields('b', { expiry_ms: 600_000 }));
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.upserts.map((u) => u.rows.map((r) => r.instance_id))).toEqual([['a'], ['b']]);
    await reg.close();
  });
});
