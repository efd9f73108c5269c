import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NoticeSigner, noticeSignerFromEnv } from '../../examples/hub/notice-signer.js';
import { canonicalJson, noticeSigningInput, verifyNoticeSignature } from '../../src/hub/notice-signature.js';
import { resolveOptions } from '../../src/options.js';
import { noticeVerifier, parseNotice } from '../../src/watch/notice.js';

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const keyPair = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ed25519');
const pem = (key: KeyObject): string => key.export({ type: key.type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }).toString();

let seq = 0;
/** A fresh service name per case: parseNotice caches the last valid text per service. */
const svc = (): string => `sig-svc-${++seq}`;
const notice = (service: string, extra: Record<string, unknown> = {}) => ({
  service_name: service,
  config: { operational: { batch_size: 150, ratio: 0.25 }, tags: ['a', 'b'] },
  version: '1.0.1',
  updated_at: 1_700_000_000_000,
  updated_by: 'ops',
  revision: 7,
  action: 'updated',
  ...extra,
});

describe('canonicalJson (RFC 8785 for notice values)', () => {
  it('sorts keys by UTF-16 code units, drops whitespace, writes numbers as ECMAScript does', () => {
    expect(canonicalJson({ b: 1, a: [1, 'x', null, true, { d: 1.0, c: 1e21 }] })).toBe('{"a":[1,"x",null,true,{"c":1e+21,"d":1}],"b":1}');
    // RFC 8785 §3.2.3 ordering: "\r" < "1" < "a" < "€" < "😀" (a surrogate pair sorts by its first unit).
    expect(canonicalJson({ '😀': 5, '€': 4, a: 3, '1': 2, '\r': 1 })).toBe('{"\\r":1,"1":2,"a":3,"€":4,"😀":5}');
    expect(canonicalJson({ a: undefined, b: 'é\u2028"' })).toBe('{"b":"é\u2028\\""}');
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ f: () => 1 } as unknown as Record<string, unknown>)).toThrow(TypeError);
  });

  it('signs the context line + canonical JSON of everything but sig', () => {
    const bytes = new TextDecoder().decode(noticeSigningInput({ sig: 'x', service_name: 's', kid: 'k1' }));
    expect(bytes).toBe('central-hub-notice-v1\n{"kid":"k1","service_name":"s"}');
  });
});

