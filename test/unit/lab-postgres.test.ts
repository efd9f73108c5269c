import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupLab, type PostgresHandle, startPostgres } from '../helpers/lab/index.js';

afterAll(async () => {
  await cleanupLab();
});

async function query(db: PostgresHandle, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: db.url, connectionTimeoutMillis: 2_000 });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

describe('lab: private postgres', () => {
  it('initdb + start, connect with pg, crash (-m immediate) loses no committed row, start again', async () => {
    const db = await startPostgres({ maxConnections: 12 });
    console.log(`[lab timing] postgres initdb ${db.timings.initdbMs} ms, start ${db.timings.startMs} ms, createdb ${db.timings.createDbMs} ms, total ${db.timings.totalMs} ms`);
    expect(db.url).toBe(`postgres://postgres@127.0.0.1:${db.port}/test`);
    expect((await query(db, 'show max_connections')).rows[0].max_connections).toBe('12');

    await query(db, 'create table t (id int primary key)');
    await query(db, 'insert into t select generate_series(1, 100)');

    // a client connected during the crash gets an error, not a hang
    const live = new pg.Client({ connectionString: db.url });
    live.on('error', () => undefined);
    await live.connect();
    const t0 = Date.now();
    await db.stopImmediate();
    console.log(`[lab timing] postgres stop -m immediate: ${Date.now() - t0} ms`);
    expect(db.running).toBe(false);
    await expect(live.query('select 1')).rejects.toThrow();
    await expect(query(db, 'select 1')).rejects.toThrow(/ECONNREFUSED/);

    const restartMs = await db.start();
    console.log(`[lab timing] postgres restart after crash (recovery): ${restartMs} ms`);
    expect((await query(db, 'select count(*)::int as n from t')).rows[0].n).toBe(100);
    await live.end().catch(() => undefined);

    // SIGKILL of the whole tree, then start again
    await db.kill();
    expect(db.running).toBe(false);
    await db.start();
    expect((await query(db, 'select count(*)::int as n from t')).rows[0].n).toBe(100);

    // pause: connects are accepted by the kernel but nothing answers
    db.pause();
    const hung = new pg.Client({ connectionString: db.url, connectionTimeoutMillis: 300 });
    await expect(hung.connect()).rejects.toThrow(/timeout/i);
    db.resume();
    expect((await query(db, 'select 1 as one')).rows[0].one).toBe(1);

    const dir = db.dir;
    await db.destroy();
    const { existsSync } = await import('node:fs');
    expect(existsSync(dir)).toBe(false);
  });
});
