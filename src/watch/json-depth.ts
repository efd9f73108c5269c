/**
 * A bound on JSON nesting, checked on the text before anything recursive (a deep copy, a schema walk,
 * a merge) touches the parsed value. V8's JSON.parse is iterative, but every recursive consumer after
 * it is not: a 20 000-level message overflows the stack (issue 9 #6).
 */

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const OPEN_BRACE = 0x7b; // {
const OPEN_BRACKET = 0x5b; // [
const CLOSE_BRACE = 0x7d; // }
const CLOSE_BRACKET = 0x5d; // ]

/**
 * Whether `text` nests objects/arrays deeper than `maxDepth` levels (`{}` and `[1]` are one level;
 * a scalar is zero). One pass, no allocation, no recursion: brackets inside strings (escapes included)
 * are not counted. The text need not be valid JSON; the parser judges that afterwards.
 */
export function jsonNestingExceeds(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}
