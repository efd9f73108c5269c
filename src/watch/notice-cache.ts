/**
 * The last few valid notice messages of each service, shared by every subscription of the process. NATS
 * delivers one copy of a message per subscription (bench figure 3: 200 clients on one connection receive 200
 * copies of every change), so what a message costs once — decoding, the JSON parse, the schema check, the
 * Ed25519 verification — is paid once per distinct message instead of once per subscription. A few entries, not
 * one: copies of two messages can interleave across connections, and none of them should be verified twice.
 * Bounded per service by count and bytes; entries hold nothing any caller may change (the notice is frozen).
 */
import type { NoticeSignatureCheck } from '../hub/notice-signature.js';
import type { Notice } from '../hub/wire.js';

export interface CachedNotice {
  /** A copy of the message's bytes (NATS may reuse its read buffer). */
  readonly bytes: Uint8Array;
  readonly text: string;
  /** The validated notice, deeply frozen: handed to every caller as it is. */
  readonly notice: Notice;
  /** The JSON as received (never handed out): what the signature covers. */
  readonly raw: Readonly<Record<string, unknown>>;
  /**
   * Key fingerprint → the check of this text's signature with that key. The check is a pure function of the
   * two, so a result — a refusal included — is remembered, never assumed: a text not checked with a key here
   * is checked when it comes.
   */
  readonly checks: Map<string, NoticeSignatureCheck>;
}

/** Distinct messages remembered per service. */
const MAX_ENTRIES = 4;
/** Bytes remembered per service beyond the newest message (a notice may be up to 1 MiB). */
const MAX_BYTES = 1_048_576;

/** Newest first. */
const recent = new Map<string, CachedNotice[]>();

/** The entry of a message with exactly these bytes: one length check and one `memcmp` per entry, no decoding. */
export function findByBytes(service: string, data: Uint8Array): CachedNotice | undefined {
  const entries = recent.get(service);
  if (entries === undefined) return undefined;
  for (const entry of entries) {
    if (entry.bytes.byteLength === data.byteLength && Buffer.compare(entry.bytes, data) === 0) return entry;
  }
  return undefined;
}

/** The entry of a message with this text (other bytes can decode to the same text: a byte-order mark). */
export function findByText(service: string, text: string): CachedNotice | undefined {
  return recent.get(service)?.find((entry) => entry.text === text);
}

export function remember(service: string, entry: CachedNotice): void {
  const entries = [entry, ...(recent.get(service) ?? [])];
  let bytes = 0;
  let keep = 0;
  while (keep < entries.length && keep < MAX_ENTRIES && (keep === 0 || bytes + entries[keep]!.bytes.byteLength <= MAX_BYTES)) {
    bytes += entries[keep]!.bytes.byteLength;
    keep++;
  }
  entries.length = keep;
  recent.set(service, entries);
}
