/**
 * Turns the bytes of a NATS message into a validated notice for one watched service, or a
 * `NOTICE_INVALID` error. Pure: no I/O, never throws (it runs inside nats.js' socket reader, where a
 * throw kills the connection's message loop: issue 9 #6). Given the hub's public keys it also checks the
 * notice's Ed25519 signature (`notice-signature.ts`) and says whether the notice is `verified`.
 */
import type { KeyObject } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { loadNoticePublicKey, NOTICE_KEY_ID_PATTERN, type NoticeSignatureCheck, verifyNoticeSignature } from '../hub/notice-signature.js';
import { type Notice, noticeSchema } from '../hub/wire.js';
import { jsonTextExceedsDepth as jsonNestingExceeds } from '../json-depth.js';
import { freezeShared } from '../layers/paths.js';
import { type CachedNotice, findByBytes, findByText, remember } from './notice-cache.js';

/** 1 MiB: far above any real config, low enough that a hostile publisher cannot make us parse megabytes. */
export const DEFAULT_MAX_NOTICE_BYTES = 1_048_576;

/**
 * Deepest `config` a notice may carry, in object/array levels: the reference hub's body limit
 * (`examples/hub/body.ts` DEFAULT_MAX_DEPTH), so that whatever the hub accepts, a notice can carry. The
 * notice text itself may nest one level more (its envelope).
 */
export const MAX_NOTICE_CONFIG_DEPTH = 64;

/**
 * `verified`: the notice carries a valid signature of one of the configured hub keys. A notice that is
 * valid but not verified while keys are configured (unsigned, unknown `kid`, bad signature) comes with
 * `unverified` (`NOTICE_UNVERIFIED`) to report; it is still a usable hint. Without keys `verified` is
 * always false and `unverified` absent.
 */
export type NoticeParseResult =
  | { ok: true; notice: Notice; verified: boolean; unverified?: ConfigError }
  | { ok: false; error: ConfigError };

/** The hub's public keys by key id, prepared once (`noticeVerifier`) and shared by every parse. */
export interface NoticeVerifier {
  readonly keys: ReadonlyMap<string, KeyObject>;
  /** Key id → SPKI DER (base64) of its key: names the key a cached text was checked with. */
  readonly fingerprints: ReadonlyMap<string, string>;
}

/**
 * Prepares `verifyKeys` (`{ [kid]: PEM | base64 SPKI DER | KeyObject }`, Ed25519 only). Throws
 * `INVALID_OPTIONS` naming the key id (never the key) when one is not an Ed25519 public key.
 */
export function noticeVerifier(verifyKeys: Readonly<Record<string, string | KeyObject>>): NoticeVerifier {
  if (typeof verifyKeys !== 'object' || verifyKeys === null || Array.isArray(verifyKeys)) {
    throw new ConfigError('INVALID_OPTIONS', 'nats.verifyKeys must be an object of key id → Ed25519 public key');
  }
  const keys = new Map<string, KeyObject>();
  const fingerprints = new Map<string, string>();
  for (const [kid, value] of Object.entries(verifyKeys)) {
    if (!NOTICE_KEY_ID_PATTERN.test(kid)) {
      throw new ConfigError('INVALID_OPTIONS', `nats.verifyKeys: key id ${JSON.stringify(kid)} must match ${NOTICE_KEY_ID_PATTERN}`);
    }
    let key: KeyObject;
    try {
      key = loadNoticePublicKey(value);
    } catch (error) {
      throw new ConfigError('INVALID_OPTIONS', `nats.verifyKeys[${JSON.stringify(kid)}]: ${(error as Error).message}`);
    }
    keys.set(kid, key);
    fingerprints.set(kid, key.export({ type: 'spki', format: 'der' }).toString('base64'));
  }
  if (keys.size === 0) throw new ConfigError('INVALID_OPTIONS', 'nats.verifyKeys is empty; omit it to accept unsigned notices');
  return { keys, fingerprints };
}

// `fatal` so that bytes which are not UTF-8 are rejected instead of silently becoming U+FFFD.
const decoder = new TextDecoder('utf-8', { fatal: true });

let signatureChecks = 0;

/**
 * How many signature checks this process has run (`verifyNoticeSignature` calls: canonical JSON + Ed25519).
 * One per distinct message and key, however many subscriptions receive it: what tests and the bench count.
 */
export function noticeSignatureChecks(): number {
  return signatureChecks;
}

/**
 * A validated notice as a private copy (one caller changing it never reaches another): the JSON parse, the
 * schema check and the signature check run once per distinct message (`notice-cache.ts`).
 */
export function parseNotice(
  service: string,
  data: Uint8Array,
  maxBytes: number = DEFAULT_MAX_NOTICE_BYTES,
  verifier?: NoticeVerifier,
): NoticeParseResult {
  const result = parseSharedNotice(service, data, maxBytes, verifier);
  return result.ok ? { ...result, notice: copyJson(result.notice) } : result;
}

