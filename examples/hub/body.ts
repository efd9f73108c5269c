import { type ConfigObject, isForbiddenKey } from '../../src/hub/wire.js';
import { HubError } from './errors.js';

/** @default 1 MiB */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
/** @default 64 */
export const DEFAULT_MAX_DEPTH = 64;
// Secret detection moved to secrets.ts (issue 10: the substring rule refused max_tokens and let pwd through).
export { DEFAULT_SECRET_KEY_PATTERNS, findSecretPaths, isSecretValue, secretKeyMatcher } from './secrets.js';

/**
 * Text PostgreSQL's jsonb cannot store: U+0000 (22P05 "unsupported Unicode escape sequence") and lone
 * UTF-16 surrogates (not valid Unicode). Valid JSON, so JSON.parse accepts it; without this check the
 * INSERT failed and the client got a 500 instead of a 400.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorable = (text: string): boolean => text.includes('\u0000') || LONE_SURROGATE.test(text);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses a request body (bytes: decoded as strict UTF-8) as JSON and checks it is safe to store: no prototype-polluting keys, no
 * nesting deeper than `maxDepth`, only finite numbers. V8's JSON.parse is iterative, so deep input does
 * not blow the stack here; the walk below stops at `maxDepth`.
 */
export function parseJsonBody(body: string | Uint8Array, maxDepth: number = DEFAULT_MAX_DEPTH): unknown {
  let text: string;
  try {
    // Fatal: invalid UTF-8 is refused (400), not stored as U+FFFD (issue 10).
    text = typeof body === 'string' ? body : utf8.decode(body);
  } catch {
    throw new HubError(400, 'body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HubError(400, 'body is not valid JSON');
  }
  checkSafe(value, maxDepth);
  return value;
}

function checkSafe(root: unknown, maxDepth: number): void {
  const stack: { value: unknown; depth: number }[] = [{ value: root, depth: 0 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (typeof value === 'number' && !Number.isFinite(value)) throw new HubError(400, 'numbers must be finite');
    if (typeof value === 'string' && unstorable(value)) {
      throw new HubError(400, 'strings must not contain U+0000 or lone surrogates');
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= maxDepth) throw new HubError(400, `body is nested deeper than ${maxDepth} levels`);
    if (Array.isArray(value)) {
      for (const item of value) stack.push({ value: item, depth: depth + 1 });
      continue;
    }
    for (const key of Object.keys(value)) {
      if (isForbiddenKey(key)) throw new HubError(400, `key '${key}' is not allowed`);
      if (unstorable(key)) throw new HubError(400, 'keys must not contain U+0000 or lone surrogates');
      stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1 });
    }
  }
}

export function isPlainObject(value: unknown): value is ConfigObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function requireObject(value: unknown, what = 'body'): ConfigObject {
  if (!isPlainObject(value)) throw new HubError(400, `${what} must be a JSON object`);
  return value;
}
