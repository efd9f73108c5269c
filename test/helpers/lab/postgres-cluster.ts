import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';
import { isAlive, signalPid, track, waitFor } from './registry.js';

const execFileP = promisify(execFile);

/** Directory holding initdb / pg_ctl / postgres (PG_BIN, else the newest /usr/lib/postgresql/<v>/bin). */
export function findPgBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(path.join(base, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(base, versions[0], 'bin');
  }
  return '/usr/local/bin';
}

function lookupUser(name: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // no /etc/passwd
  }
  return undefined;
}

/** Children of a pid (Linux /proc scan). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid … — comm may contain spaces/parens, so parse after the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // raced with exit
    }
  }
  return out;
}

export interface StartPostgresOptions {
  /** Default: a free port. Kept across stop/start. */
  port?: number;
  maxConnections?: number;
  /** Database to create and put in `url` (default 'test'; pass 'postgres' to skip creating one). */
  database?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  /** Bound for initdb / start (default 30 000 ms each). */
  timeoutMs?: number;
}

export interface PostgresTimings {
  initdbMs: number;
  startMs: number;
  createDbMs: number;
  totalMs: number;
}

export interface PostgresHandle {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly database: string;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  readonly url: string;
  /** URL for any database on this cluster. */
  urlFor(database: string): string;
  readonly dir: string;
  readonly dataDir: string;
  readonly timings: PostgresTimings;
  /** Postmaster pid (undefined when stopped). */
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly paused: boolean;
  /** pg_ctl start -w (crash recovery included); resolves when connections are accepted. Returns ms taken. */
  start(): Promise<number>;
  /** pg_ctl stop -m immediate (crash-like: no checkpoint, recovery on next start). */
  stopImmediate(): Promise<void>;
  /** pg_ctl stop -m fast. */
  stop(): Promise<void>;
  /** SIGKILL postmaster and every child (harder crash than -m immediate). */
  kill(): Promise<void>;
  /** SIGSTOP postmaster + its children: TCP connects still succeed (kernel backlog), queries hang. */
  pause(): void;
  resume(): void;
  /** Server log so far. */
  log(): string;
  /** Stop (immediate) and remove the temp dir. */
  destroy(): Promise<void>;
}

