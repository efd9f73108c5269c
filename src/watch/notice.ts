/**
 * Turns the bytes of a NATS message into a validated notice for one watched service, or a
 * `NOTICE_INVALID` error. Pure: no I/O, never throws.
 */
import { ConfigError } from '../errors.js';
import { type Notice, noticeSchema } from '../hub/wire.js';

/** 1 MiB: far above any real config, low enough that a hostile publisher cannot make us parse megabytes. */
export const DEFAULT_MAX_NOTICE_BYTES = 1_048_576;

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
  const invalid = (message: string, cause?: unknown): NoticeParseResult => ({
    ok: false,
    error: new ConfigError('NOTICE_INVALID', `notice for ${service}: ${message}`, { service, cause }),
  });
  if (data.byteLength > maxBytes) {
    return invalid(`payload is ${data.byteLength} bytes, above the ${maxBytes}-byte limit`);
  }
  let text: string;
  let raw: unknown;
  try {
    text = decoder.decode(data);
    const cached = lastValid.get(service);
    if (cached !== undefined && cached.text === text) return { ok: true, notice: copyJson(cached.notice) };
    raw = JSON.parse(text);
  } catch (error) {
    return invalid('payload is not JSON', error);
  }
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
