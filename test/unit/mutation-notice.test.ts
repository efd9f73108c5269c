/**
 * src/watch/notice.ts and src/hub/notice-signature.ts at their edges, found by mutation testing
 * (`npm run test:mutation`): the exact NOTICE_INVALID / NOTICE_UNVERIFIED reasons, the byte limit, the
 * per-service parse cache (private copies, `__proto__` kept as data), verifyKeys checks, canonical JSON,
 * key loading and every outcome of a signature check.
 */
import { createHash, createSecretKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  loadNoticePrivateKey,
  loadNoticePublicKey,
  NOTICE_SIGNATURE_CONTEXT,
  noticeKeyIdFor,
  noticeSigningInput,
  signNotice,
  verifyNoticeSignature,
} from '../../src/hub/notice-signature.js';
import { DEFAULT_MAX_NOTICE_BYTES, noticeVerifier, parseNotice } from '../../src/watch/notice.js';

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const ed25519 = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ed25519');
const spkiBase64 = (key: KeyObject): string => key.export({ type: 'spki', format: 'der' }).toString('base64');
const pem = (key: KeyObject): string => key.export({ type: key.type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }).toString();

let seq = 0;
/** parseNotice caches the last valid text per service: a fresh name per case. */
const svc = (): string => `mut-notice-${++seq}`;

/** The NOTICE_INVALID message of a refused payload. */
function refusal(service: string, data: Uint8Array, maxBytes?: number): string {
  const r = parseNotice(service, data, maxBytes);
  if (r.ok) throw new Error('the payload was accepted');
  expect(r.error.code).toBe('NOTICE_INVALID');
  expect(r.error.service).toBe(service);
  return r.error.message;
}

describe('parseNotice: why a payload is refused', () => {
  it('names the service and the reason, schema issues with their path', () => {
    const s = 'svc-a';
    const schema = (detail: string): string => `notice for ${s}: payload does not match the notice schema (${detail})`;
    expect(refusal(s, enc('null'))).toBe(schema('Invalid input: expected object, received null'));
    expect(refusal(s, enc('[]'))).toBe(schema('Invalid input: expected object, received array'));
    expect(refusal(s, enc({ service_name: s, revision: -1 }))).toBe(schema('revision: Too small: expected number to be >=0'));
    expect(refusal(s, enc({ service_name: s, config: '[1]' }))).toBe(schema('config: config string does not encode a JSON object'));
    expect(refusal(s, enc({ service_name: 'svc-b' }))).toBe(`notice for ${s}: payload names service svc-b`);
    expect(refusal(s, enc('{nope'))).toBe(`notice for ${s}: payload is not JSON`);
    expect(refusal(s, new Uint8Array([0xc3, 0x28]))).toBe(`notice for ${s}: payload is not JSON`);
  });

  it('bytes that are not UTF-8 are refused, even inside a string where a replacement character would parse', () => {
    const s = svc();
    const prefix = new TextEncoder().encode(`{"service_name":"${s}","config":{"s":"`);
    const suffix = new TextEncoder().encode('"}}');
    const data = new Uint8Array([...prefix, 0xff, ...suffix]);
    expect(refusal(s, data)).toBe(`notice for ${s}: payload is not JSON`);
    expect(parseNotice(s, new Uint8Array([...prefix, ...new TextEncoder().encode('é'), ...suffix])).ok).toBe(true);
  });

  it('keeps the underlying error as the cause', () => {
    const notJson = parseNotice('svc-a', enc('{nope'));
    expect(!notJson.ok && notJson.error.cause).toBeInstanceOf(SyntaxError);
    const schema = parseNotice('svc-a', enc({ service_name: 'svc-a', revision: 'x' }));
    expect(!schema.ok && (schema.error.cause as { issues?: unknown[] }).issues).toHaveLength(1);
  });

  it('a payload of exactly maxBytes is parsed, one byte more is refused before parsing', () => {
    const s = svc();
    const body = enc({ service_name: s, revision: 1 });
    expect(parseNotice(s, body, body.byteLength).ok).toBe(true);
    expect(refusal(s, body, body.byteLength - 1)).toBe(
      `notice for ${s}: payload is ${body.byteLength} bytes, above the ${body.byteLength - 1}-byte limit`,
    );
    expect(DEFAULT_MAX_NOTICE_BYTES).toBe(1_048_576);
    const big = enc({ service_name: s, config: { blob: 'x'.repeat(DEFAULT_MAX_NOTICE_BYTES) } });
    expect(refusal(s, big)).toMatch(/above the 1048576-byte limit$/);
  });

  it('a config as a JSON string nested deeper than 64 levels is refused; 64 levels pass', () => {
    const s = svc();
    const nested = (levels: number): string => `${'{"k":'.repeat(levels)}1${'}'.repeat(levels)}`;
    expect(parseNotice(s, enc({ service_name: s, config: nested(64) })).ok).toBe(true);
    expect(refusal(s, enc({ service_name: s, config: nested(65) }))).toBe(`notice for ${s}: config is nested deeper than 64 levels`);
    // An object config that deep is caught by the text scan with the same reason.
    expect(refusal(s, enc(`{"service_name":"${s}","config":${nested(65)}}`))).toBe(`notice for ${s}: config is nested deeper than 64 levels`);
  });
});

