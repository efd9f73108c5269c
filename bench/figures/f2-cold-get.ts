/**
 * Figure 2: the first `get` of a new client (cold: new client, new connection, no snapshot) vs raw undici
 * `Pool.request` + JSON.parse + schema parse of the same document from the same (warm) hub.
 */
import { Pool } from 'undici';
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';
import { dist, type FigureResult, fmt, round, wallMs } from '../lib/util.js';
import type { BenchContext } from './context.js';

export async function figure2(ctx: BenchContext): Promise<FigureResult> {
  const name = ctx.service;
  const schema = z.looseObject({
    operational: z.looseObject({ batch_size: z.number().int(), max_retries: z.number().int() }),
    features: z.record(z.string(), z.boolean()),
  });
  const path = `/api/v1/config/${name}`;
  const clientSample = async (): Promise<number> => {
    const t0 = wallMs();
    const client = new ConfigClient({ hubUrl: ctx.hub.url, snapshotDir: false, pollIntervalMs: false, services: { [name]: { schema } } });
    await client.get(name);
    const t = wallMs() - t0;
    await client.close();
    return t;
  };
  const floorSample = async (): Promise<number> => {
    const t0 = wallMs();
    const pool = new Pool(ctx.hub.url, { connections: 1 });
    const res = await pool.request({ path, method: 'GET', headers: { accept: 'application/json' } });
    const doc = JSON.parse(await res.body.text()) as { config: unknown };
    schema.parse(doc.config);
    const t = wallMs() - t0;
    await pool.close();
    return t;
  };
  const warmup = ctx.quick ? 20 : 100;
  const rounds = ctx.quick ? 2 : 5;
  const perRound = ctx.quick ? 30 : 100;
  for (let i = 0; i < warmup; i++) {
    await clientSample();
    await floorSample();
  }
  const c: number[] = [];
  const f: number[] = [];
  // Interleaved, so drift of a noisy machine hits both sides alike.
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < perRound; i++) {
      if ((r + i) % 2 === 0) {
        c.push(await clientSample());
        f.push(await floorSample());
      } else {
        f.push(await floorSample());
        c.push(await clientSample());
      }
    }
  }
  const dc = dist(c);
  const df = dist(f);
  const r50 = dc.p50 / df.p50;
  const r99 = dc.p99 / df.p99;
  return {
    id: 2,
    title: 'Cold first `get`, ms',
    method: `closed loop, ${warmup} warm-up pairs, ${rounds} rounds × ${perRound} interleaved pairs. Client: new ConfigClient (snapshotDir false, no poll, no NATS) → get → close. Floor: new undici Pool (1 connection) → request → JSON.parse → same zod schema parse of the config → close. Same warm hub (PostgreSQL store).`,
    rows: [
      { case: 'first client.get (cold)', p50: round(dc.p50, 3), p99: round(dc.p99, 3), max: round(dc.max, 3), n: dc.n },
      { case: 'floor: Pool.request + JSON.parse + schema', p50: round(df.p50, 3), p99: round(df.p99, 3), max: round(df.max, 3), n: df.n },
      { case: 'ratio', p50: round(r50, 2), p99: round(r99, 2), max: round(dc.max / df.max, 2), n: '' },
    ],
    goals: [
      { goal: 'p50 ≤ 1.5× floor', measured: `${fmt(r50)}×`, met: r50 <= 1.5 },
      { goal: 'p99 ≤ 1.5× floor', measured: `${fmt(r99)}×`, met: r99 <= 1.5 },
    ],
    notes: [],
  };
}
