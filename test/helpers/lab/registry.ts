import { readFileSync } from 'node:fs';

/**
 * Registry of every resource the lab starts (child processes, detached daemons, temp dirs, servers).
 *
 * - `cleanupLab()` stops everything asynchronously (call it from `afterAll`/`afterEach`).
 * - On process `exit` (and SIGINT/SIGTERM/SIGHUP) every resource's synchronous `killSync()` runs, so a failing
 *   or aborted test never leaves a nats-server or postmaster behind.
 */

export interface LabResource {
  readonly name: string;
  /** Graceful-ish async cleanup. Must be idempotent. */
  dispose(): Promise<void>;
  /** Last-resort synchronous cleanup (runs inside process 'exit'). Must be idempotent and never throw. */
  killSync(): void;
}

const resources = new Set<LabResource>();
let hooksInstalled = false;

function killAllSync(): void {
  for (const r of [...resources].reverse()) {
    try {
      r.killSync();
    } catch {
      // best effort
    }
    resources.delete(r);
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync();
      process.removeListener(sig, onSignal);
      // Only re-raise when nobody else handles the signal (keep the default behaviour: die).
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Track a resource; returns a function that untracks it (call it once the resource is gone). */
export function track(resource: LabResource): () => void {
  installHooks();
  resources.add(resource);
  return () => {
    resources.delete(resource);
  };
}

/** Number of live tracked resources (useful to assert a test cleaned up after itself). */
export function trackedCount(): number {
  return resources.size;
}

/** Dispose every tracked resource, newest first. Errors are collected and rethrown as one AggregateError. */
export async function cleanupLab(): Promise<void> {
  const errors: unknown[] = [];
  for (const r of [...resources].reverse()) {
    try {
      await r.dispose();
    } catch (err) {
      errors.push(err);
      try {
        r.killSync();
      } catch {
        // ignore
      }
    }
    resources.delete(r);
  }
  if (errors.length > 0) throw new AggregateError(errors, `lab cleanup: ${errors.length} resource(s) failed to stop`);
}

/** Send a signal to a pid, ignoring ESRCH (already gone). Returns false if the process did not exist. */
export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** True if the pid exists and is not a zombie (a daemon's zombie may linger if PID 1 does not reap). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): trust kill(0)
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `check` until it returns a truthy value or the deadline passes (then throw a clear timeout error). */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { timeoutMs = 10_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const started = Date.now();
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() - started >= timeoutMs) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`lab: timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}
