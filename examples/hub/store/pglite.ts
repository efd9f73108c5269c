import { PGlite } from '@electric-sql/pglite';
import type { ListenSession, SqlDriver, SqlExecutor } from './sql-driver.js';
import { SqlStore } from './sql-store.js';
import { assertSchemaName } from './postgres.js';

export interface PgliteStoreOptions {
  /** A directory for a persistent database; in memory when absent. */
  dataDir?: string | undefined;
  /** Run everything in this schema (created if absent). */
  schema?: string | undefined;
}

interface PgliteLike {
  query<T>(text: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(sql: string): Promise<unknown>;
}

/** Embedded PostgreSQL (PGlite): one connection; transactions are serialized by PGlite itself. */
export async function createPgliteStore(options: PgliteStoreOptions = {}): Promise<SqlStore> {
  const db = options.dataDir === undefined ? new PGlite() : new PGlite(options.dataDir);
  await db.waitReady;
  if (options.schema !== undefined) {
    assertSchemaName(options.schema);
    await db.exec(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"; SET search_path TO "${options.schema}";`);
  }
  const executor = (q: PgliteLike): SqlExecutor => ({
    query: async <T>(text: string, params?: unknown[]) => (await q.query<T>(text, params)).rows,
    exec: async (sql) => {
      await q.exec(sql);
    },
  });
  const driver: SqlDriver = {
    kind: 'pglite',
    ...executor(db),
    transaction: (fn) => db.transaction((tx) => fn(executor(tx))),
    // One in-process session: the LISTEN shares it (PostgreSQL delivers a session its own notifications),
    // and it is lost only with the database, which `close()` ends.
    async listen(channel, handlers): Promise<ListenSession> {
      const unlisten = await db.listen(channel, (payload) => handlers.onNotify(payload));
      const schema = (await db.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]!.s;
      let closed = false;
      return {
        schema,
        ping: async () => {
          await db.query('SELECT 1');
        },
        close: async () => {
          if (closed || db.closed) return;
          closed = true;
          await unlisten();
        },
      };
    },
    async close() {
      if (!db.closed) await db.close();
    },
  };
  return new SqlStore(driver);
}