/**
 * As `parseNotice`, but the notice is the cached one, deeply frozen and shared by every caller that receives
 * the same message: no copy per subscription. For callers that only read it (the watcher → the runtime, which
 * keeps parts of it, frozen as they are).
 */
export function parseSharedNotice(
  service: string,
  data: Uint8Array,
  maxBytes: number = DEFAULT_MAX_NOTICE_BYTES,
  verifier?: NoticeVerifier,
): NoticeParseResult {
  try {
    const parsed = parse(service, data, maxBytes);
    if (!parsed.ok) return parsed;
    return { ...checkSignature(service, parsed.entry, verifier), notice: parsed.entry.notice };
  } catch (error) {
    // Not expected (every step below is bounded); the promise is "never throws", so keep it.
    return invalidNotice(service, 'payload could not be parsed', error);
  }
}

function invalidNotice(service: string, message: string, cause?: unknown): { ok: false; error: ConfigError } {
  return {
    ok: false,
    error: new ConfigError('NOTICE_INVALID', `notice for ${service}: ${message}`, { service, cause }),
  };
}

type Parsed = { ok: true; entry: CachedNotice } | { ok: false; error: ConfigError };

function parse(service: string, data: Uint8Array, maxBytes: number): Parsed {
  if (data.byteLength > maxBytes) {
    return invalidNotice(service, `payload is ${data.byteLength} bytes, above the ${maxBytes}-byte limit`);
  }
  const same = findByBytes(service, data);
  if (same !== undefined) return { ok: true, entry: same };
  let text: string;
  let raw: unknown;
  try {
    text = decoder.decode(data);
    const cached = findByText(service, text);
    if (cached !== undefined) return { ok: true, entry: cached };
    // Before anything recursive (the schema, copyJson, the client's merge) sees the value.
    if (jsonNestingExceeds(text, MAX_NOTICE_CONFIG_DEPTH + 1)) return tooDeep(service);
    raw = JSON.parse(text);
  } catch (error) {
    return invalidNotice(service, 'payload is not JSON', error);
  }
  // Older hubs send `config` as a JSON-encoded string, which the schema parses: bound it the same way.
  const config = typeof raw === 'object' && raw !== null ? (raw as { config?: unknown }).config : undefined;
  if (typeof config === 'string' && jsonNestingExceeds(config, MAX_NOTICE_CONFIG_DEPTH)) return tooDeep(service);
  const parsed = noticeSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
    return invalidNotice(service, `payload does not match the notice schema (${where}${first?.message ?? 'invalid'})`, parsed.error);
  }
  // Exact subjects already filter by service; a mismatch means a confused or hostile publisher.
  if (parsed.data.service_name !== service) {
    return invalidNotice(service, `payload names service ${parsed.data.service_name}`);
  }
  const entry: CachedNotice = {
    bytes: Uint8Array.prototype.slice.call(data),
    text,
    // Frozen, so that every caller can be handed the same one (the schema's output may share `config` with `raw`,
    // which is frozen with it: nothing changes either).
    notice: freezeShared(parsed.data),
    raw: raw as Record<string, unknown>,
    checks: new Map(),
  };
  remember(service, entry);
  return { ok: true, entry };
}

function tooDeep(service: string): Parsed {
  return invalidNotice(service, `config is nested deeper than ${MAX_NOTICE_CONFIG_DEPTH} levels`);
}

const UNVERIFIED_REASONS: Record<Exclude<NoticeSignatureCheck, { ok: true }>['reason'], string> = {
  unsigned: 'is not signed',
  malformed: 'has a malformed signature',
  'unknown-kid': 'is signed with an unknown key id',
  'bad-signature': 'has a signature that does not verify',
};

function checkSignature(
  service: string,
  entry: CachedNotice,
  verifier: NoticeVerifier | undefined,
): { ok: true; verified: boolean; unverified?: ConfigError } {
  if (verifier === undefined) return { ok: true, verified: false };
  const kid = entry.raw.kid;
  // The key this text is checked with; none for an unsigned notice or an unknown kid (refused without crypto).
  const fingerprint = typeof kid === 'string' ? verifier.fingerprints.get(kid) : undefined;
  let check = fingerprint === undefined ? undefined : entry.checks.get(fingerprint);
  if (check === undefined) {
    signatureChecks++;
    check = verifyNoticeSignature(entry.raw, verifier.keys);
    if (fingerprint !== undefined) entry.checks.set(fingerprint, check);
  }
  if (check.ok) return { ok: true, verified: true };
  const kidText = check.kid === undefined ? '' : ` (kid ${JSON.stringify(check.kid.slice(0, 64))})`;
  return {
    ok: true,
    verified: false,
    unverified: new ConfigError(
      'NOTICE_UNVERIFIED',
      `notice for ${service} ${UNVERIFIED_REASONS[check.reason]}${kidText}: treated as an unverified hint`,
      { service },
    ),
  };
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
