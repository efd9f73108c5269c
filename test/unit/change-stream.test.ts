/**
 * `changeStream()` (behind `client.changes()`): pending readers are queued like pending changes.
 * Driven directly through its `subscribe`/`onEnd` seams: the deliveries are what `onChange` would call.
 */
import { describe, expect, it } from 'vitest';
import { type ChangeEvent, changeStream } from '../../src/change-stream.js';
import type { ConfigChange } from '../../src/index.js';

type Listener = Parameters<Parameters<typeof changeStream<{ n: number }>>[0]>[0];

function harness() {
  const listeners = new Set<Listener>();
  const enders = new Set<() => void>();
  let revision = 0;
  const stream = (signal?: AbortSignal) =>
    changeStream<{ n: number }>(
      (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      (end) => {
        enders.add(end);
        return () => enders.delete(end);
      },
      { signal },
    );
  const deliver = (n: number): void => {
    revision += 1;
    const change: ConfigChange = {
      service: 'svc',
      changedPaths: ['n'],
      revision,
      version: undefined,
      updatedAt: undefined,
      source: 'refresh',
    };
    for (const listener of [...listeners]) listener({ n }, { n: n - 1 }, change);
  };
  const closeClient = (): void => {
    for (const end of [...enders]) end();
  };
  return { stream, deliver, closeClient, listeners };
}

/** Settles `promise` within a macrotask, or reports it still pending. */
async function settled<T>(promise: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), 20))]);
}

const readOf = (result: IteratorResult<ChangeEvent<{ n: number }>> | 'pending') =>
  result === 'pending' ? 'pending' : result.done ? 'done' : result.value.next.n;

describe('changes(): pending readers', () => {
  it('two pending next() calls are each answered, oldest first, by the next two changes', async () => {
    const h = harness();
    const stream = h.stream();
    const first = stream.next();
    const second = stream.next();
    h.deliver(1);
    h.deliver(2);
    expect(readOf(await settled(first))).toBe(1);
    expect(readOf(await settled(second))).toBe(2);
    // Nothing was lost or queued twice: the next change goes to the next reader.
    const third = stream.next();
    h.deliver(3);
    expect(readOf(await settled(third))).toBe(3);
    await stream.return?.();
  });

  it('one change answers only the oldest pending reader; the later one waits for the next change', async () => {
    const h = harness();
    const stream = h.stream();
    const first = stream.next();
    const second = stream.next();
    h.deliver(1);
    expect(readOf(await settled(first))).toBe(1);
    expect(await settled(second)).toBe('pending');
    h.deliver(2);
    expect(readOf(await settled(second))).toBe(2);
    await stream.return?.();
  });

  it('return() resolves every pending next() with done and unsubscribes', async () => {
    const h = harness();
    const stream = h.stream();
    const pending = [stream.next(), stream.next(), stream.next()];
    await stream.return?.();
    expect((await Promise.all(pending.map(settled))).map(readOf)).toEqual(['done', 'done', 'done']);
    expect(h.listeners.size).toBe(0);
    expect(readOf(await settled(stream.next()))).toBe('done');
  });

  it('an aborted signal resolves every pending next() with done', async () => {
    const h = harness();
    const controller = new AbortController();
    const stream = h.stream(controller.signal);
    const pending = [stream.next(), stream.next()];
    controller.abort();
    expect((await Promise.all(pending.map(settled))).map(readOf)).toEqual(['done', 'done']);
    expect(h.listeners.size).toBe(0);
  });

  it('closing the client resolves every pending next() with done', async () => {
    const h = harness();
    const stream = h.stream();
    const pending = [stream.next(), stream.next()];
    h.closeClient();
    expect((await Promise.all(pending.map(settled))).map(readOf)).toEqual(['done', 'done']);
    expect(h.listeners.size).toBe(0);
  });

  it('changes arriving before any reader are still queued and read in order', async () => {
    const h = harness();
    const stream = h.stream();
    h.deliver(1);
    h.deliver(2);
    expect(readOf(await settled(stream.next()))).toBe(1);
    expect(readOf(await settled(stream.next()))).toBe(2);
    await stream.return?.();
  });
});