describe('signed notices: hub signer → client parseNotice', () => {
  const hubKey = keyPair();
  const signer = new NoticeSigner({ key: pem(hubKey.privateKey), keyId: 'hub-2026-11' });
  const verifier = noticeVerifier({ 'hub-2026-11': pem(hubKey.publicKey) });

  it('round trip: a signed notice is verified; the fields are additive (kid, sig)', () => {
    const service = svc();
    const signed = signer.sign(notice(service));
    expect(signed.kid).toBe('hub-2026-11');
    expect(signed.sig).toMatch(/^[A-Za-z0-9_-]{86}$/); // 64 bytes, base64url without padding
    const r = parseNotice(service, enc(signed), undefined, verifier);
    expect(r).toMatchObject({ ok: true, verified: true });
    if (r.ok) {
      expect(r.unverified).toBeUndefined();
      expect(r.notice.config).toEqual(notice(service).config);
    }
  });

  it('is robust to re-serialization: other key order, whitespace, number spelling', () => {
    const service = svc();
    const signed = signer.sign(notice(service));
    const { sig, ...rest } = signed;
    const reordered = `{ "sig": "${sig}",\n  ${Object.keys(rest)
      .reverse()
      .map((k) => `${JSON.stringify(k)} : ${JSON.stringify((rest as Record<string, unknown>)[k])}`)
      .join(' ,\n ')} }`.replace('"ratio":0.25', '"ratio":2.5e-1');
    expect(reordered).toContain('2.5e-1');
    expect(parseNotice(service, enc(reordered), undefined, verifier)).toMatchObject({ ok: true, verified: true });
  });

  it('a tampered config, revision or kid does not verify: NOTICE_UNVERIFIED, still a hint', () => {
    const service = svc();
    const signed = signer.sign(notice(service));
    const tampered = [
      { ...signed, config: { ...signed.config, operational: { batch_size: 1, ratio: 0.25 } } },
      { ...signed, revision: 8 },
      { ...signed, updated_by: 'mallory' },
    ];
    for (const t of tampered) {
      const r = parseNotice(service, enc(t), undefined, verifier);
      expect(r).toMatchObject({ ok: true, verified: false });
      if (r.ok) {
        expect(r.unverified?.code).toBe('NOTICE_UNVERIFIED');
        expect(r.unverified?.message).toMatch(/signature that does not verify/);
      }
    }
    // The same signature under another known kid: kid is signed, so this fails too.
    const other = keyPair();
    const two = noticeVerifier({ 'hub-2026-11': hubKey.publicKey, other: other.publicKey });
    const r = parseNotice(service, enc({ ...signed, kid: 'other' }), undefined, two);
    expect(r.ok && r.verified).toBe(false);
  });

  it('an unknown kid, a malformed sig, an unsigned notice while keys are configured → NOTICE_UNVERIFIED', () => {
    const service = svc();
    const cases: Array<[unknown, RegExp]> = [
      [{ ...signer.sign(notice(service)), kid: 'retired' }, /unknown key id \(kid "retired"\)/],
      [{ ...notice(service), kid: 'hub-2026-11', sig: 'not base64url!' }, /malformed signature/],
      [{ ...notice(service), kid: 'hub-2026-11', sig: 'AAAA' }, /malformed signature/],
      [{ ...notice(service), sig: 42 }, /malformed signature/],
      [notice(service), /is not signed/],
    ];
    for (const [payload, message] of cases) {
      const r = parseNotice(service, enc(payload), undefined, verifier);
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.verified).toBe(false);
        expect(r.unverified?.code).toBe('NOTICE_UNVERIFIED');
        expect(r.unverified?.message).toMatch(message);
      }
    }
  });

  it('without keys nothing is checked: signed and unsigned notices are accepted, verified false, nothing reported', () => {
    const service = svc();
    for (const payload of [signer.sign(notice(service)), notice(service), { ...notice(service), sig: 'garbage', kid: 1 }]) {
      const r = parseNotice(service, enc(payload));
      expect(r).toMatchObject({ ok: true, verified: false });
      if (r.ok) expect(r.unverified).toBeUndefined();
    }
  });

  it('the original hub format (config as a JSON string) signs and verifies as sent', () => {
    const service = svc();
    const original = { service_name: service, config: JSON.stringify({ batch_size: 100 }), version: '1.0.0', updated_at: 1, updated_by: 'admin' };
    const r = parseNotice(service, enc(signer.sign(original)), undefined, verifier);
    expect(r).toMatchObject({ ok: true, verified: true, notice: { config: { batch_size: 100 } } });
  });

  it('rotation: with two keys listed, notices of the old and the new key verify; once the old is dropped, its kid is unknown', () => {
    const service = svc();
    const next = keyPair();
    const nextSigner = new NoticeSigner({ key: next.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'), keyId: 'hub-2026-12' });
    const both = noticeVerifier({ 'hub-2026-11': pem(hubKey.publicKey), 'hub-2026-12': next.publicKey.export({ type: 'spki', format: 'der' }).toString('base64') });
    const oldNotice = signer.sign(notice(service, { revision: 8 }));
    const newNotice = nextSigner.sign(notice(service, { revision: 9 }));
    expect(parseNotice(service, enc(oldNotice), undefined, both)).toMatchObject({ ok: true, verified: true });
    expect(parseNotice(service, enc(newNotice), undefined, both)).toMatchObject({ ok: true, verified: true });
    const onlyNew = noticeVerifier({ 'hub-2026-12': next.publicKey });
    const r = parseNotice(service, enc(oldNotice), undefined, onlyNew);
    expect(r.ok && r.verified).toBe(false);
    if (r.ok) expect(r.unverified?.message).toMatch(/unknown key id/);
  });

  it('the per-service parse cache never lends one verifier’s result to another', () => {
    const service = svc();
    const text = enc(signer.sign(notice(service)));
    const impostor = noticeVerifier({ 'hub-2026-11': keyPair().publicKey }); // same kid, another key
    expect(parseNotice(service, text, undefined, verifier)).toMatchObject({ verified: true });
    expect(parseNotice(service, text)).toMatchObject({ verified: false });
    expect(parseNotice(service, text, undefined, impostor)).toMatchObject({ verified: false });
    expect(parseNotice(service, text, undefined, verifier)).toMatchObject({ verified: true });
  });

  it('verifyNoticeSignature never throws on junk', () => {
    const keys = verifier.keys;
    for (const junk of [{}, { sig: null, kid: null }, { sig: 'A'.repeat(86), kid: 'hub-2026-11' }, { sig: [], kid: {} }]) {
      expect(verifyNoticeSignature(junk as Record<string, unknown>, keys).ok).toBe(false);
    }
  });
});

