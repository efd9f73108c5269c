/**
 * Figures of the reliability matrix. A chaos test records what it measured with `recordFigure`; when
 * `CHAOS_FIGURES_DIR` is set (by `npm run test:chaos -- --report`), each figure is appended there as one
 * JSON line, and `run-report.ts` turns them into `test/chaos/report.md`. Without it, figures are no-ops.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface Figure {
  /** Matrix row id, e.g. `N1`, `C12`, `X1`. */
  row: string;
  /** What was measured, e.g. `time to converge after restart`. */
  name: string;
  value: number | string | boolean;
  /** Unit, e.g. `ms`, `req/min`, `count`. */
  unit?: string;
}

export function recordFigure(figure: Figure): void {
  const dir = process.env.CHAOS_FIGURES_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, `figures-${process.pid}.jsonl`), `${JSON.stringify({ ...figure, at: Date.now() })}\n`);
}
