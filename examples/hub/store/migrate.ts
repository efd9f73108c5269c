import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { SqlDriver, SqlExecutor } from './sql-driver.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

/** The migration files in order (`NNN_name.sql`). */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(`${dir}${name}`, 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

// Writers lock service_configs, then config_audit_log, then config_outbox (the triggers' order): take the
// same locks in the same order before any DDL, so a migration waits for live writes instead of deadlocking.
const LOCK_TABLES = `
DO $$ BEGIN
  IF to_regclass('service_configs') IS NOT NULL THEN LOCK TABLE service_configs IN ACCESS EXCLUSIVE MODE; END IF;
  IF to_regclass('config_audit_log') IS NOT NULL THEN LOCK TABLE config_audit_log IN ACCESS EXCLUSIVE MODE; END IF;
  IF to_regclass('config_outbox') IS NOT NULL THEN LOCK TABLE config_outbox IN ACCESS EXCLUSIVE MODE; END IF;
END $$;`;

/**
 * Applies the migrations in one transaction, under an advisory lock so that replicas starting together
 * take turns. Every file is idempotent (a database with the original schema is brought up to date, a
 * rerun changes nothing); files already recorded in `hub_schema_migrations` with the same checksum are
 * skipped so that a replica starting next to live traffic takes no DDL locks. `force` reruns them all.
 * Returns the names of the files executed.
 */
export async function migrate(driver: SqlDriver, options: { force?: boolean } = {}): Promise<string[]> {
  const migrations = await loadMigrations();
  return driver.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('central-hub-migrations:' || current_schema()))`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS hub_schema_migrations (
      name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())`);
    const applied = new Map(
      (await tx.query<{ name: string; checksum: string }>('SELECT name, checksum FROM hub_schema_migrations')).map(
        (r) => [r.name, r.checksum],
      ),
    );
    const todo = options.force === true ? migrations : migrations.filter((m) => applied.get(m.name) !== m.checksum);
    if (todo.length === 0) return [];
    await tx.exec(LOCK_TABLES);
    // Files build on each other: once one must run, run it and every later one.
    const first = migrations.indexOf(todo[0]!);
    const run = migrations.slice(first);
    for (const m of run) {
      await tx.exec(m.sql);
      await tx.query(
        `INSERT INTO hub_schema_migrations (name, checksum) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = NOW()`,
        [m.name, m.checksum],
      );
    }
    return run.map((m) => m.name);
  });
}

/** The error `assertMigrated` throws: the schema is absent, incomplete or out of date. */
export class SchemaNotMigratedError extends Error {
  readonly code = 'HUB_SCHEMA_NOT_MIGRATED';
  constructor(message: string) {
    super(message);
    this.name = 'SchemaNotMigratedError';
  }
}

const RUN_MIGRATIONS = 'run the migrations first with a role that owns the schema (buildHub with migrate: true, i.e. HUB_SKIP_MIGRATIONS unset)';

/**
 * For a hub that does not migrate (`migrate: false`, run as a role without DDL rights): checks that
 * `hub_schema_migrations` lists every migration file with its checksum, and throws a
 * `SchemaNotMigratedError` naming what is missing otherwise. Reads only; takes no lock.
 */
export async function assertMigrated(driver: SqlExecutor): Promise<void> {
  const migrations = await loadMigrations();
  const where = (
    await driver.query<{ schema: string | null; present: boolean }>(
      `SELECT current_schema() AS schema, to_regclass('hub_schema_migrations') IS NOT NULL AS present`,
    )
  )[0];
  const schemaName = where?.schema ?? '(none: no schema of the search_path exists)';
  if (where?.present !== true) {
    throw new SchemaNotMigratedError(
      `the hub schema is not migrated: no table hub_schema_migrations in schema ${schemaName}; ${RUN_MIGRATIONS}`,
    );
  }
  let rows: { name: string; checksum: string }[];
  try {
    rows = await driver.query<{ name: string; checksum: string }>('SELECT name, checksum FROM hub_schema_migrations');
  } catch (error) {
    if ((error as { code?: string }).code === '42501') {
      throw new SchemaNotMigratedError(
        `cannot read ${schemaName}.hub_schema_migrations to check the schema: GRANT SELECT ON it to the hub's role`,
      );
    }
    throw error;
  }
  const applied = new Map(rows.map((r) => [r.name, r.checksum]));
  const missing = migrations.filter((m) => !applied.has(m.name)).map((m) => m.name);
  const changed = migrations.filter((m) => applied.has(m.name) && applied.get(m.name) !== m.checksum).map((m) => m.name);
  if (missing.length > 0 || changed.length > 0) {
    const parts = [
      ...(missing.length > 0 ? [`not applied: ${missing.join(', ')}`] : []),
      ...(changed.length > 0 ? [`applied from a different version of: ${changed.join(', ')}`] : []),
    ];
    throw new SchemaNotMigratedError(`the hub schema in ${schemaName} is out of date (${parts.join('; ')}); ${RUN_MIGRATIONS}`);
  }
}
