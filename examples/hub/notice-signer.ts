/**
 * Signs every notice the hub publishes with Ed25519 (issue 10): adds `kid` and `sig` as defined in
 * `src/hub/notice-signature.ts` (README "Signed notices"). The broadcaster calls `sign()` on each payload
 * right before it is serialized, so the variant without `config` (over `max_payload`) is signed too.
 */
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import {
  loadNoticePrivateKey,
  NOTICE_KEY_ID_PATTERN,
  noticeKeyIdFor,
  signNotice,
} from '../../src/hub/notice-signature.js';

export interface NoticeSignerOptions {
  /** Ed25519 private key: PEM (`-----BEGIN PRIVATE KEY-----`), base64 of its PKCS#8 DER, or a KeyObject. */
  key: string | KeyObject;
  /** Key id published as `kid`; clients look the public key up by it. @default noticeKeyIdFor(key) */
  keyId?: string | undefined;
}

export class NoticeSigner {
  readonly keyId: string;
  /** The public half as PEM: what clients put in `nats.verifyKeys[keyId]`. */
  readonly publicKeyPem: string;
  readonly #key: KeyObject;

  constructor(options: NoticeSignerOptions) {
    this.#key = loadNoticePrivateKey(options.key);
    this.keyId = options.keyId ?? noticeKeyIdFor(this.#key);
    if (!NOTICE_KEY_ID_PATTERN.test(this.keyId)) {
      throw new TypeError(`the notice key id must match ${NOTICE_KEY_ID_PATTERN}`);
    }
    this.publicKeyPem = createPublicKey(this.#key).export({ type: 'spki', format: 'pem' }).toString();
  }

  /** The payload with `kid` and `sig` (a new object). */
  sign<T extends Record<string, unknown>>(payload: T): T & { kid: string; sig: string } {
    return signNotice(payload, this.#key, this.keyId);
  }
}

/** `HUB_NOTICE_SIGNING_KEY` (+ `HUB_NOTICE_KEY_ID`) → a signer, or undefined when no key is set. */
export function noticeSignerFromEnv(env: {
  HUB_NOTICE_SIGNING_KEY?: string | undefined;
  HUB_NOTICE_KEY_ID?: string | undefined;
}): NoticeSigner | undefined {
  if (env.HUB_NOTICE_SIGNING_KEY === undefined || env.HUB_NOTICE_SIGNING_KEY === '') {
    if (env.HUB_NOTICE_KEY_ID !== undefined && env.HUB_NOTICE_KEY_ID !== '') {
      throw new TypeError('HUB_NOTICE_KEY_ID is set without HUB_NOTICE_SIGNING_KEY');
    }
    return undefined;
  }
  try {
    return new NoticeSigner({ key: env.HUB_NOTICE_SIGNING_KEY, keyId: env.HUB_NOTICE_KEY_ID || undefined });
  } catch (error) {
    // The messages of loadNoticePrivateKey never contain the key.
    throw new TypeError(`HUB_NOTICE_SIGNING_KEY: ${(error as Error).message}`);
  }
}
