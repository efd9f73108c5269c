/** Figure 1: `await client.get(name)` on a fresh cache hit vs `await Promise.resolve(map.get(k))` and `Map.get`. */
import { Bench } from 'tinybench';
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';
import { type FigureResult, fmt, round } from '../lib/util.js';
import type { BenchContext } from './context.js';

const INNER = 1_000;

export async function figure1(ctx: BenchContext): Promise<FigureResult> {
  const name = ctx.service;
  const schema = z.looseObject({ operational: z.looseObject({ batch_size: z.number().int() }) });
  const client = new ConfigClient({ hubUrl: ctx.hub.url, snapshotDir: false, pollIntervalMs: false, services: { [name]: { schema } } });
  try {
    const value = await client.get(name);
    const sameIdentity = (await client.get(name)) === value;
    const map = new Map<string, unknown>([[name, value]]);
    let sink: unknown;
    const rounds = ctx.quick ? 2 : 5;
    const perRound: Record<string, number[]> = { client: [], asyncFloor: [], mapGet: [] };
    for (let r = 0; r < rounds; r++) {
      const bench = new Bench({ time: ctx.quick ? 300 : 1_000, warmupTime: ctx.quick ? 100 : 300 });
      bench
        .add('client', async () => {
          for (let i = 0; i < INNER; i++) sink = await client.get(name);
        })
        .add('asyncFloor', async () => {
          for (let i = 0; i < INNER; i++) sink = await Promise.resolve(map.get(name));
        })
        .add('mapGet', () => {
          for (let i = 0; i < INNER; i++) sink = map.get(name);
        });
      await bench.run();
      for (const task of bench.tasks) {
        const result = task.result as { latency?: { p50: number } } | undefined;
        if (!result?.latency) throw new Error(`tinybench task ${task.name} has no result (${JSON.stringify(task.result).slice(0, 200)})`);
        perRound[task.name]!.push((result.latency.p50 * 1e6) / INNER); // ms per batch → ns per op
      }
    }
    void sink;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const c = median(perRound.client!);
    const a = median(perRound.asyncFloor!);
    const m = median(perRound.mapGet!);
    const ratio = c / a;
    return {
      id: 1,
      title: 'Hot `get` (fresh cache hit), ns/op',
      method: `tinybench 6, task = a loop of ${INNER} sequential calls (ns/op = task p50 / ${INNER}); ${rounds} rounds, median of the rounds' p50. Same process, same key, value pre-fetched from the hub.`,
      rows: [
        { case: 'await client.get(name)', 'ns/op': round(c, 1), 'ratio to async floor': round(ratio, 2) },
        { case: 'await Promise.resolve(map.get(k)) (async floor)', 'ns/op': round(a, 1), 'ratio to async floor': 1 },
        { case: 'map.get(k) (sync floor)', 'ns/op': round(m, 1), 'ratio to async floor': round(m / a, 2) },
      ],
      goals: [
        { goal: '≤ 1.5× the async floor', measured: `${fmt(ratio)}×`, met: ratio <= 1.5 },
        { goal: 'no clone per call (same object returned)', measured: sameIdentity ? 'same identity' : 'new object per call', met: sameIdentity },
      ],
      notes: [],
      data: { perRound },
    };
  } finally {
    await client.close();
  }
}