describe('parseNotice: the per-service cache', () => {
  it('the same text parses to equal, private copies; a different text is parsed anew', () => {
    const s = svc();
    const text = enc({ service_name: s, config: { list: [1, { a: 2 }], none: null }, version: null, revision: 3 });
    const first = parseNotice(s, text);
    const second = parseNotice(s, text);
    if (!first.ok || !second.ok) throw new Error('refused');
    expect(second.notice).toEqual(first.notice);
    expect(second.notice).not.toBe(first.notice);
    expect(second.notice.config).not.toBe(first.notice.config);
    expect(second.notice.config?.list).not.toBe(first.notice.config?.list);
    ((first.notice.config as { list: unknown[] }).list).push('mutated');
    (second.notice.config as Record<string, unknown>).extra = true;
    const third = parseNotice(s, text);
    expect(third.ok && third.notice.config).toEqual({ list: [1, { a: 2 }], none: null });
    expect(third.ok && third.notice.version).toBeNull();
    const other = parseNotice(s, enc({ service_name: s, revision: 4 }));
    expect(other.ok && other.notice).toEqual({ service_name: s, revision: 4 });
  });

  it('a cached notice keeps an own "__proto__" key as data, never as the prototype', () => {
    const s = svc();
    const text = enc(`{"service_name":"${s}","config":{"__proto__":{"polluted":true},"ok":[{"__proto__":1}]}}`);
    parseNotice(s, text);
    const cached = parseNotice(s, text);
    if (!cached.ok) throw new Error('refused');
    const config = cached.notice.config as Record<string, unknown>;
    expect(Object.getPrototypeOf(config)).toBe(Object.prototype);
    expect(Object.hasOwn(config, '__proto__')).toBe(true);
    expect(Object.keys(config)).toEqual(['__proto__', 'ok']);
    expect(Object.getOwnPropertyDescriptor(config, '__proto__')).toEqual({ value: { polluted: true }, enumerable: true, writable: true, configurable: true });
    expect((config as { polluted?: unknown }).polluted).toBeUndefined();
    const inner = (config.ok as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(inner, '__proto__')?.value).toBe(1);
    expect(Object.getPrototypeOf(inner)).toBe(Object.prototype);
  });
});

describe('noticeVerifier', () => {
  it('refuses what is not an object of keys, naming the option', () => {
    for (const keys of [null, [], 'k1', 5]) {
      expect(() => noticeVerifier(keys as unknown as Record<string, string>)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'nats.verifyKeys must be an object of key id → Ed25519 public key' }),
      );
    }
    expect(() => noticeVerifier({})).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'nats.verifyKeys is empty; omit it to accept unsigned notices' }),
    );
  });

  it('names a bad key id, or the key id of a bad key (never the key)', () => {
    const { publicKey } = ed25519();
    expect(() => noticeVerifier({ 'bad kid': publicKey })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'nats.verifyKeys: key id "bad kid" must match /^[A-Za-z0-9._:-]{1,64}$/' }),
    );
    expect(() => noticeVerifier({ k1: publicKey, k2: 'bm90IGEga2V5' })).toThrow(
      expect.objectContaining({
        code: 'INVALID_OPTIONS',
        message: 'nats.verifyKeys["k2"]: a notice verify key is neither an Ed25519 PEM public key nor base64 SPKI DER',
      }),
    );
  });

  it('holds each key and its SPKI fingerprint by key id', () => {
    const a = ed25519();
    const b = ed25519();
    const verifier = noticeVerifier({ a: pem(a.publicKey), b: spkiBase64(b.publicKey) });
    expect([...verifier.keys.keys()]).toEqual(['a', 'b']);
    expect(verifier.keys.get('a')?.equals(a.publicKey)).toBe(true);
    expect(verifier.fingerprints.get('a')).toBe(spkiBase64(a.publicKey));
    expect(verifier.fingerprints.get('b')).toBe(spkiBase64(b.publicKey));
  });
});

