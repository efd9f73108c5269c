// A small line diff (longest common subsequence), for pretty-printed sorted JSON.

/** Above this many cells in the LCS table the changed middle is shown as removed + added whole. */
const MAX_CELLS = 4_000_000;

/**
 * Line operations turning `a` into `b`: `{ op: ' ' | '-' | '+', text, a?, b? }` (`a`/`b`: 1-based line
 * numbers in the old / new text). Removals come before additions within a change.
 */
export function diffLines(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  let start = 0;
  while (start < x.length && start < y.length && x[start] === y[start]) start++;
  let endX = x.length;
  let endY = y.length;
  while (endX > start && endY > start && x[endX - 1] === y[endY - 1]) {
    endX--;
    endY--;
  }
  const ops = [];
  for (let i = 0; i < start; i++) ops.push({ op: ' ', text: x[i], a: i + 1, b: i + 1 });
  const n = endX - start;
  const m = endY - start;
  const del = (i) => ops.push({ op: '-', text: x[start + i], a: start + i + 1 });
  const add = (j) => ops.push({ op: '+', text: y[start + j], b: start + j + 1 });
  if (n * m > MAX_CELLS) {
    for (let i = 0; i < n; i++) del(i);
    for (let j = 0; j < m; j++) add(j);
  } else {
    // lcs[i * (m + 1) + j]: LCS length of x[start + i ..] and y[start + j ..].
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] =
          x[start + i] === y[start + j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (x[start + i] === y[start + j]) {
        ops.push({ op: ' ', text: x[start + i], a: start + i + 1, b: start + j + 1 });
        i++;
        j++;
      } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) del(i++);
      else add(j++);
    }
    while (i < n) del(i++);
    while (j < m) add(j++);
  }
  for (let i = endX, j = endY; i < x.length; i++, j++) ops.push({ op: ' ', text: x[i], a: i + 1, b: j + 1 });
  return ops;
}

/** Groups the operations into hunks with `context` unchanged lines around each change (unified-diff style). */
export function hunks(ops, context = 3) {
  const changed = [];
  ops.forEach((o, i) => {
    if (o.op !== ' ') changed.push(i);
  });
  const out = [];
  let k = 0;
  while (k < changed.length) {
    const from = Math.max(0, changed[k] - context);
    let last = changed[k];
    while (k + 1 < changed.length && changed[k + 1] - last <= 2 * context) last = changed[++k];
    k++;
    const to = Math.min(ops.length, last + context + 1);
    const lines = ops.slice(from, to);
    const before = ops.slice(0, from);
    const oldLen = lines.filter((o) => o.op !== '+').length;
    const newLen = lines.filter((o) => o.op !== '-').length;
    const oldStart = before.filter((o) => o.op !== '+').length + (oldLen > 0 ? 1 : 0);
    const newStart = before.filter((o) => o.op !== '-').length + (newLen > 0 ? 1 : 0);
    out.push({ header: `@@ -${oldStart},${oldLen} +${newStart},${newLen} @@`, lines });
  }
  return out;
}

/** `{ added, removed }` line counts. */
export function diffStats(ops) {
  let added = 0;
  let removed = 0;
  for (const o of ops) {
    if (o.op === '+') added++;
    else if (o.op === '-') removed++;
  }
  return { added, removed };
}
