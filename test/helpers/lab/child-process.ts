import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LabResource, signalPid, track } from './registry.js';

/** Repository root (this file lives in test/helpers/lab/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const MAX_OUTPUT = 1024 * 1024;

export interface SpawnOptions {
  /** Extra environment (merged over process.env unless `inheritEnv: false`). */
  env?: Record<string, string | undefined>;
  inheritEnv?: boolean;
  cwd?: string;
  /** Resolve once a line of output matches; without it, resolve right after spawn. */
  readyLine?: RegExp;
  /** Where to look for `readyLine` (default 'stdout'). */
  readyStream?: 'stdout' | 'stderr' | 'both';
  /** Bound on the wait for `readyLine` (default 15 000 ms). The process is killed on timeout. */
  timeoutMs?: number;
  /** Label used in errors (default: the command's basename). */
  name?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LabProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** The `readyLine` match (null when no readyLine was given). */
  readonly match: RegExpMatchArray | null;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  readonly running: boolean;
  readonly paused: boolean;
  /** SIGTERM (SIGCONT first if paused), wait for exit; SIGKILL after `graceMs` (default 5 000). */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<ExitInfo>;
  /** SIGSTOP: the process hangs, its sockets stay open (connects still succeed in the kernel backlog). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Send any signal to the process group. */
  signal(sig: NodeJS.Signals): void;
  /** Combined stdout+stderr so far (last 1 MiB). */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolve with the match once a NEW line of output matches (bounded wait). */
  waitForLine(re: RegExp, opts?: { timeoutMs?: number; stream?: 'stdout' | 'stderr' | 'both' }): Promise<RegExpMatchArray>;
}

function tail(s: string, n = 2000): string {
  return s.length > n ? `…${s.slice(-n)}` : s;
}

/**
 * Spawn a process in its own process group (so signals reach wrappers' children too), capture its output,
 * optionally wait for a ready line, and track it for cleanup.
 */
export async function spawnProcess(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<LabProcess> {
  const name = opts.name ?? path.basename(cmd);
  const env = opts.inheritEnv === false ? { ...opts.env } : { ...process.env, ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];

  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: signal(-pid) reaches grandchildren (e.g. tsx → node)
  });

  let out = '';
  let stdout = '';
  let stderr = '';
  let paused = false;
  let running = true;
  type LineWaiter = { re: RegExp; stream: 'stdout' | 'stderr' | 'both'; resolve: (m: RegExpMatchArray) => void };
  const waiters = new Set<LineWaiter>();
  const partial = { stdout: '', stderr: '' };

  const onChunk = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
    const s = chunk.toString('utf8');
    out = (out + s).slice(-MAX_OUTPUT);
    if (stream === 'stdout') stdout = (stdout + s).slice(-MAX_OUTPUT);
    else stderr = (stderr + s).slice(-MAX_OUTPUT);
    const text = partial[stream] + s;
    const lines = text.split('\n');
    partial[stream] = lines.pop() ?? '';
    for (const line of lines) {
      for (const w of [...waiters]) {
        if (w.stream !== 'both' && w.stream !== stream) continue;
        const m = line.match(w.re);
        if (m) {
          waiters.delete(w);
          w.resolve(m);
        }
      }
    }
  };
  child.stdout?.on('data', (c: Buffer) => onChunk('stdout', c));
  child.stderr?.on('data', (c: Buffer) => onChunk('stderr', c));

  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      untrack();
      resolve({ code, signal });
    });
    // A spawn failure (ENOENT, EACCES) emits 'error' and never 'exit'.
    child.once('error', () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) return;
      running = false;
      untrack();
      resolve({ code: null, signal: null });
    });
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const pid = child.pid;
  const groupSignal = (sig: NodeJS.Signals): void => {
    if (!running || pid === undefined) return;
    // negative pid = the whole process group; fall back to the pid itself
    if (!signalPid(-pid, sig)) signalPid(pid, sig);
  };

  const stop = async (graceMs = 5_000): Promise<ExitInfo> => {
    if (!running) return exited;
    groupSignal('SIGTERM');
    if (paused) {
      groupSignal('SIGCONT');
      paused = false;
    }
    const timer = setTimeout(() => groupSignal('SIGKILL'), graceMs);
    try {
      return await boundedExit(graceMs + 5_000, 'SIGTERM');
    } finally {
      clearTimeout(timer);
    }
  };
  const kill = async (): Promise<ExitInfo> => {
    groupSignal('SIGKILL');
    paused = false;
    return boundedExit(5_000, 'SIGKILL');
  };
  const boundedExit = (ms: number, what: string): Promise<ExitInfo> => {
    let t: NodeJS.Timeout | undefined;
    return Promise.race([
      exited,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`lab: ${name} (pid ${pid}) did not exit within ${ms} ms after ${what}`)), ms);
      }),
    ]).finally(() => clearTimeout(t));
  };

  const resource: LabResource = {
    name: `process ${name} (pid ${pid})`,
    dispose: async () => {
      await stop(3_000);
    },
    killSync: () => groupSignal('SIGKILL'),
  };
  const untrack = track(resource);

  const waitForLine: LabProcess['waitForLine'] = (re, o = {}) => {
    const timeoutMs = o.timeoutMs ?? 15_000;
    return new Promise<RegExpMatchArray>((resolve, reject) => {
      const w: LineWaiter = {
        re,
        stream: o.stream ?? 'both',
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`lab: ${name} did not print a line matching ${re} within ${timeoutMs} ms. Output:\n${tail(out)}`));
      }, timeoutMs);
      waiters.add(w);
      void exited.then((info) => {
        if (!waiters.has(w)) return;
        waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`lab: ${name} exited (code ${info.code}, signal ${info.signal}) before printing ${re}. Output:\n${tail(out)}`));
      });
    });
  };

  let match: RegExpMatchArray | null = null;
  if (opts.readyLine) {
    const timeoutMs = opts.timeoutMs ?? 15_000;
    try {
      match = await Promise.race([
        waitForLine(opts.readyLine, { timeoutMs, stream: opts.readyStream ?? 'stdout' }),
        spawnError.then((e) => {
          throw new Error(`lab: could not spawn ${cmd}: ${e.message}`);
        }),
      ]);
    } catch (err) {
      await kill();
      throw err;
    }
  } else {
    // Surface ENOENT and friends immediately.
    const e = await Promise.race([spawnError, new Promise<null>((r) => setImmediate(() => r(null)))]);
    if (e) throw new Error(`lab: could not spawn ${cmd}: ${e.message}`);
  }
  if (pid === undefined) throw new Error(`lab: could not spawn ${cmd} (no pid)`);

  return {
    name,
    pid,
    child,
    match,
    exited,
    get running() {
      return running;
    },
    get paused() {
      return paused;
    },
    stop,
    kill,
    pause: () => {
      groupSignal('SIGSTOP');
      paused = true;
    },
    resume: () => {
      groupSignal('SIGCONT');
      paused = false;
    },
    signal: groupSignal,
    output: () => out,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForLine,
  };
}