describe('parseNotice with a verifier: verified, or reported with the reason', () => {
  const hub = ed25519();
  const verifier = noticeVerifier({ hub: hub.publicKey });
  const unverified = (service: string, payload: unknown): { message: string; service: string | undefined } => {
    const r = parseNotice(service, enc(payload), undefined, verifier);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.verified).toBe(false);
    expect(r.unverified?.code).toBe('NOTICE_UNVERIFIED');
    return { message: r.unverified?.message ?? '', service: r.unverified?.service };
  };

  it('each reason, with the kid when there is one', () => {
    const s = svc();
    const signed = signNotice({ service_name: s, revision: 1 }, hub.privateKey, 'hub');
    expect(unverified(s, { service_name: s })).toEqual({ message: `notice for ${s} is not signed: treated as an unverified hint`, service: s });
    expect(unverified(s, { service_name: s, kid: 'hub' }).message).toBe(`notice for ${s} has a malformed signature: treated as an unverified hint`);
    expect(unverified(s, { ...signed, sig: 'AAAA' }).message).toBe(
      `notice for ${s} has a malformed signature (kid "hub"): treated as an unverified hint`,
    );
    expect(unverified(s, { ...signed, kid: 'retired' }).message).toBe(
      `notice for ${s} is signed with an unknown key id (kid "retired"): treated as an unverified hint`,
    );
    expect(unverified(s, { ...signed, revision: 2 }).message).toBe(
      `notice for ${s} has a signature that does not verify (kid "hub"): treated as an unverified hint`,
    );
    const longKid = 'k'.repeat(100);
    expect(unverified(s, { ...signed, kid: longKid }).message).toBe(
      `notice for ${s} is signed with an unknown key id (kid "${'k'.repeat(64)}"): treated as an unverified hint`,
    );
  });

  it('a verified text stays verified from the cache, for that verifier only', () => {
    const s = svc();
    const text = enc(signNotice({ service_name: s, revision: 5 }, hub.privateKey, 'hub'));
    expect(parseNotice(s, text, undefined, verifier)).toMatchObject({ ok: true, verified: true });
    const again = parseNotice(s, text, undefined, verifier);
    expect(again).toMatchObject({ ok: true, verified: true });
    expect(again.ok && again.unverified).toBeUndefined();
    expect(parseNotice(s, text)).toEqual({ ok: true, verified: false, notice: expect.objectContaining({ revision: 5 }) });
    const sameKidOtherKey = noticeVerifier({ hub: ed25519().publicKey });
    expect(parseNotice(s, text, undefined, sameKidOtherKey)).toMatchObject({ ok: true, verified: false });
    const otherKidSameKey = noticeVerifier({ other: hub.publicKey });
    expect(parseNotice(s, text, undefined, otherKidSameKey)).toMatchObject({ ok: true, verified: false });
  });
});

