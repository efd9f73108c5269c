/**
 * Ed25519 signatures of NATS notices (issue 10; DESIGN §3 "notices signed with Ed25519 (`sig`, `kid`)").
 * Shared by the reference hub (signs) and the client (verifies); part of `@central-hub/config/wire` so that
 * other hubs can sign the same way.
 *
 * Wire: two additive string fields on the notice, `kid` (which hub key signed it) and `sig` (the
 * base64url, unpadded, 64-byte Ed25519 signature). What is signed:
 *
 *     UTF-8( "central-hub-notice-v1\n" + canonicalJson(notice without its `sig` field) )
 *
 * `canonicalJson` is RFC 8785 (JCS) for the values a notice holds: object keys sorted by UTF-16 code
 * units, no whitespace, strings and numbers as ECMAScript's JSON.stringify writes them (so `1.0` → `1`),
 * `undefined` object members skipped. `kid` is inside the signed text, so a signature cannot be replayed
 * under another key id. Key order, whitespace and number spelling on the wire therefore do not matter,
 * which makes the scheme robust to re-serialization (the client verifies the parsed JSON, before any
 * schema transform; e.g. `config` as a JSON string is signed as that string).
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

export const NOTICE_SIGNATURE_CONTEXT = 'central-hub-notice-v1\n';
/** Key ids: what fits a header and a log line. */
export const NOTICE_KEY_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
/** Deeper than any notice can be (the parser bounds notices at 65 levels first); a guard for direct callers. */
const MAX_CANONICAL_DEPTH = 128;

const encoder = new TextEncoder();

/** RFC 8785 canonical JSON of a JSON value (see the file header). Throws a TypeError on non-JSON input. */
export function canonicalJson(value: unknown): string {
  return canonical(value, 0);
}

function canonical(value: unknown, depth: number): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonicalJson: numbers must be finite');
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`canonicalJson: ${typeof value} is not a JSON value`);
    return text;
  }
  if (depth >= MAX_CANONICAL_DEPTH) throw new TypeError(`canonicalJson: nested deeper than ${MAX_CANONICAL_DEPTH} levels`);
  if (Array.isArray(value)) return `[${value.map((item) => canonical(item, depth + 1)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const child = record[key];
    if (child === undefined) continue;
    members.push(`${JSON.stringify(key)}:${canonical(child, depth + 1)}`);
  }
  return `{${members.join(',')}}`;
}

/** The exact bytes an Ed25519 notice signature covers: the context line + canonicalJson of the notice without `sig`. */
export function noticeSigningInput(notice: Readonly<Record<string, unknown>>): Uint8Array {
  const { sig: _sig, ...unsigned } = notice;
  return encoder.encode(NOTICE_SIGNATURE_CONTEXT + canonicalJson(unsigned));
}

function assertEd25519(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(`${what} must be an Ed25519 key, got ${key.asymmetricKeyType ?? key.type}`);
  }
  return key;
}

/** A private key from a PEM text (`-----BEGIN PRIVATE KEY-----`), base64 of its PKCS#8 DER, or a KeyObject. */
export function loadNoticePrivateKey(key: string | KeyObject): KeyObject {
  if (typeof key !== 'string') {
    if (key.type !== 'private') throw new TypeError('the notice signing key must be a private key');
    return assertEd25519(key, 'the notice signing key');
  }
  const text = key.trim();
  let parsed: KeyObject;
  try {
    parsed = text.startsWith('-----BEGIN')
      ? createPrivateKey(text)
      : createPrivateKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'pkcs8' });
  } catch {
    // Never echo the key.
    throw new TypeError('the notice signing key is neither an Ed25519 PEM private key nor base64 PKCS#8 DER');
  }
  return assertEd25519(parsed, 'the notice signing key');
}

/** A public key from a PEM text (`-----BEGIN PUBLIC KEY-----`), base64 of its SPKI DER, or a KeyObject (a private one gives its public half). */
export function loadNoticePublicKey(key: string | KeyObject): KeyObject {
  if (typeof key !== 'string') {
    return assertEd25519(key.type === 'private' ? createPublicKey(key) : key, 'a notice verify key');
  }
  const text = key.trim();
  let parsed: KeyObject;
  try {
    parsed = text.startsWith('-----BEGIN')
      ? createPublicKey(text)
      : createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new TypeError('a notice verify key is neither an Ed25519 PEM public key nor base64 SPKI DER');
  }
  return assertEd25519(parsed, 'a notice verify key');
}

/** A stable default key id: `ed25519:` + the first 16 base64url characters of SHA-256 over the SPKI DER of the public key. */
export function noticeKeyIdFor(key: KeyObject): string {
  const spki = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
  return `ed25519:${createHash('sha256').update(spki).digest().subarray(0, 12).toString('base64url')}`;
}

/** The notice with `kid` and `sig` set (a new object; any `sig`/`kid` it had are replaced). */
export function signNotice<T extends Record<string, unknown>>(
  notice: T,
  privateKey: KeyObject,
  keyId: string,
): T & { kid: string; sig: string } {
  if (!NOTICE_KEY_ID_PATTERN.test(keyId)) throw new TypeError(`notice key id must match ${NOTICE_KEY_ID_PATTERN}`);
  const { sig: _old, ...rest } = notice;
  const unsigned = { ...rest, kid: keyId };
  const sig = sign(null, noticeSigningInput(unsigned), privateKey).toString('base64url');
  return { ...unsigned, sig } as T & { kid: string; sig: string };
}

export type NoticeSignatureCheck =
  | { ok: true; kid: string }
  | { ok: false; reason: 'unsigned' | 'malformed' | 'unknown-kid' | 'bad-signature'; kid?: string };

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Checks the signature of a parsed notice (the JSON as received, before any schema transform) against
 * the hub keys by key id. Never throws.
 */
export function verifyNoticeSignature(
  notice: Readonly<Record<string, unknown>>,
  keys: ReadonlyMap<string, KeyObject>,
): NoticeSignatureCheck {
  const { sig, kid } = notice;
  if (sig === undefined && kid === undefined) return { ok: false, reason: 'unsigned' };
  if (typeof sig !== 'string' || typeof kid !== 'string' || !BASE64URL.test(sig)) return { ok: false, reason: 'malformed' };
  const key = keys.get(kid);
  if (key === undefined) return { ok: false, reason: 'unknown-kid', kid };
  const signature = Buffer.from(sig, 'base64url');
  if (signature.length !== 64) return { ok: false, reason: 'malformed', kid };
  try {
    return verify(null, noticeSigningInput(notice), key, signature) ? { ok: true, kid } : { ok: false, reason: 'bad-signature', kid };
  } catch {
    return { ok: false, reason: 'malformed', kid };
  }
}