/**
 * A private PostgreSQL cluster: initdb in a temp dir (trust auth, user `postgres`), listening on 127.0.0.1 and
 * a unix socket in the temp dir. As root, the binaries run as the `postgres` OS user via `runuser`.
 * fsync=off (a process crash loses nothing the OS already has; only an OS crash would).
 */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresHandle> {
  const t0 = Date.now();
  const bin = findPgBin();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const isRoot = process.getuid?.() === 0;
  const pgUser = isRoot ? lookupUser('postgres') : undefined;
  if (isRoot && !pgUser) throw new Error('lab: running as root but there is no `postgres` OS user to run initdb as');

  const dir = mkdtempSync(path.join(os.tmpdir(), 'pglab-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  if (pgUser) chownSync(dir, pgUser.uid, pgUser.gid);
  const port = opts.port ?? (await freePort());
  const database = opts.database ?? 'test';

  const run = async (tool: string, args: string[], what: string): Promise<string> => {
    const file = isRoot ? '/usr/sbin/runuser' : path.join(bin, tool);
    const fullArgs = isRoot ? ['-u', 'postgres', '--', path.join(bin, tool), ...args] : args;
    try {
      const { stdout, stderr } = await execFileP(file, fullArgs, { timeout: timeoutMs, killSignal: 'SIGKILL', cwd: dir });
      return stdout + stderr;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; killed?: boolean; message: string };
      const logTail = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-1500) : '';
      throw new Error(
        `lab: ${what} failed${e.killed ? ` (timed out after ${timeoutMs} ms)` : ''}: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}\n${logTail}`,
      );
    }
  };

  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    port,
    unix_socket_directories: dir,
    fsync: 'off',
    ...(opts.maxConnections !== undefined ? { max_connections: opts.maxConnections } : {}),
    ...opts.settings,
  };
  const serverOpts = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${String(v).includes(' ') ? `'${v}'` : v}`)
    .join(' ');

  let paused = false;
  const readPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const tree = (pid: number): number[] => [pid, ...childPids(pid)];

  const killSync = (): void => {
    const pid = readPid();
    if (pid !== undefined) {
      for (const p of tree(pid)) signalPid(p, 'SIGCONT');
      const ctl = isRoot ? '/usr/sbin/runuser' : path.join(bin, 'pg_ctl');
      const ctlArgs = ['-D', dataDir, '-m', 'immediate', '-w', '-t', '5', 'stop'];
      spawnSync(ctl, isRoot ? ['-u', 'postgres', '--', path.join(bin, 'pg_ctl'), ...ctlArgs] : ctlArgs, {
        timeout: 6_000,
        stdio: 'ignore',
      });
      for (const p of tree(pid)) signalPid(p, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    if (readPid() !== undefined) {
      await stopImmediate().catch(() => undefined);
    }
    killSync();
    untrack();
  };
  const untrack = track({ name: `postgres :${port} (${dir})`, dispose: destroy, killSync });

  const waitAccepting = async (): Promise<void> => {
    await waitFor(
      `postgres on 127.0.0.1:${port} to accept queries`,
      async () => {
        const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1_000 });
        try {
          await c.connect();
          await c.query('select 1');
          return true;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      { timeoutMs, intervalMs: 50 },
    );
  };

  const start = async (): Promise<number> => {
    const s = Date.now();
    if (readPid() !== undefined) throw new Error(`lab: postgres on port ${port} is already running`);
    await run('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), '-o', serverOpts, 'start'], 'pg_ctl start');
    paused = false;
    await waitAccepting();
    return Date.now() - s;
  };
  const stopImmediate = async (): Promise<void> => {
    const pid = readPid();
    if (pid === undefined) return;
    if (paused) resume();
    await run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], 'pg_ctl stop -m immediate');
    // children (backends) die with the postmaster; make sure before a quick restart
    await waitFor(`postgres children of ${pid} to exit`, () => !isAlive(pid) && childPids(pid).length === 0, { timeoutMs: 5_000 });
  };
  const stop = async (): Promise<void> => {
    if (readPid() === undefined) return;
    if (paused) resume();
    await run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop'], 'pg_ctl stop -m fast');
  };
  const kill = async (): Promise<void> => {
    const pid = readPid();
    if (pid === undefined) return;
    const procs = tree(pid);
    for (const p of procs) signalPid(p, 'SIGKILL');
    paused = false;
    await waitFor(`postgres processes ${procs.join(',')} to die`, () => procs.every((p) => !isAlive(p)), { timeoutMs: 5_000 });
    // The stale lock file names a pid that may still exist as an unreaped zombie for a moment, which makes the
    // next postmaster refuse to start ("lock file … already exists"). Everything is dead: remove the lock files.
    rmSync(path.join(dataDir, 'postmaster.pid'), { force: true });
    rmSync(path.join(dir, `.s.PGSQL.${port}.lock`), { force: true });
    rmSync(path.join(dir, `.s.PGSQL.${port}`), { force: true });
  };
  const pause = (): void => {
    const pid = readPid();
    if (pid === undefined) throw new Error('lab: postgres is not running; cannot pause');
    signalPid(pid, 'SIGSTOP'); // postmaster first, so it forks nothing new
    for (const p of childPids(pid)) signalPid(p, 'SIGSTOP');
    paused = true;
  };
  const resume = (): void => {
    const pid = readPid();
    if (pid === undefined) return;
    for (const p of childPids(pid)) signalPid(p, 'SIGCONT');
    signalPid(pid, 'SIGCONT');
    paused = false;
  };

  // initdb
  const tInit = Date.now();
  try {
    await run('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], 'initdb');
  } catch (err) {
    await destroy();
    throw err;
  }
  const initdbMs = Date.now() - tInit;
  let startMs: number;
  try {
    startMs = await start();
  } catch (err) {
    await destroy();
    throw err;
  }
  const tDb = Date.now();
  if (database !== 'postgres') {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
    } finally {
      await c.end();
    }
  }
  const createDbMs = Date.now() - tDb;
  const timings: PostgresTimings = { initdbMs, startMs, createDbMs, totalMs: Date.now() - t0 };

  const urlFor = (db: string): string => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(db)}`;
  return {
    host: '127.0.0.1',
    port,
    database,
    url: urlFor(database),
    urlFor,
    dir,
    dataDir,
    timings,
    get pid() {
      return readPid();
    },
    get running() {
      return readPid() !== undefined;
    },
    get paused() {
      return paused;
    },
    start,
    stopImmediate,
    stop,
    kill,
    pause,
    resume,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    destroy,
  };
}
