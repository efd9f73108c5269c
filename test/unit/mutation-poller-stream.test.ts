/**
 * Small modules at their edges, found by mutation testing (`npm run test:mutation`): the poller's option
 * checks and `running`, changeStream's ending (once, on an already-aborted signal, leaving no listener
 * behind), the timers of raceTimeout / holdProcessUntil (released once settled) and the depth guards of
 * json-depth.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { changeStream } from '../../src/change-stream.js';
import { defineService } from '../../src/define-service.js';
import { jsonTextExceedsDepth, valueExceedsDepth } from '../../src/json-depth.js';
import { holdProcessUntil, raceTimeout } from '../../src/timeout.js';
import { Poller } from '../../src/watch/poller.js';

const tick = async (): Promise<void> => {};

describe('Poller options', () => {
  it('refuses a bad interval, jitter or tick with INVALID_OPTIONS and a message naming the value', () => {
    for (const intervalMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new Poller({ intervalMs, tick })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS', message: `intervalMs must be a positive number, got ${String(intervalMs)}` }),
      );
    }
    for (const jitter of [-0.1, 1.1, Number.NaN]) {
      expect(() => new Poller({ intervalMs: 10, jitter, tick })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS', message: `jitter must be between 0 and 1, got ${String(jitter)}` }),
      );
    }
    expect(() => new Poller({ intervalMs: 10, tick: 'no' as unknown as () => Promise<void> })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'tick must be a function' }),
    );
  });

  it('accepts the jitter bounds 0 and 1', () => {
    expect(() => new Poller({ intervalMs: 10, jitter: 0, tick })).not.toThrow();
    expect(() => new Poller({ intervalMs: 10, jitter: 1, tick })).not.toThrow();
  });

  it('running: false until start(), true after, false again after stop()', () => {
    const poller = new Poller({ intervalMs: 60_000, tick });
    expect(poller.running).toBe(false);
    poller.start();
    expect(poller.running).toBe(true);
    poller.stop();
    expect(poller.running).toBe(false);
  });
});

describe('changeStream ending', () => {
  function harness(signal?: AbortSignal) {
    let unsubscribed = 0;
    let forgotten = 0;
    const stream = changeStream<number>(
      () => () => {
        unsubscribed += 1;
      },
      () => () => {
        forgotten += 1;
      },
      { signal },
    );
    return { stream, counts: () => ({ unsubscribed, forgotten }) };
  }

  it('return() ends it once, answering done; a second return() changes nothing', async () => {
    const { stream, counts } = harness();
    await expect(stream.return?.()).resolves.toStrictEqual({ value: undefined, done: true });
    await expect(stream.return?.()).resolves.toStrictEqual({ value: undefined, done: true });
    expect(counts()).toEqual({ unsubscribed: 1, forgotten: 1 });
    await expect(stream.next()).resolves.toStrictEqual({ value: undefined, done: true });
  });

  it('an already-aborted signal ends it at once', async () => {
    const { stream, counts } = harness(AbortSignal.abort());
    expect(counts()).toEqual({ unsubscribed: 1, forgotten: 1 });
    await expect(stream.next()).resolves.toStrictEqual({ value: undefined, done: true });
  });

  it('ending it removes its abort listener from the signal', async () => {
    const controller = new AbortController();
    const { stream } = harness(controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    await stream.return?.();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('timers', () => {
  const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  it('raceTimeout: the promise’s value, or timeout; its timer is cleared either way', async () => {
    const before = timeouts();
    await expect(raceTimeout(Promise.resolve(5), 60_000)).resolves.toBe(5);
    expect(timeouts()).toBe(before);
    await expect(raceTimeout(new Promise(() => {}), 1)).resolves.toBe('timeout');
    expect(timeouts()).toBe(before);
  });

  it('holdProcessUntil holds the process while the promise runs and releases it once it settles', async () => {
    const before = timeouts();
    let resolve!: (v: string) => void;
    const held = holdProcessUntil(new Promise<string>((r) => (resolve = r)));
    expect(timeouts()).toBe(before + 1);
    resolve('done');
    await expect(held).resolves.toBe('done');
    expect(timeouts()).toBe(before);
    await expect(holdProcessUntil(Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(timeouts()).toBe(before);
  });
});

describe('json-depth', () => {
  it('closing brackets lower the depth: siblings do not add up', () => {
    expect(jsonTextExceedsDepth('[[1],[2],[3]]', 2)).toBe(false);
    expect(jsonTextExceedsDepth('{"a":{},"b":{},"c":{"d":1}}', 2)).toBe(false);
    expect(jsonTextExceedsDepth('{"a":{},"b":{"c":{}}}', 2)).toBe(true);
  });

  it('a parsed value: leaves do not count as a level; objects and arrays do', () => {
    let value: unknown = 'leaf';
    for (let i = 0; i < 3; i++) value = { k: value };
    expect(valueExceedsDepth(value, 3)).toBe(false);
    expect(valueExceedsDepth(value, 2)).toBe(true);
    expect(valueExceedsDepth([[1], [[2]]], 2)).toBe(true);
    expect(valueExceedsDepth([[1], [2]], 2)).toBe(false);
    expect(valueExceedsDepth('text', 0)).toBe(false);
    expect(valueExceedsDepth(null, 0)).toBe(false);
  });
});

describe('defineService', () => {
  it('returns the definition it was given, as it is', () => {
    const definition = { schema: z.object({ a: z.number() }), defaults: { a: 1 } };
    expect(defineService(definition)).toBe(definition);
  });
});
