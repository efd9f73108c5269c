/**
 * A freshly initialised PGlite data directory, kept as a tarball and reused by every later in-memory start.
 *
 * `new PGlite()` in memory runs `initdb` inside WebAssembly first: 2.5–3.5 s of the embedded hub's ~4 s cold
 * start on the bench machine (bench figure 9). The data directory it produces is the same every time for one
 * PGlite build, so the first in-memory start on a machine dumps it (`dumpDataDir`, uncompressed: loading a
 * `.tgz` costs its inflate on every start) and every later one loads it (`loadDataDir`) instead. The template
 * holds `initdb`'s output and, for a `TemplateVariant`, what its deterministic `prepare` adds (the hub's
 * migrations): never data — the seed and every write run after it is loaded, so a template can never carry one
 * run's data into another. Keyed by the PGlite version and the variant's name; written to a temporary name and
 * renamed, so concurrent starts never read half a file; a template that does not load is deleted and the start
 * falls back to `initdb`.
 */
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';

/** A data directory of one PGlite build is ~40 MB; anything far larger is not one. */
const MAX_TEMPLATE_BYTES = 256 * 1024 * 1024;

let version: string | undefined;

/** The installed PGlite's version (its package.json is not exported: found beside its entry point). */
function pgliteVersion(): string {
  if (version !== undefined) return version;
  let dir = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === '@electric-sql/pglite' && typeof pkg.version === 'string') {
        version = pkg.version;
        return version;
      }
    } catch {
      // not here: one level up
    }
    dir = dirname(dir);
  }
  throw new Error('the installed @electric-sql/pglite has no readable package.json');
}

/**
 * The default directory: this user's own under the temp dir. A template is a whole database the hub runs, so it
 * is only ever read from a directory and a file this user owns and nobody else can write (a shared /tmp lets
 * anyone create a file under a predictable name).
 */
export function defaultTemplateDir(): string {
  return join(os.tmpdir(), `central-hub-${typeof process.getuid === 'function' ? process.getuid() : 'user'}`);
}

/** True when `stat` belongs to this user and no one else may write it. */
function ownedPrivately(stat: { uid: number; mode: number }): boolean {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  return (uid === undefined || stat.uid === uid) && (stat.mode & 0o022) === 0;
}

/** Where the template of the installed PGlite (and `variant`, if any) lives in `dir`. */
export function templatePath(dir: string, variant?: string): string {
  const name = [pgliteVersion(), variant].filter((part) => part !== undefined).join('-');
  return join(dir, `central-hub-pglite-${name.replace(/[^0-9A-Za-z.-]/g, '_')}.tar`);
}

/**
 * A template with more than `initdb`'s output: `prepare` runs on the fresh database before it is dumped, and must
 * be deterministic for a given `name` (the hub's migrations, named by their checksums). Never data.
 */
export interface TemplateVariant {
  name: string;
  prepare: (db: PGlite) => Promise<void>;
}

/** What `openInMemory` did (`createPgliteStore`'s `onTemplate`; the tests read it). */
export type TemplateUse = 'loaded' | 'written' | 'unwritable' | 'off';

/**
 * An in-memory PGlite, started from the template in `dir` when there is one (else `initdb`, then the template is
 * written for the next start). `dir` undefined: plain `new PGlite()`, nothing read or written.
 */
export async function openInMemory(dir: string | undefined, variant?: TemplateVariant): Promise<{ db: PGlite; template: TemplateUse }> {
  if (dir === undefined) return { db: await ready(new PGlite()), template: 'off' };
  if (!(await privateDir(dir))) return { db: await ready(new PGlite()), template: 'unwritable' };
  const file = templatePath(dir, variant?.name);
  const bytes = await readTemplate(file);
  if (bytes !== undefined) {
    try {
      return { db: await ready(new PGlite({ loadDataDir: new Blob([new Uint8Array(bytes)]) })), template: 'loaded' };
    } catch {
      // A template of another build or a damaged file: initdb as if there were none, and replace it.
      await rm(file, { force: true }).catch(() => undefined);
    }
  }
  const db = await ready(new PGlite());
  // Not inside the try below: a failing migration fails the start as it would without a template.
  if (variant !== undefined) await variant.prepare(db);
  try {
    await db.exec('CHECKPOINT');
    const dump = await db.dumpDataDir('none');
    const temporary = `${file}.${process.pid}.${randomUUID()}.tmp`;
    await writeFile(temporary, Buffer.from(await dump.arrayBuffer()), { mode: 0o600 });
    await rename(temporary, file).catch(async (error: unknown) => {
      await rm(temporary, { force: true });
      throw error;
    });
    return { db, template: 'written' };
  } catch {
    // A read-only or full temp dir costs the next start its initdb, nothing else.
    return { db, template: 'unwritable' };
  }
}

async function ready(db: PGlite): Promise<PGlite> {
  await db.waitReady;
  return db;
}

/** `dir` exists (made 0700 if absent), is a real directory, this user's, and writable by no one else. */
async function privateDir(dir: string): Promise<boolean> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const stat = await lstat(dir);
    return stat.isDirectory() && ownedPrivately(stat);
  } catch {
    return false;
  }
}

/** The template's bytes: a regular file (no symlink, no FIFO) this user owns, of a plausible size, else none. */
async function readTemplate(file: string): Promise<Buffer | undefined> {
  try {
    const stat = await lstat(file);
    if (!stat.isFile() || !ownedPrivately(stat) || stat.size < 512 || stat.size > MAX_TEMPLATE_BYTES) return undefined;
    const bytes = await readFile(file);
    // An uncompressed tar ("ustar" at 257): anything else PGlite tries to inflate, and that fails where no one can
    // catch it (an unhandled error in its loader). Files are only ever renamed into place whole.
    if (bytes.toString('latin1', 257, 262) !== 'ustar') {
      await rm(file, { force: true }).catch(() => undefined);
      return undefined;
    }
    return bytes;
  } catch {
    return undefined;
  }
}
