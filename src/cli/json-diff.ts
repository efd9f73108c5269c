/**
 * Diffs of two JSON values, pure: a unified-style line diff of their pretty-printed, key-sorted forms
 * (Myers' O(ND) algorithm, 3 lines of context), and the list of changed paths for `--json`.
 */

/** Pretty-printed (2 spaces) with object keys sorted at every level, so that key order never shows as a change. */
export function canonicalPretty(value: unknown): string {
  return escapeC1(JSON.stringify(sortKeys(value), null, 2) ?? 'null');
}

/**
 * JSON text with DEL and the C1 controls (U+007F–U+009F; U+009B is a terminal's CSI) `\u`-escaped:
 * JSON.stringify leaves them raw. Only strings can hold them, so the text means the same.
 */
export function escapeC1(json: string): string {
  return json.replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
  return out;
}

export type DiffOp = { op: ' ' | '-' | '+'; line: string };

/** The shortest edit script from `a` to `b`, as a sequence of kept, removed and added lines. */
export function diffLines(a: readonly string[], b: readonly string[]): DiffOp[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Array<number>(2 * max + 3).fill(0);
  // trace[d]: the furthest x per diagonal k ∈ [-d-1, d+1] before step d (O(D²) memory, not O(D·(n+m))).
  const trace: number[][] = [];
  outer: for (let d = 0; d <= max; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) break outer;
    }
  }
  // Walk the trace back from (n, m).
  const ops: DiffOp[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const vd = trace[d]!;
    const at = (diagonal: number): number => vd[diagonal + d + 1]!;
    const k = x - y;
    let prevX = 0;
    let prevY = 0;
    if (d > 0) {
      const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
      prevX = at(prevK);
      prevY = prevX - prevK;
    }
    // The snake (kept lines) back to where the d-th edit ended.
    while (x > prevX && y > prevY) {
      x--;
      y--;
      ops.push({ op: ' ', line: a[x]! });
    }
    if (d === 0) break;
    if (x === prevX) ops.push({ op: '+', line: b[--y]! });
    else ops.push({ op: '-', line: a[--x]! });
  }
  return ops.reverse();
}

export interface Hunk {
  /** 1-based start line and length in `a` and in `b`, as in `@@ -aStart,aLen +bStart,bLen @@`. */
  aStart: number;
  aLen: number;
  bStart: number;
  bLen: number;
  ops: DiffOp[];
}

/** Groups the edit script into hunks with `context` unchanged lines around each change. */
export function hunks(ops: readonly DiffOp[], context = 3): Hunk[] {
  const out: Hunk[] = [];
  const changed = ops.map((o, i) => (o.op === ' ' ? -1 : i)).filter((i) => i >= 0);
  if (changed.length === 0) return out;
  // Line numbers before each op.
  const aAt: number[] = [];
  const bAt: number[] = [];
  let ai = 0;
  let bi = 0;
  for (const o of ops) {
    aAt.push(ai);
    bAt.push(bi);
    if (o.op !== '+') ai++;
    if (o.op !== '-') bi++;
  }
  let start = Math.max(0, changed[0]! - context);
  let end = Math.min(ops.length, changed[0]! + context + 1);
  const flush = (): void => {
    const slice = ops.slice(start, end);
    const aLen = slice.filter((o) => o.op !== '+').length;
    const bLen = slice.filter((o) => o.op !== '-').length;
    out.push({ aStart: aLen === 0 ? aAt[start]! : aAt[start]! + 1, aLen, bStart: bLen === 0 ? bAt[start]! : bAt[start]! + 1, bLen, ops: slice });
  };
  for (const i of changed.slice(1)) {
    if (i - context <= end) end = Math.min(ops.length, i + context + 1);
    else {
      flush();
      start = i - context;
      end = Math.min(ops.length, i + context + 1);
    }
  }
  flush();
  return out;
}

/** The unified diff of two JSON values (no `---`/`+++` header); empty when they are equal. */
export function unifiedJsonDiff(a: unknown, b: unknown, context = 3): Hunk[] {
  return hunks(diffLines(canonicalPretty(a).split('\n'), canonicalPretty(b).split('\n')), context);
}

export interface PathChange {
  path: string;
  op: 'add' | 'remove' | 'replace';
  from?: unknown;
  to?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Dotted paths that differ: objects recurse, arrays and scalars compare whole. */
export function changedPaths(a: unknown, b: unknown, prefix = ''): PathChange[] {
  if (isObject(a) && isObject(b)) {
    const out: PathChange[] = [];
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      if (!Object.hasOwn(b, key)) out.push({ path, op: 'remove', from: a[key] });
      else if (!Object.hasOwn(a, key)) out.push({ path, op: 'add', to: b[key] });
      else out.push(...changedPaths(a[key], b[key], path));
    }
    return out;
  }
  return canonicalPretty(a) === canonicalPretty(b) ? [] : [{ path: prefix, op: 'replace', from: a, to: b }];
}
