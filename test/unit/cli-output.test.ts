/**
 * The CLI's pure output parts: the JSON diff (sorted keys, a minimal edit script, unified hunks), the changed
 * paths of `--json`, aligned tables, and colour only on a TTY without NO_COLOR.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ANSI_PALETTE, NO_COLOR_PALETTE, paletteFor, printable, renderDiff, table } from '../../src/cli/format.js';
import { canonicalPretty, changedPaths, diffLines, hunks, unifiedJsonDiff } from '../../src/cli/json-diff.js';

describe('JSON diff', () => {
  it('key order is not a change: the JSON is pretty-printed with sorted keys at every level', () => {
    expect(canonicalPretty({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).toBe(
      '{\n  "a": {\n    "c": null,\n    "d": [\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}',
    );
    expect(unifiedJsonDiff({ a: 1, b: 2 }, { b: 2, a: 1 })).toEqual([]);
  });

  it('the edit script rebuilds both sides and is never longer than the simple one (property)', () => {
    const lines = fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 30 });
    fc.assert(
      fc.property(lines, lines, (a, b) => {
        const ops = diffLines(a, b);
        expect(ops.filter((o) => o.op !== '+').map((o) => o.line)).toEqual(a);
        expect(ops.filter((o) => o.op !== '-').map((o) => o.line)).toEqual(b);
        expect(ops.filter((o) => o.op !== ' ').length).toBeLessThanOrEqual(a.length + b.length);
      }),
    );
    // Minimal: one changed line in the middle is one removal and one addition.
    expect(diffLines(['x', 'y', 'z'], ['x', 'Y', 'z']).filter((o) => o.op !== ' ')).toEqual([
      { op: '-', line: 'y' },
      { op: '+', line: 'Y' },
    ]);
  });

  it('hunks carry 3 lines of context and GNU-style ranges; distant changes make separate hunks', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i + 1}`);
    const b = a.map((l) => (l === 'l2' ? 'L2' : l === 'l18' ? 'L18' : l));
    const hs = hunks(diffLines(a, b));
    expect(hs.map((h) => [h.aStart, h.aLen, h.bStart, h.bLen])).toEqual([
      [1, 5, 1, 5],
      [15, 6, 15, 6],
    ]);
    // Close changes share one hunk.
    const c = a.map((l) => (l === 'l5' ? 'L5' : l === 'l10' ? 'L10' : l));
    expect(hunks(diffLines(a, c))).toHaveLength(1);
    // A pure addition to an empty side starts at 0.
    expect(hunks(diffLines([], ['x'])).map((h) => [h.aStart, h.aLen, h.bStart, h.bLen])).toEqual([[0, 0, 1, 1]]);
  });

  it('renders --- / +++ / @@ headers and -/+ lines, coloured only with the ANSI palette', () => {
    const diff = unifiedJsonDiff({ operational: { batch_size: 100 } }, { operational: { batch_size: 200 } });
    const plain = renderDiff(diff, 'svc@1', 'svc@2', NO_COLOR_PALETTE);
    expect(plain).toEqual(['--- svc@1', '+++ svc@2', '@@ -1,5 +1,5 @@', ' {', '   "operational": {', '-    "batch_size": 100', '+    "batch_size": 200', '   }', ' }']);
    const coloured = renderDiff(diff, 'svc@1', 'svc@2', ANSI_PALETTE);
    expect(coloured).toContain('\u001b[31m-    "batch_size": 100\u001b[39m');
    expect(coloured).toContain('\u001b[32m+    "batch_size": 200\u001b[39m');
    expect(renderDiff([], 'a', 'b', ANSI_PALETTE)).toEqual([]);
  });

  it('changed paths: objects recurse, arrays and scalars are replaced whole, adds and removes are named', () => {
    expect(changedPaths({ a: { b: 1, c: [1, 2] }, gone: true }, { a: { b: 2, c: [1, 2, 3] }, added: 'x' })).toEqual([
      { path: 'a.b', op: 'replace', from: 1, to: 2 },
      { path: 'a.c', op: 'replace', from: [1, 2], to: [1, 2, 3] },
      { path: 'added', op: 'add', to: 'x' },
      { path: 'gone', op: 'remove', from: true },
    ]);
    // Keys named like Object.prototype members are ordinary keys.
    expect(changedPaths({}, { toString: 1 })).toEqual([{ path: 'toString', op: 'add', to: 1 }]);
    expect(changedPaths({ a: 1 }, { a: 1 })).toEqual([]);
  });

  it('DEL and C1 controls (a CSI in a config string) are \\u-escaped: the JSON means the same and cannot drive the terminal', () => {
    const text = canonicalPretty({ k: 'a\u009b31mb\u007f' });
    expect(text).toBe('{\n  "k": "a\\u009b31mb\\u007f"\n}');
    expect(JSON.parse(text)).toEqual({ k: 'a\u009b31mb\u007f' });
  });
});

describe('tables and colour', () => {
  it('columns are padded to the widest cell, two spaces apart, the last one unpadded', () => {
    expect(table(['REV', 'BY', 'REASON'], [['1', 'system', '-'], ['12', 'a', 'long reason']])).toEqual([
      'REV  BY      REASON',
      '1    system  -',
      '12   a       long reason',
    ]);
  });

  it('control characters from the hub (a reason with an escape sequence) print as ?', () => {
    expect(printable('ok\u001b[2Jwiped\ttab\u009b')).toBe('ok?[2Jwiped tab?');
    expect(table(['A'], [['x\u001b[31my']])[1]).toBe('x?[31my');
  });

  it('colour only on a TTY, and never when NO_COLOR is set to something', () => {
    expect(paletteFor(true, {})).toBe(ANSI_PALETTE);
    expect(paletteFor(false, {})).toBe(NO_COLOR_PALETTE);
    expect(paletteFor(undefined, {})).toBe(NO_COLOR_PALETTE);
    expect(paletteFor(true, { NO_COLOR: '1' })).toBe(NO_COLOR_PALETTE);
    // no-color.org: an empty NO_COLOR does not count.
    expect(paletteFor(true, { NO_COLOR: '' })).toBe(ANSI_PALETTE);
  });
});
