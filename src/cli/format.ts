/**
 * Human output: aligned tables, timestamps, the coloured unified diff. ANSI colour only on a TTY and never
 * when `NO_COLOR` is set (https://no-color.org: present and not empty).
 */
import type { Hunk } from './json-diff.js';

export interface Palette {
  red(s: string): string;
  green(s: string): string;
  cyan(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
}

const wrap = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;
const plain = (s: string): string => s;

export const NO_COLOR_PALETTE: Palette = { red: plain, green: plain, cyan: plain, bold: plain, dim: plain };
export const ANSI_PALETTE: Palette = { red: wrap(31, 39), green: wrap(32, 39), cyan: wrap(36, 39), bold: wrap(1, 22), dim: wrap(2, 22) };

export function paletteFor(isTTY: boolean | undefined, env: Readonly<Record<string, string | undefined>>): Palette {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return isTTY === true && !noColor ? ANSI_PALETTE : NO_COLOR_PALETTE;
}

/** Epoch ms (or a string a hub sent) as `2026-12-02T05:48:47Z`; `-` when absent. */
export function formatTime(value: number | string | null | undefined): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `null`/`undefined`/`''` → `-`; everything else as text. */
export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  return typeof value === 'string' ? value : String(value);
}

/** Control characters of remote text (a change reason, a host name) would move the cursor or recolour the terminal. */
export function printable(s: string): string {
  let out = '';
  for (const c of s) {
    const code = c.charCodeAt(0);
    out += code === 9 ? ' ' : code < 0x20 || (code >= 0x7f && code <= 0x9f) ? '?' : c;
  }
  return out;
}

/** Columns padded to their widest cell (the last is not padded), header first, two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], palette: Palette = NO_COLOR_PALETTE): string[] {
  const clean = rows.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...clean.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [palette.bold(line(header)), ...clean.map(line)];
}

/** `--- a` / `+++ b` and the hunks, coloured; `[]` when there are no hunks. */
export function renderDiff(hunks: readonly Hunk[], fromLabel: string, toLabel: string, palette: Palette): string[] {
  if (hunks.length === 0) return [];
  const lines = [palette.bold(`--- ${printable(fromLabel)}`), palette.bold(`+++ ${printable(toLabel)}`)];
  for (const h of hunks) {
    lines.push(palette.cyan(`@@ -${h.aStart},${h.aLen} +${h.bStart},${h.bLen} @@`));
    for (const { op, line } of h.ops) {
      // JSON.stringify escapes control characters inside strings: the lines are printable already.
      const text = `${op}${line}`;
      lines.push(op === '-' ? palette.red(text) : op === '+' ? palette.green(text) : text);
    }
  }
  return lines;
}
