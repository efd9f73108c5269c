/**
 * Turns the bytes of a NATS message into a validated notice for one watched service, or a
 * `NOTICE_INVALID` error. Pure: no I/O, never throws (it runs inside nats.js' socket reader, where a
 * throw kills the connection's message loop: issue 9 #6).
 */
import { ConfigError } from '../errors.js';
import { type Notice, noticeSchema } from '../hub/wire.js';
import { jsonNestingExceeds } from './json-depth.js';

/** 1 MiB: far above any real config, low enough that a hostile publisher cannot make us parse megabytes. */
export const DEFAULT_MAX_NOTICE_BYTES = 1_048_576;

/**
 * Deepest `config` a notice may carry, in object/array levels: the reference hub's body limit
 * (`examples/hub/body.ts` DEFAULT_MAX_DEPTH), so that whatever the hub accepts, a notice can carry. The
 * notice text itself may nest one level more (its envelope).
 */
export const MAX_NOTICE_CONFIG_DEPTH = 64;

export type NoticeParseResult = { ok: true; notice: Notice } | { ok: false; error: ConfigError };

// `fatal` so that bytes which are not UTF-8 are rejected instead of silently becoming U+FFFD.
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The last valid notice of each service, by its text. Every client of a process that shares a NATS
 * connection gets its own copy of the same message (bench figure 3: 200 subscriptions per connection), so
 * the JSON parse and schema check run once per message instead of once per subscription. Callers always
 * get a private copy: one caller mutating its notice never reaches another.
 */
const lastValid = new Map<string, { text: string; notice: Notice }>();

export function parseNotice(
  service: string,
  data: Uint8Array,
  maxBytes: number = DEFAULT_MAX_NOTICE_BYTES,
): NoticeParseResult {
  try {
    return parse(service, data, maxBytes);
  } catch (error) {
    // Not expected (every step below is bounded); the promise is "never throws", so keep it.
    return invalidNotice(service, 'payload could not be parsed', error);
  }
}

function invalidNotice(service: string, message: string, cause?: unknown): NoticeParseResult {
  return {
    ok: false,
    error: new ConfigError('NOTICE_INVALID', `notice for ${service}: ${message}`, { service, cause }),
  };
}

function parse(service: string, data: Uint8Array, maxBytes: number): NoticeParseResult {
  const invalid = (message: string, cause?: unknown): NoticeParseResult => invalidNotice(service, message, cause);
  const tooDeep = (): NoticeParseResult => invalid(`config is nested deeper than ${MAX_NOTICE_CONFIG_DEPTH} levels`);
  if (data.byteLength > maxBytes) {
    return invalid(`payload is ${data.byteLength} bytes, above the ${maxBytes}-byte limit`);
  }
  let text: string;
  let raw: unknown;
  try {
    text = decoder.decode(data);
    const cached = lastValid.get(service);
    if (cached !== undefined && cached.text === text) return { ok: true, notice: copyJson(cached.notice) };
    // Before anything recursive (the schema, copyJson, the client's merge) sees the value.
    if (jsonNestingExceeds(text, MAX_NOTICE_CONFIG_DEPTH + 1)) return tooDeep();
    raw = JSON.parse(text);
  } catch (error) {
    return invalid('payload is not JSON', error);
  }
  // Older hubs send `config` as a JSON-encoded string, which the schema parses: bound it the same way.
  const config = typeof raw === 'object' && raw !== null ? (raw as { config?: unknown }).config : undefined;
  if (typeof config === 'string' && jsonNestingExceeds(config, MAX_NOTICE_CONFIG_DEPTH)) return tooDeep();
  const parsed = noticeSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
    return invalid(`payload does not match the notice schema (${where}${first?.message ?? 'invalid'})`, parsed.error);
  }
  // Exact subjects already filter by service; a mismatch means a confused or hostile publisher.
  if (parsed.data.service_name !== service) {
    return invalid(`payload names service ${parsed.data.service_name}`);
  }
  lastValid.set(service, { text, notice: copyJson(parsed.data) });
  return { ok: true, notice: parsed.data };
}

/** A deep copy of a JSON value (what JSON.parse and the notice schema produce), own `__proto__` keys included. */
function copyJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyJson) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const child = copyJson((value as Record<string, unknown>)[key]);
    if (key === '__proto__') Object.defineProperty(out, key, { value: child, enumerable: true, writable: true, configurable: true });
    else out[key] = child;
  }
  return out as T;
}
