/**
 * Figure 9: the embedded hub's cold start — what `npm run hub` runs (`node --import tsx examples/hub/main.ts`),
 * PGlite in memory, no NATS — from spawn to its "hub listening" line, beside `node --import tsx` on an empty
 * script (the floor: node and the TypeScript loader, which every `npm run hub` pays).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { REPO_ROOT } from '../lib/lab.js';
import { dist, type FigureResult, fmt, round, within } from '../lib/util.js';
import type { BenchContext } from './context.js';

/** ms from spawn to the first stdout line that contains `marker`; the process is killed then. */
function timeToLine(args: string[], env: NodeJS.ProcessEnv, marker: string): Promise<number> {
  return within(
    60_000,
    `node ${args.join(' ')}`,
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      let done = false;
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (!done && out.includes(marker)) {
          done = true;
          resolve(performance.now() - t0);
          child.kill('SIGTERM');
        }
      });
      child.once('error', reject);
      child.once('exit', (code) => {
        if (!done) reject(new Error(`node ${args.join(' ')} exited ${code} before "${marker}"; stdout: ${out.slice(0, 300)}`));
      });
    }),
  );
}

export async function figure9(ctx: BenchContext): Promise<FigureResult> {
  const n = ctx.quick ? 2 : 6;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-cold-'));
  const empty = path.join(dir, 'empty.ts');
  writeFileSync(empty, "process.stdout.write('ready\\n');\n");
  // The bench's own environment may name a database or a broker: the embedded default has neither.
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['DATABASE_URL', 'NATS_URL', 'HUB_DATA_DIR', 'HUB_API_KEYS']) delete base[name];
  const hubEnv = { ...base, PORT: '0', DISABLE_AUTH: 'true', HUB_LOG_LEVEL: 'warn' };
  try {
    const hub: number[] = [];
    const floor: number[] = [];
    await timeToLine(['--import', 'tsx', empty], base, 'ready'); // warm the disk cache and tsx's transform cache
    for (let i = 0; i < n; i++) {
      hub.push(await timeToLine(['--import', 'tsx', 'examples/hub/main.ts'], hubEnv, 'hub listening'));
      floor.push(await timeToLine(['--import', 'tsx', empty], base, 'ready'));
    }
    const dh = dist(hub);
    const df = dist(floor);
    return {
      id: 9,
      title: 'Embedded hub cold start (PGlite in memory): spawn → listening, ms',
      method: `${n} interleaved spawns of \`node --import tsx examples/hub/main.ts\` (what \`npm run hub\` execs; PORT=0, auth off, no DATABASE_URL: PGlite in memory, no NATS) until its "hub listening" line, after one warm-up spawn of the floor; floor: \`node --import tsx\` on an empty TypeScript file printing one line.`,
      rows: [
        { case: 'embedded hub: spawn → "hub listening"', p50: round(dh.p50, 0), p99: round(dh.p99, 0), max: round(dh.max, 0), n },
        { case: 'floor: node --import tsx, empty script', p50: round(df.p50, 0), p99: round(df.p99, 0), max: round(df.max, 0), n },
      ],
      goals: [{ goal: 'embedded hub cold start ≤ 3 s (p50)', measured: `${fmt(dh.p50, 0)} ms (floor ${fmt(df.p50, 0)} ms)`, met: dh.p50 <= 3000 }],
      notes: [],
      data: { hub, floor },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
