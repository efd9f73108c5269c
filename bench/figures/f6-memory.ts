/** Figure 6: heap per client with 10 cached services, and per extra cached service, vs an empty process. */
import { spawn } from 'node:child_process';
import { putConfig, REPO_ROOT, sampleConfig, startWorker, workerPath } from '../lib/lab.js';
import { type FigureResult, round, within } from '../lib/util.js';
import type { BenchContext } from './context.js';

function emptyHeap(): Promise<number> {
  return within(
    15_000,
    'empty process',
    new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, ['--expose-gc', workerPath('empty')], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.once('error', reject);
      child.once('exit', () => {
        const heap = Number(out.trim().split(' ')[2]);
        if (Number.isFinite(heap)) resolve(heap);
        else reject(new Error(`empty process printed ${out}`));
      });
    }),
  );
}

interface MemoryReport {
  n: number;
  loaded: number;
  constructed: number;
  ten: number;
  twenty: number;
}

export async function figure6(ctx: BenchContext): Promise<FigureResult> {
  for (let i = 0; i < 20; i++) await putConfig(ctx.hub.url, `bench-mem-${i}`, sampleConfig({ index: i }));
  const n = ctx.quick ? 50 : 200;
  const reps = ctx.quick ? 1 : 3;
  const empties: number[] = [];
  const reports: MemoryReport[] = [];
  for (let r = 0; r < reps; r++) {
    empties.push(await emptyHeap());
    const w = startWorker('memory', { execArgv: ['--expose-gc'], env: { BENCH_HUB_URL: ctx.hub.url, BENCH_CLIENTS: String(n) } });
    reports.push(await w.next<MemoryReport>('memory', 60_000));
    await w.stop();
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const empty = med(empties);
  const loaded = med(reports.map((x) => x.loaded));
  const perClientBare = med(reports.map((x) => (x.constructed - x.loaded) / x.n));
  const perClient10 = med(reports.map((x) => (x.ten - x.loaded) / x.n));
  const perService = med(reports.map((x) => (x.twenty - x.ten) / (x.n * 10)));
  const kib = (b: number) => round(b / 1024, 1);
  return {
    id: 6,
    title: 'Memory (V8 heap used after GC), KiB',
    method: `child processes with --expose-gc (bundled ESM, plain node), heapUsed after 4× gc(); ${n} clients in one process, each get()s 10 services (~1 KB documents, one shared zod schema), then 10 more; median of ${reps} process(es). Floor: an empty node process.`,
    rows: [
      { case: 'empty process (floor)', KiB: kib(empty) },
      { case: 'package loaded, no client (beyond empty)', KiB: kib(loaded - empty) },
      { case: 'per client, constructed, nothing cached', KiB: kib(perClientBare) },
      { case: 'per client with 10 services cached', KiB: kib(perClient10) },
      { case: 'per extra cached service', KiB: kib(perService) },
    ],
    goals: [{ goal: 'reported', measured: `${kib(perClient10)} KiB/client (10 services), ${kib(perService)} KiB/extra service`, met: null }],
    notes: [],
    data: { empties, reports },
  };
}