describe('canonicalJson', () => {
  it('primitives as JSON.stringify writes them; arrays in order; object keys sorted, undefined members skipped', () => {
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson('a"b')).toBe('"a\\"b"');
    expect(canonicalJson(-0.5)).toBe('-0.5');
    expect(canonicalJson(true)).toBe('true');
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
    expect(canonicalJson([3, [1, 2], { b: null, a: 'x' }])).toBe('[3,[1,2],{"a":"x","b":null}]');
    expect(canonicalJson({ z: { y: 1, x: [true] }, a: undefined, m: 0 })).toBe('{"m":0,"z":{"x":[true],"y":1}}');
  });

  it('refuses non-finite numbers and values JSON has no text for, saying which', () => {
    expect(() => canonicalJson(Number.POSITIVE_INFINITY)).toThrow(new TypeError('canonicalJson: numbers must be finite'));
    expect(() => canonicalJson([Number.NaN])).toThrow(new TypeError('canonicalJson: numbers must be finite'));
    expect(() => canonicalJson(undefined)).toThrow(new TypeError('canonicalJson: undefined is not a JSON value'));
    expect(() => canonicalJson([() => 1])).toThrow(new TypeError('canonicalJson: function is not a JSON value'));
    expect(() => canonicalJson({ s: Symbol('x') })).toThrow(new TypeError('canonicalJson: symbol is not a JSON value'));
  });

  it('nests up to 128 levels of arrays or objects, no deeper', () => {
    const arrays = (levels: number): unknown => {
      let v: unknown = 1;
      for (let i = 0; i < levels; i++) v = [v];
      return v;
    };
    const objects = (levels: number): unknown => {
      let v: unknown = 1;
      for (let i = 0; i < levels; i++) v = { k: v };
      return v;
    };
    expect(canonicalJson(arrays(128))).toBe(`${'['.repeat(128)}1${']'.repeat(128)}`);
    expect(() => canonicalJson(arrays(129))).toThrow(new TypeError('canonicalJson: nested deeper than 128 levels'));
    expect(canonicalJson(objects(128))).toBe(`${'{"k":'.repeat(128)}1${'}'.repeat(128)}`);
    expect(() => canonicalJson(objects(129))).toThrow(new TypeError('canonicalJson: nested deeper than 128 levels'));
  });

  it('the signing input is the context line and the canonical notice without sig', () => {
    expect(NOTICE_SIGNATURE_CONTEXT).toBe('central-hub-notice-v1\n');
    const text = new TextDecoder().decode(noticeSigningInput({ sig: 'zz', b: 1, a: { d: 2, c: 3 } }));
    expect(text).toBe('central-hub-notice-v1\n{"a":{"c":3,"d":2},"b":1}');
  });
});

