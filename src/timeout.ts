/** `promise`, or `'timeout'` after `ms` — whichever settles first. The timer is unref'd and always cleared. */
export async function raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Keeps the process alive until `promise` settles. Background work (polls, recovery, notice fetches, retry
 * waits) uses unref'd timers and never holds the process; a call somebody awaits (`get`, `refresh`) must
 * settle, so it holds the process for exactly as long as it takes (bounded by the startup budget or the
 * transport's retries).
 */
export function holdProcessUntil<T>(promise: Promise<T>): Promise<T> {
  const handle = setInterval(() => undefined, 2 ** 30);
  return promise.finally(() => clearInterval(handle));
}
