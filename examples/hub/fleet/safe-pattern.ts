/**
 * The regular expressions of untrusted consumer schemas (docs/fleet.md §2, "Limits"): which `pattern` /
 * `patternProperties` sources the hub dares to run, and the RegExp engine it gives Ajv for them. Pure.
 *
 * A pattern is run only when it passes `safe-regex2` (no nested quantifier, at most 25 quantifiers,
 * parsable) **and** two checks of ours that `safe-regex2` does not make: no repeated group holding an
 * alternation (`^(a|a)*$` is exponential with a star height of 1) and at most two unbounded quantifiers
 * (`\d*\d*\d*x` is polynomial of the third degree). A pattern that fails is not run (the hub lists it as
 * unchecked; the client still checks it). Static checks cannot prove a pattern linear: what passes is
 * also only run on strings of at most `MAX_PATTERN_INPUT` (256) characters.
 */
import safeRegex from 'safe-regex2';

/**
 * Longer strings (and property names) are not tested by a schema's patterns on the hub: what passes the
 * checks below can still take time in the square of the length (`\d+x` on 256 digits: ≈ 30 µs).
 */
export const MAX_PATTERN_INPUT = 256;
/** Unbounded quantifiers (`*`, `+`, `{n,}`) a pattern may hold. */
export const MAX_UNBOUNDED_QUANTIFIERS = 2;

/** Compiles `source` as zod would have run it: without the `u` flag unless the pattern needs it. */
export function compilePattern(source: string, flags = ''): RegExp {
  // zod runs a regex with its own flags, which JSON Schema loses, and the client exports flagless regexes
  // only (src/fleet/schema-export.ts): run them as zod does, without `u` (`/^.{2,}$/` counts UTF-16 code
  // units there: '😀' passes; with `u` it would not, and the hub would refuse what its consumer accepts).
  // `\p{…}` and `\u{…}` mean something only under `u` (a raw z.toJSONSchema of z.emoji()): those get it.
  const unicode = /\\[pPu]\{/.test(source);
  const own = flags.replace('u', '') + (unicode ? 'u' : '');
  return new RegExp(source, own);
}

interface Scan {
  /** A group holding an alternation is repeated by `*`, `+` or `{m,n}` (n > 1). */
  repeatedAlternation: boolean;
  unbounded: number;
}

/** What follows position `i`: a quantifier that repeats (`*`, `+`, `{m,}`, `{m,n}` with n > 1), unbounded or not, or none. */
function quantifierAt(source: string, i: number): 'unbounded' | 'bounded' | 'repeat' | undefined {
  const c = source[i];
  if (c === '*' || c === '+') return 'unbounded';
  if (c === '?') return 'bounded';
  if (c !== '{') return undefined;
  const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i, i + 24));
  if (m === null) return undefined; // a literal `{`
  if (m[2] !== undefined && m[3] === '') return 'unbounded';
  const max = Number(m[3] ?? m[1]);
  return max > 1 ? 'repeat' : 'bounded';
}

/** One pass over the source: escapes and character classes skipped, groups tracked. */
function scan(source: string): Scan {
  const result: Scan = { repeatedAlternation: false, unbounded: 0 };
  // Per open group: whether it (or a group inside it) holds a `|`.
  const groups: boolean[] = [false];
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    let quantified: number | undefined;
    if (c === '\\') {
      i++;
      quantified = i + 1;
    } else if (c === '[') {
      i++;
      if (source[i] === '^') i++;
      if (source[i] === ']') i++;
      while (i < source.length && source[i] !== ']') {
        if (source[i] === '\\') i++;
        i++;
      }
      quantified = i + 1;
    } else if (c === '(') {
      groups.push(false);
      continue;
    } else if (c === '|') {
      groups[groups.length - 1] = true;
      continue;
    } else if (c === ')') {
      const alternation = groups.length > 1 ? (groups.pop() as boolean) : false;
      const q = quantifierAt(source, i + 1);
      if (alternation && (q === 'unbounded' || q === 'repeat')) result.repeatedAlternation = true;
      if (alternation) groups[groups.length - 1] = true;
      if (q === 'unbounded') result.unbounded++;
      continue;
    } else if (c === '*' || c === '+' || c === '?' || c === '{') {
      continue; // a quantifier (counted at its atom) or a literal brace
    } else {
      quantified = i + 1;
    }
    if (quantifierAt(source, quantified) === 'unbounded') result.unbounded++;
  }
  return result;
}

/** Whether the hub runs this pattern (see the module comment). */
export function isSafePattern(source: string): boolean {
  if (!safeRegex(source)) return false;
  const s = scan(source);
  return !s.repeatedAlternation && s.unbounded <= MAX_UNBOUNDED_QUANTIFIERS;
}

/**
 * The RegExp engine the hub gives Ajv (`code.regExp`): `compilePattern`, whose `test` passes every string
 * longer than `MAX_PATTERN_INPUT` untested. Only patterns `isSafePattern` accepts reach it.
 */
export function boundedRegExp(source: string, flags: string): { test: (s: string) => boolean; toString: () => string } {
  const rx = compilePattern(source, flags);
  return {
    test: (s: string) => s.length > MAX_PATTERN_INPUT || rx.test(s),
    // Ajv shares one scope value per distinct key (this string).
    toString: () => rx.toString(),
  };
}
boundedRegExp.code = 'boundedRegExp';