describe('keys', () => {
  const { privateKey, publicKey } = ed25519();
  const x25519 = generateKeyPairSync('x25519');
  const secret = createSecretKey(Buffer.alloc(32, 1));

  it('private keys: a KeyObject, a PEM (whitespace trimmed) or base64 PKCS#8 DER; nothing else', () => {
    expect(loadNoticePrivateKey(privateKey)).toBe(privateKey);
    expect(loadNoticePrivateKey(`\n  ${pem(privateKey)}  \n`).equals(privateKey)).toBe(true);
    expect(loadNoticePrivateKey(` ${privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64')} `).equals(privateKey)).toBe(true);
    expect(() => loadNoticePrivateKey(publicKey)).toThrow(new TypeError('the notice signing key must be a private key'));
    expect(() => loadNoticePrivateKey(x25519.privateKey)).toThrow(new TypeError('the notice signing key must be an Ed25519 key, got x25519'));
    expect(() => loadNoticePrivateKey(pem(x25519.privateKey))).toThrow(new TypeError('the notice signing key must be an Ed25519 key, got x25519'));
    const neither = new TypeError('the notice signing key is neither an Ed25519 PEM private key nor base64 PKCS#8 DER');
    expect(() => loadNoticePrivateKey('c2VjcmV0')).toThrow(neither);
    expect(() => loadNoticePrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----')).toThrow(neither);
    expect(() => loadNoticePrivateKey(pem(publicKey))).toThrow(neither);
  });

  it('public keys: a KeyObject (a private one gives its public half), a PEM or base64 SPKI DER; nothing else', () => {
    expect(loadNoticePublicKey(publicKey)).toBe(publicKey);
    const half = loadNoticePublicKey(privateKey);
    expect(half.type).toBe('public');
    expect(half.equals(publicKey)).toBe(true);
    expect(loadNoticePublicKey(`  ${pem(publicKey)}\n`).equals(publicKey)).toBe(true);
    expect(loadNoticePublicKey(`\t${spkiBase64(publicKey)}\n`).equals(publicKey)).toBe(true);
    expect(() => loadNoticePublicKey(x25519.publicKey)).toThrow(new TypeError('a notice verify key must be an Ed25519 key, got x25519'));
    expect(() => loadNoticePublicKey(spkiBase64(x25519.publicKey))).toThrow(new TypeError('a notice verify key must be an Ed25519 key, got x25519'));
    expect(() => loadNoticePublicKey(secret)).toThrow(new TypeError('a notice verify key must be an Ed25519 key, got secret'));
    const neither = new TypeError('a notice verify key is neither an Ed25519 PEM public key nor base64 SPKI DER');
    expect(() => loadNoticePublicKey('c2VjcmV0')).toThrow(neither);
    expect(() => loadNoticePublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----')).toThrow(neither);
  });

  it('the default key id: ed25519: + 16 base64url characters of SHA-256 over the SPKI DER, the same for both halves', () => {
    const expected = `ed25519:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64url').slice(0, 16)}`;
    expect(noticeKeyIdFor(publicKey)).toBe(expected);
    expect(noticeKeyIdFor(privateKey)).toBe(expected);
  });

  it('signNotice: sets kid and a fresh sig over the notice without its old signature; the key id is checked', () => {
    const signed = signNotice({ service_name: 's', revision: 1, kid: 'old', sig: 'old' }, privateKey, 'k1');
    expect(signed.kid).toBe('k1');
    expect(signed.sig).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(verifyNoticeSignature(signed, new Map([['k1', publicKey]]))).toEqual({ ok: true, kid: 'k1' });
    expect(signNotice({ service_name: 's', revision: 1 }, privateKey, 'k1')).toEqual(signed);
    expect(() => signNotice({ service_name: 's' }, privateKey, 'has space')).toThrow(
      new TypeError('notice key id must match /^[A-Za-z0-9._:-]{1,64}$/'),
    );
    expect(() => signNotice({ service_name: 's' }, privateKey, 'k'.repeat(65))).toThrow(TypeError);
    expect(signNotice({ service_name: 's' }, privateKey, 'k'.repeat(64)).kid).toHaveLength(64);
  });
});

describe('verifyNoticeSignature: every outcome', () => {
  const { privateKey, publicKey } = ed25519();
  const keys = new Map([['k1', publicKey]]);
  const signed = signNotice({ service_name: 's', revision: 1 }, privateKey, 'k1');

  it('ok with the kid; unsigned without either field', () => {
    expect(verifyNoticeSignature(signed, keys)).toEqual({ ok: true, kid: 'k1' });
    expect(verifyNoticeSignature({ service_name: 's' }, keys)).toEqual({ ok: false, reason: 'unsigned' });
  });

  it('malformed: only one of the two fields, a non-string, characters outside base64url at either end, not 64 bytes', () => {
    expect(verifyNoticeSignature({ ...signed, sig: undefined }, keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyNoticeSignature({ ...signed, kid: undefined }, keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyNoticeSignature({ ...signed, kid: 7 }, keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyNoticeSignature({ ...signed, sig: 7 }, keys)).toEqual({ ok: false, reason: 'malformed' });
    // Node's base64url decoder skips these characters: only the pattern refuses them.
    expect(verifyNoticeSignature({ ...signed, sig: ` ${signed.sig}` }, keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyNoticeSignature({ ...signed, sig: `${signed.sig}.` }, keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyNoticeSignature({ ...signed, sig: '' }, keys)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyNoticeSignature({ ...signed, sig: signed.sig.slice(0, 84) }, keys)).toEqual({ ok: false, reason: 'malformed', kid: 'k1' });
    expect(verifyNoticeSignature({ ...signed, sig: `${signed.sig}AAAA` }, keys)).toEqual({ ok: false, reason: 'malformed', kid: 'k1' });
  });

  it('unknown-kid and bad-signature carry the kid; a key that cannot verify Ed25519 is malformed, never a throw', () => {
    expect(verifyNoticeSignature({ ...signed, kid: 'k2' }, keys)).toEqual({ ok: false, reason: 'unknown-kid', kid: 'k2' });
    const other = sign(null, Buffer.from('something else'), privateKey).toString('base64url');
    expect(verifyNoticeSignature({ ...signed, sig: other }, keys)).toEqual({ ok: false, reason: 'bad-signature', kid: 'k1' });
    expect(verifyNoticeSignature({ ...signed, revision: 2 }, keys)).toEqual({ ok: false, reason: 'bad-signature', kid: 'k1' });
    const wrongType = new Map([['k1', generateKeyPairSync('x25519').publicKey]]);
    expect(verifyNoticeSignature(signed, wrongType)).toEqual({ ok: false, reason: 'malformed', kid: 'k1' });
  });
});
