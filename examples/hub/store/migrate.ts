import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { SqlDriver } from './sql-driver.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

/** The migration files in order (`NNN_name.sql`). */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<{ name: string; sql: string }[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  return Promise.all(names.map(async (name) => ({ name, sql: await readFile(`${dir}${name}`, 'utf8') })));
}

/**
 * Applies every migration, every time: each file is idempotent, so a rerun is a no-op and a database
 * with the original schema is brought up to date. One transaction, under an advisory lock so that two
 * replicas starting together do not interleave their DDL.
 */
export async function migrate(driver: SqlDriver): Promise<string[]> {
  const migrations = await loadMigrations();
  await driver.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('central-hub-migrations:' || current_schema()))`);
    for (const m of migrations) {
      await tx.exec(m.sql);
    }
  });
  return migrations.map((m) => m.name);
}
