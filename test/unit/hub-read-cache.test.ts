import { describe, expect, it } from 'vitest';
import { ReadCache } from '../../examples/hub/store/read-cache.js';
import type { ConfigRow } from '../../examples/hub/store/types.js';

/** The read cache's race rules, against a database of rows held in the test (the integration test uses PostgreSQL). */

const row = (service: string, revision: number, extra: Partial<ConfigRow> = {}): ConfigRow => ({
  service_name: service,
  config: { revision },
  version: '1.0.0',
  updated_at: 1000 + revision,
  updated_by: 't',
  description: null,
  tags: [],
  active: true,
  revision,
  ...extra,
});

function setup(options: { maxEntries?: number; maxAgeMs?: number } = {}) {
  const db = new Map<string, ConfigRow>();
  let loads = 0;
  let gate: Promise<void> | undefined;
  let now = 0;
  const cache = new ReadCache({
    load: async (service) => {
      loads++;
      const answer = db.get(service) ?? null; // read when the query "starts"
      if (gate) await gate;
      return answer;
    },
    render: (r) => ({ etag: `"${r.revision}"`, body: JSON.stringify(r.config) }),
    now: () => now,
    ...options,
  });
  cache.setServing(true);
  return {
    db,
    cache,
    loads: () => loads,
    hold: () => {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
    advance: (ms: number) => (now += ms),
  };
}

describe('hub read cache', () => {
  it('holds a row: the second read costs no load; a notice drops it', async () => {
    const t = setup();
    t.db.set('a', row('a', 1));
    expect((await t.cache.document('a'))?.body).toBe('{"revision":1}');
    expect((await t.cache.document('a'))?.etag).toBe('"1"');
    expect(t.loads()).toBe(1);
    t.db.set('a', row('a', 2));
    t.cache.changed({ kind: 'service', service: 'a', revision: 2, updatedAt: 1002 });
    expect((await t.cache.get('a'))?.revision).toBe(2);
    expect(t.loads()).toBe(2);
    expect(t.cache.stats()).toMatchObject({ hits: 1, misses: 2, invalidations: 1 });
  });

  it('a load that raced a notice is not held, and its reader gets a read that started after the notice', async () => {
    const t = setup();
    t.db.set('a', row('a', 1));
    const release = t.hold();
    const pending = t.cache.get('a'); // reads revision 1, then waits
    await Promise.resolve();
    t.db.set('a', row('a', 2));
    t.cache.changed({ kind: 'service', service: 'a', revision: 2, updatedAt: 1002 });
    release();
    expect((await pending)?.revision).toBe(2);
    expect(t.loads()).toBe(2);
    expect((await t.cache.get('a'))?.revision).toBe(2);
    expect(t.loads()).toBe(2);
  });

  it("read-your-writes: the writer's row is held; its own notice afterwards drops nothing; a foreign notice since the ticket does", async () => {
    const t = setup();
    let ticket = t.cache.ticket();
    t.cache.written(row('a', 1), ticket);
    expect((await t.cache.get('a'))?.revision).toBe(1);
    t.cache.changed({ kind: 'service', service: 'a', revision: 1, updatedAt: 1001 });
    expect((await t.cache.get('a'))?.revision).toBe(1);
    expect(t.loads()).toBe(0);
    // Its own notice first (PGlite), then the write returns: still held.
    ticket = t.cache.ticket();
    t.cache.changed({ kind: 'service', service: 'a', revision: 2, updatedAt: 1002 });
    t.cache.written(row('a', 2), ticket);
    expect((await t.cache.get('a'))?.revision).toBe(2);
    expect(t.loads()).toBe(0);
    // Another replica's later commit heard before the write returned: the next read goes to the database.
    ticket = t.cache.ticket();
    t.db.set('a', row('a', 4));
    t.cache.changed({ kind: 'service', service: 'a', revision: 4, updatedAt: 1004 });
    t.cache.written(row('a', 3), ticket);
    expect((await t.cache.get('a'))?.revision).toBe(4);
    expect(t.loads()).toBe(1);
  });

  it('a load in flight across a write of this replica does not put the older row back', async () => {
    const t = setup();
    t.db.set('a', row('a', 1));
    const release = t.hold();
    const pending = t.cache.get('a');
    await Promise.resolve();
    const ticket = t.cache.ticket();
    t.db.set('a', row('a', 2));
    t.cache.written(row('a', 2), ticket);
    release();
    await pending;
    expect((await t.cache.get('a'))?.revision).toBe(2);
  });

  it('minRevision: a held row older than the hint is read again', async () => {
    const t = setup();
    t.db.set('a', row('a', 1));
    await t.cache.get('a');
    t.db.set('a', row('a', 2)); // committed, its notice not heard yet
    expect((await t.cache.get('a'))?.revision).toBe(1);
    expect((await t.cache.get('a', 2))?.revision).toBe(2);
    expect((await t.cache.get('a', 2))?.revision).toBe(2);
    expect(t.loads()).toBe(2);
  });

  it('not serving (the feed not listening): every read loads, nothing is held; serving again starts empty', async () => {
    const t = setup();
    t.db.set('a', row('a', 1));
    await t.cache.get('a');
    t.cache.setServing(false);
    await t.cache.get('a');
    await t.cache.get('a');
    expect(t.loads()).toBe(3);
    expect(t.cache.stats()).toMatchObject({ serving: false, entries: 0, bypassed: 2 });
    t.cache.setServing(true);
    await t.cache.get('a');
    expect(t.loads()).toBe(4);
  });

  it('absent and deleted rows are held as "no document"; a TRUNCATE or unreadable notice drops everything', async () => {
    const t = setup();
    t.db.set('gone', row('gone', 3, { active: false }));
    expect(await t.cache.document('gone')).toBeNull();
    expect(await t.cache.document('never')).toBeNull();
    expect(await t.cache.document('never')).toBeNull();
    expect(t.loads()).toBe(2);
    t.cache.changed({ kind: 'all', reason: 'truncate' });
    expect(t.cache.stats().entries).toBe(0);
  });

  it('bounds: the oldest entry goes past maxEntries; an entry older than maxAgeMs is read again', async () => {
    const t = setup({ maxEntries: 2, maxAgeMs: 1000 });
    for (const s of ['a', 'b', 'c']) t.db.set(s, row(s, 1));
    await t.cache.get('a');
    await t.cache.get('b');
    await t.cache.get('c');
    expect(t.cache.stats().entries).toBe(2);
    await t.cache.get('a');
    expect(t.loads()).toBe(4);
    t.advance(999);
    await t.cache.get('a');
    expect(t.loads()).toBe(4);
    t.advance(2);
    await t.cache.get('a');
    expect(t.loads()).toBe(5);
    expect(() => new ReadCache({ load: async () => null, render: () => ({ etag: '', body: '' }), maxEntries: 0 })).toThrow(TypeError);
    expect(() => new ReadCache({ load: async () => null, render: () => ({ etag: '', body: '' }), maxAgeMs: 0 })).toThrow(TypeError);
  });
});
