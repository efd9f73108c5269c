import { createHash } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { loadMigrations, migrate } from './migrate.js';
import type { ListenSession, SqlDriver, SqlExecutor } from './sql-driver.js';
import { SqlStore } from './sql-store.js';
import { assertSchemaName } from './schema-name.js';
import { defaultTemplateDir, openInMemory, type TemplateUse } from './pglite-template.js';

export interface PgliteStoreOptions {
  /** A directory for a persistent database; in memory when absent. */
  dataDir?: string | undefined;
  /** Run everything in this schema (created if absent). */
  schema?: string | undefined;
  /**
   * In memory only: where the template of a freshly initialised data directory is kept (`pglite-template.ts`);
   * `false`: none, every start runs `initdb`. Without `schema` the template has the migrations applied too (it is
   * keyed by their checksums); pass `false` where a test needs an unmigrated database. @default `<tmpdir>/central-hub-<uid>`
   */
  templateDir?: string | false | undefined;
  /** Told how the in-memory database was started (the tests read it). */
  onTemplate?: ((use: TemplateUse) => void) | undefined;
}

interface PgliteLike {
  query<T>(text: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(sql: string): Promise<unknown>;
}

/** Embedded PostgreSQL (PGlite): one connection; transactions are serialized by PGlite itself. */
export async function createPgliteStore(options: PgliteStoreOptions = {}): Promise<SqlStore> {
  let db: PGlite;
  if (options.dataDir === undefined) {
    const dir = options.templateDir === false ? undefined : (options.templateDir ?? defaultTemplateDir());
    // In the default schema the migrations are part of the template (~0.4 s of every start otherwise); the
    // hub's own migrate() then finds them recorded with the same checksums and runs nothing.
    const migrated = dir !== undefined && options.schema === undefined ? await migratedVariant() : undefined;
    const opened = await openInMemory(dir, migrated);
    db = opened.db;
    options.onTemplate?.(opened.template);
  } else {
    db = new PGlite(options.dataDir);
    await db.waitReady;
  }
  if (options.schema !== undefined) {
    assertSchemaName(options.schema);
    await db.exec(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"; SET search_path TO "${options.schema}";`);
  }
  return new SqlStore(pgliteDriver(db));
}

/** The template variant with every migration applied, named by their checksums. */
async function migratedVariant(): Promise<{ name: string; prepare: (db: PGlite) => Promise<void> }> {
  const sums = (await loadMigrations()).map((m) => `${m.name}:${m.checksum}`).join('\n');
  return {
    name: `migrated-${createHash('sha256').update(sums).digest('hex').slice(0, 16)}`,
    prepare: async (db) => {
      await migrate(pgliteDriver(db));
    },
  };
}

function pgliteDriver(db: PGlite): SqlDriver {
  const executor = (q: PgliteLike): SqlExecutor => ({
    query: async <T>(text: string, params?: unknown[]) => (await q.query<T>(text, params)).rows,
    exec: async (sql) => {
      await q.exec(sql);
    },
  });
  return {
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
}
