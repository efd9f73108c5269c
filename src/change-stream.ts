/**
 * `client.changes(name)`: the `onChange` deliveries of one service as an async iterator (nats.js style).
 * Changes are queued between `next()` calls, so a slow consumer sees every one, in order. Readers are queued
 * too: several `next()` calls made before a change arrives are answered oldest first, one change each. The
 * iteration ends on `break`/`return()`, when the signal aborts, or when the client closes; every pending
 * `next()` then resolves with `done`.
 */
import type { ChangeListener, ConfigChange } from './runtime/types.js';

export interface ChangeEvent<T> {
  next: T;
  prev: T;
  change: ConfigChange;
}

export interface ChangeStreamOptions {
  /** Ends the iteration when aborted. */
  signal?: AbortSignal | undefined;
}

export function changeStream<T>(
  subscribe: (listener: ChangeListener<T>) => () => void,
  onEnd: (end: () => void) => () => void,
  options: ChangeStreamOptions = {},
): AsyncIterableIterator<ChangeEvent<T>> {
  const queue: ChangeEvent<T>[] = [];
  /** Pending `next()` calls, oldest first. */
  const waiting: ((result: IteratorResult<ChangeEvent<T>>) => void)[] = [];
  let done = false;

  const unsubscribe = subscribe((next, prev, change) => {
    const event = { next, prev, change };
    const resolve = waiting.shift();
    if (resolve) resolve({ value: event, done: false });
    else queue.push(event);
  });
  const end = (): void => {
    if (done) return;
    done = true;
    unsubscribe();
    forgetEnd();
    options.signal?.removeEventListener('abort', end);
    queue.length = 0;
    for (const resolve of waiting.splice(0)) resolve({ value: undefined, done: true });
  };
  const forgetEnd = onEnd(end);
  if (options.signal?.aborted) end();
  else options.signal?.addEventListener('abort', end, { once: true });

  return {
    next(): Promise<IteratorResult<ChangeEvent<T>>> {
      const event = queue.shift();
      if (event) return Promise.resolve({ value: event, done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => {
        waiting.push(resolve);
      });
    },
    return(): Promise<IteratorResult<ChangeEvent<T>>> {
      end();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
