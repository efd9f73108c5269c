/**
 * Nesting-depth guards for JSON from outside (hub answers, snapshot files). The hub refuses bodies nested
 * deeper than 64 levels; the client's merge and sanitize walk values recursively, so a deeper value from a
 * foreign hub or a tampered file would end in a raw `RangeError` instead of a typed, reported problem.
 * Both checks are iterative and stop at the first level over the limit. NATS notices use the text check too:
 * V8's JSON.parse is iterative, but every recursive consumer after it is not (issue 9 #6).
 */

/** Deepest nesting of a config object the client accepts (the reference hub's `DEFAULT_MAX_DEPTH`). */
export const MAX_CONFIG_DEPTH = 64;

/**
 * Whether the JSON text nests arrays/objects more than `maxDepth` levels, by counting brackets outside
 * strings, before any parsing (a 4 MiB file of `[` costs a scan, not a 2-million-level parse).
 */
export function jsonTextExceedsDepth(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/** Whether a parsed value nests arrays/objects more than `maxDepth` levels (the value itself is level 1). */
export function valueExceedsDepth(root: unknown, maxDepth: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value: root, depth: 1 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > maxDepth) return true;
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push({ value: child, depth: depth + 1 });
  }
  return false;
}