describe('keys and options', () => {
  it('NoticeSigner takes PEM, base64 PKCS#8 or a KeyObject, derives a default kid, refuses other keys without echoing them', () => {
    const { privateKey } = keyPair();
    const fromPem = new NoticeSigner({ key: pem(privateKey) });
    expect(fromPem.keyId).toMatch(/^ed25519:[A-Za-z0-9_-]{16}$/);
    expect(new NoticeSigner({ key: privateKey }).keyId).toBe(fromPem.keyId);
    expect(fromPem.publicKeyPem).toContain('BEGIN PUBLIC KEY');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    expect(() => new NoticeSigner({ key: rsa })).toThrow(/Ed25519/);
    expect(() => new NoticeSigner({ key: 'c2VjcmV0LW5vdC1hLWtleQ==' })).toThrow(/neither/);
    expect(() => new NoticeSigner({ key: privateKey, keyId: 'has space' })).toThrow(/key id/);
    expect(() => noticeSignerFromEnv({ HUB_NOTICE_SIGNING_KEY: 'c2VjcmV0LW5vdC1hLWtleQ==' })).toThrow(/^HUB_NOTICE_SIGNING_KEY: /);
    try {
      noticeSignerFromEnv({ HUB_NOTICE_SIGNING_KEY: 'c2VjcmV0LW5vdC1hLWtleQ==' });
    } catch (error) {
      expect((error as Error).message).not.toContain('c2VjcmV0');
    }
    expect(noticeSignerFromEnv({})).toBeUndefined();
    expect(() => noticeSignerFromEnv({ HUB_NOTICE_KEY_ID: 'k' })).toThrow(/without HUB_NOTICE_SIGNING_KEY/);
    expect(noticeSignerFromEnv({ HUB_NOTICE_SIGNING_KEY: pem(privateKey), HUB_NOTICE_KEY_ID: 'k1' })?.keyId).toBe('k1');
  });

  it('nats.verifyKeys is validated by resolveOptions (INVALID_OPTIONS naming the kid, never the key)', () => {
    const base = { hubUrl: 'http://127.0.0.1:1', services: { 'svc-a': {} } };
    const { publicKey } = keyPair();
    expect(resolveOptions({ ...base, nats: { servers: 'nats://127.0.0.1:4222', verifyKeys: { k1: pem(publicKey), k2: publicKey } } }).nats?.verifyKeys).toBeDefined();
    const x25519 = generateKeyPairSync('x25519').publicKey;
    const cases: Array<Record<string, string | KeyObject>> = [{}, { k1: 'not a key' }, { k1: x25519 }, { 'bad kid': publicKey }, 'k1' as unknown as Record<string, string>];
    for (const verifyKeys of cases) {
      let error: unknown;
      try {
        resolveOptions({ ...base, nats: { servers: 'nats://127.0.0.1:4222', verifyKeys } });
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'INVALID_OPTIONS' });
      expect((error as Error).message).toMatch(/verifyKeys/);
      expect((error as Error).message).not.toContain('not a key');
    }
  });
});