export interface HubProcess extends LabProcess {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly port: number;
  /** From the ready line, when printed: store kind ('pglite' | 'postgres' …) and NATS on/off. */
  readonly store: string | undefined;
  readonly nats: 'on' | 'off' | undefined;
  /** Stop (SIGTERM) if still running, then start again on the same port with the same env. */
  restart(extraEnv?: Record<string, string | undefined>): Promise<HubProcess>;
}

export const HUB_READY_LINE = /hub listening on (http:\/\/[^\s)]+)(?: \(store: ([^,)]+), nats: (on|off)\))?/;

/**
 * Run the reference hub (`examples/hub/main.ts`) as a child process with HOST=127.0.0.1 and PORT (default 0),
 * wait for `hub listening on <url> …` on stdout. Runs `node --import tsx` directly (one process, so SIGKILL /
 * SIGSTOP hit the hub itself rather than a tsx wrapper); pass `{ viaTsxBin: true }` for node_modules/.bin/tsx.
 */
export async function startHubProcess(
  env: Record<string, string | undefined> = {},
  opts: { port?: number; timeoutMs?: number; viaTsxBin?: boolean } = {},
): Promise<HubProcess> {
  const port = opts.port ?? (env.PORT ? Number(env.PORT) : 0);
  const [cmd, args] = opts.viaTsxBin
    ? [path.join(REPO_ROOT, 'node_modules/.bin/tsx'), ['examples/hub/main.ts']]
    : [process.execPath, ['--import', 'tsx', 'examples/hub/main.ts']];
  const proc = await spawnProcess(cmd, args, {
    name: 'hub',
    env: { ...env, HOST: '127.0.0.1', PORT: String(port) },
    readyLine: HUB_READY_LINE,
    timeoutMs: opts.timeoutMs ?? 20_000,
  });
  const url = proc.match![1]!.replace(/[),.]+$/, '').replace(/\/$/, '');
  const actualPort = Number(new URL(url).port);
  // Prototype-chain onto the LabProcess so its live getters (running, paused) keep working.
  const hub = Object.create(proc, {
    url: { value: url, enumerable: true },
    port: { value: actualPort, enumerable: true },
    store: { value: proc.match![2], enumerable: true },
    nats: { value: proc.match![3], enumerable: true },
    restart: {
      value: async (extraEnv: Record<string, string | undefined> = {}) => {
        if (proc.running) await proc.stop();
        return startHubProcess({ ...env, ...extraEnv }, { ...opts, port: actualPort });
      },
    },
  }) as HubProcess;
  return hub;
}
