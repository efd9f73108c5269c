/** Small helpers shared by the figures: percentiles, clocks, formatting, bounded waits. */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export const QUICK = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';

/** Wall-clock ms with sub-ms resolution, comparable across processes of one machine. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Dist {
  n: number;
  p50: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

/** The nearest-rank `q`-quantile (0–1) of samples sorted ascending; NaN when there are none. */
function rank(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** The nearest-rank `q`-quantile (0–1) of a sample, in any order. */
export function percentile(samples: readonly number[], q: number): number {
  return rank([...samples].sort((a, b) => a - b), q);
}

/** Nearest-rank percentiles of a sample (ms or whatever unit the samples have). */
export function dist(samples: readonly number[]): Dist {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { n: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN, min: Number.NaN, mean: Number.NaN };
  return { n, p50: rank(s, 0.5), p99: rank(s, 0.99), max: s[n - 1]!, min: s[0]!, mean: s.reduce((a, b) => a + b, 0) / n };
}

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK` on Linux x86-64). */
export const CLK_TCK = 100;

/** User + system CPU of a process so far, in clock ticks (`/proc/<pid>/stat` fields 14 and 15). Linux only. */
export function procCpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function fmt(x: number | undefined, digits = 2): string {
  if (x === undefined || Number.isNaN(x)) return '—';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return String(round(x, digits));
}

/** Race a promise against a deadline with a clear message. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`bench: ${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
}

/** One figure's result as written to latest.json. */
export interface FigureResult {
  id: number;
  title: string;
  method: string;
  /** Rows of the figure's table: each a measured line beside its floor. */
  rows: Array<Record<string, string | number | boolean | null>>;
  goals: Array<{ goal: string; measured: string; met: boolean | null }>;
  notes: string[];
  /** Extra data (histograms, raw distributions). */
  data?: Record<string, unknown>;
  error?: string;
  durationMs?: number;
}
