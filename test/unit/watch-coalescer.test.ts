import { describe, expect, it } from 'vitest';
import { createCoalescer } from '../../src/watch/coalescer.js';

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('createCoalescer', () => {
  it('10 000 triggers during an in-flight run → exactly 2 runs, never 2 at once', async () => {
    let runs = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    const gates = [gate(), gate()];
    const trigger = createCoalescer(async () => {
      const g = gates[runs];
      runs += 1;
      concurrent += 1;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await g?.promise;
      concurrent -= 1;
    });
    const first = trigger();
    await Promise.resolve();
    await Promise.resolve();
    expect(runs).toBe(1);
    const burst = Array.from({ length: 10_000 }, () => trigger());
    expect(new Set(burst).size).toBe(1); // all joined the one follow-up
    gates[0]?.open();
    await first;
    gates[1]?.open();
    await Promise.all(burst);
    expect(runs).toBe(2);
    expect(maxConcurrent).toBe(1);
    // Idle again: the next trigger starts a fresh run.
    await trigger();
    expect(runs).toBe(3);
  });

  it('a trigger arriving between the end of a run and the queued follow-up joins that follow-up', async () => {
    let runs = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    const trigger = createCoalescer(async () => {
      runs += 1;
      concurrent += 1;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await new Promise((r) => setTimeout(r, 5));
      concurrent -= 1;
    });
    const all: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      all.push(trigger());
      await new Promise((r) => setTimeout(r, i % 7));
    }
    await Promise.all(all);
    expect(maxConcurrent).toBe(1);
    expect(runs).toBeLessThanOrEqual(50);
  });

  it('a failing run rejects its own triggers; the follow-up still runs', async () => {
    let runs = 0;
    const g = gate();
    const trigger = createCoalescer(async () => {
      runs += 1;
      if (runs === 1) {
        await g.promise;
        throw new Error('hub down');
      }
    });
    const first = trigger();
    const second = trigger();
    g.open();
    await expect(first).rejects.toThrow('hub down');
    await expect(second).resolves.toBeUndefined();
    expect(runs).toBe(2);
  });

  it('a synchronously throwing run becomes a rejection, not a throw from trigger()', async () => {
    const trigger = createCoalescer(() => {
      throw new Error('sync');
    });
    const p = trigger();
    await expect(p).rejects.toThrow('sync');
  });
});
