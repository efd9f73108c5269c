/**
 * B2 — fast-check bodies to POST/PATCH: 2xx only for valid objects, never a 5xx, never a row without its
 * audit row. Runs against the reference hub on PGlite and on the shared PostgreSQL (own schema).
 *
 * The generator builds JSON *text* (so duplicate keys, `__proto__`, U+0000, lone surrogates, huge or
 * non-finite numbers and deep nesting all reach the hub as sent), plus raw arbitrary strings.
 * The oracle is the documented contract (issue 3 §3 "Bad input"), written independently of the hub.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { dropSchema, KEYS, STORE_KINDS, type StoreKind, startHub, uniqueService } from '../helpers/hub-fixtures.js';
import { recordFigure } from './figures.js';
import { expectLive, expectRuns } from './liveness.js';

const API = '/api/v1/config';
const RUNS = Number(process.env.CHAOS_B2_RUNS ?? 250);
const MAX_DEPTH = 64;
/**
 * Secret keys, per the documented rule (README "Bad input", issue 10): the key's words, without trailing
 * numbers and value wrappers, end with a secret phrase, or its last word ends with a phrase of 5+ letters.
 */
const SECRET_PHRASES = [
  'password', 'passwords', 'passwd', 'pwd', 'pass', 'passphrase', 'passcode', 'secret', 'secrets', 'token',
  'access tokens', 'api tokens', 'auth tokens', 'bearer tokens', 'refresh tokens', 'session tokens',
  'credential', 'credentials', 'api key', 'api keys', 'private key', 'private keys', 'secret key',
  'signing key', 'encryption key', 'master key', 'access key',
];
const WRAPPERS = /(?: (?:value|values|val|str|string|text|raw|plain|plaintext|clear|cleartext|b64|base64|hex|hash|encoded|enc|encrypted|data|bytes)| [0-9]+|(?<=[a-z])[0-9]+)$/;
function secretKey(key: string): boolean {
  let words = ` ${key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2').toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim()}`;
  for (let prev = ''; prev !== words; ) {
    prev = words;
    words = words.replace(WRAPPERS, '');
  }
  const last = words.slice(words.lastIndexOf(' ') + 1);
  return SECRET_PHRASES.some((p) => words.endsWith(` ${p}`) || (p.replace(/ /g, '').length >= 5 && last.endsWith(p.replace(/ /g, ''))));
}

/** Secret values: private key blocks (any case), URL userinfo with a password, `password=`, a JWT. */
function secretValue(v: string): boolean {
  if (/-----\s*BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?\s*-----|PuTTY-User-Key-File-\d+:/i.test(v)) return true;
  if (/[a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:[^\s/?#@]+@/i.test(v)) return true;
  if (/(^|[\s;?&])(password|passwd|pwd)\s*=\s*[^\s;]/i.test(v)) return true;
  return [...v.matchAll(/(?<![\w-])(ey[\w-]{2,})\.[\w-]+\.[\w-]*/g)].some((m) => {
    try {
      return typeof JSON.parse(Buffer.from(m[1]!, 'base64url').toString()).alg === 'string';
    } catch {
      return false;
    }
  });
}
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

type Verdict = 'valid' | 'bad-request' | 'secret';

/**
 * The contract, independently: what the hub must answer for this body text. In a merge patch,
 * `"password": null` removes a key and stores nothing, so it is allowed (PATCH only).
 */
function classify(text: string, method: 'POST' | 'PATCH'): Verdict {
  if (text.length === 0) return 'bad-request';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'bad-request';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'bad-request';
  let secret = false;
  const badText = (s: string) => s.includes('\u0000') || !isWellFormed(s);
  const walk = (v: unknown, depth: number, underSecret: boolean): boolean => {
    if (typeof v === 'number') return Number.isFinite(v);
    if (typeof v === 'string') {
      if (badText(v)) return false;
      if (!underSecret && secretValue(v)) secret = true;
      return true;
    }
    if (typeof v !== 'object' || v === null) return true;
    if (depth >= MAX_DEPTH) return false;
    if (Array.isArray(v)) return v.every((x) => walk(x, depth + 1, underSecret));
    for (const [k, child] of Object.entries(v)) {
      if (FORBIDDEN.has(k) || badText(k)) return false;
      const isSecret = secretKey(k);
      if (isSecret && !(method === 'PATCH' && child === null)) secret = true;
      if (!walk(child, depth + 1, underSecret || isSecret)) return false;
    }
    return true;
  };
  if (!walk(value, 0, false)) return 'bad-request';
  return secret ? 'secret' : 'valid';
}

function isWellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

/** Keys that matter: ordinary, forbidden, secret-looking in several spellings, unstorable text. */
const keyArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '__proto__',
      'constructor',
      'prototype',
      'password',
      'DB_Password',
      'api-key',
      'apiKey',
      'private.key',
      'x_token',
      'Secret',
      'credentials',
      'tokenizer',
      'max_tokens',
      'token_bucket_size',
      'passwordless_login',
      'pwd',
      'db_pass',
      'credential',
      'secret_value2',
      'a\u0000',
      '\ud800',
      'ok',
      'toString',
      'hasOwnProperty',
      'valueOf',
    ),
  },
);

const leafText = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 0 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }).map((s) => JSON.stringify(s)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '"x\\u0000y"',
      '"\\ud800"',
      '"\\udc00x"',
      '"\\ud83d\\ude00"',
      '1e309',
      '-1e309',
      '123456789012345678901234567890',
      '-0',
      '0.1e-400',
      '"-----BEGIN RSA PRIVATE KEY-----\\nMIIB"',
      '"-----begin pgp private key block-----"',
      '"postgres://hub:pw@db/test"',
      '"postgres://hub@db/test"',
      '"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"',
      '"api.example.com"',
    ),
  },
);

/** JSON text trees (objects are written key by key, so duplicates and `__proto__` survive). */
const { text: jsonText } = fc.letrec<{ text: string }>((tie) => ({
  text: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafText,
    fc.array(tie('text'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
    fc
      .array(fc.tuple(keyArb, tie('text')), { maxLength: 5 })
      .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  ),
}));

const deepText = fc.integer({ min: 60, max: 70 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`);

const bodyArb = fc.oneof(
  { weight: 8, arbitrary: jsonText },
  { weight: 1, arbitrary: deepText },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);

/** Key-order-insensitive, -0-insensitive serialization (jsonb reorders keys). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

describe.each(STORE_KINDS)('B2 on %s', (kind: StoreKind) => {
  let hub: Hub;
  let schema: string | undefined;
  const service = uniqueService('b2');
  const headers = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };

  beforeAll(async () => {
    ({ hub, schema } = await startHub(kind, { seed: false }));
    const r = await hub.app.inject({ method: 'POST', url: `${API}/${service}`, headers, payload: '{"seed":1}' });
    expect(r.statusCode).toBe(201);
  });
  afterAll(async () => {
    await hub?.close();
    if (schema !== undefined) await dropSchema(schema);
  });

  it(`B2: arbitrary bodies to POST/PATCH (${RUNS} runs): 2xx only for valid objects, never 5xx, every row has its audit row`, async () => {
    let fivexx = 0;
    let accepted = 0;
    let rejected = 0;
    const statuses = new Map<number, number>();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(bodyArb, fc.constantFrom('POST', 'PATCH'), async (text, method) => {
        runs++;
        const before = (await hub.store.get(service))!;
        const r = await hub.app.inject({ method, url: `${API}/${service}`, headers, payload: text });
        statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
        if (r.statusCode >= 500) fivexx++;
        const verdict = classify(text, method);
        expect(r.statusCode, `${method} ${JSON.stringify(text).slice(0, 200)} → ${r.body.slice(0, 200)}`).toBeLessThan(500);
        const after = (await hub.store.get(service))!;
        if (verdict === 'valid') {
          expect(r.statusCode, r.body.slice(0, 200)).toBe(200);
          accepted++;
          expect(after.revision).toBe(before.revision + 1);
          if (method === 'POST') expect(canonical(after.config)).toBe(canonical(JSON.parse(text)));
        } else {
          expect(r.statusCode, `${verdict}: ${JSON.stringify(text).slice(0, 200)} → ${r.body.slice(0, 200)}`).toBe(
            verdict === 'secret' ? 422 : 400,
          );
          rejected++;
          expect(after.revision).toBe(before.revision);
          expect(r.json()).toHaveProperty('detail');
        }
      }),
      { numRuns: RUNS },
    );
    // No row without its audit row: one audit row per revision, contiguous, and one per accepted write.
    const row = (await hub.store.get(service))!;
    const audit = await hub.store.sql.query<{ revision: string | number }>(
      'SELECT revision FROM config_audit_log WHERE service_name = $1 ORDER BY revision',
      [service],
    );
    expect(audit.map((a) => Number(a.revision))).toEqual(Array.from({ length: row.revision }, (_, i) => i + 1));
    expect(row.revision).toBe(1 + accepted);
    const orphans = await hub.store.sql.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM service_configs s WHERE NOT EXISTS
         (SELECT 1 FROM config_audit_log a WHERE a.service_name = s.service_name AND a.revision = s.revision)`,
    );
    expect(Number(orphans[0]!.n)).toBe(0);
    console.log(`[B2 ${kind}] runs=${RUNS} accepted=${accepted} rejected=${rejected} 5xx=${fivexx} statuses=${JSON.stringify(Object.fromEntries(statuses))}`);
    recordFigure({ row: 'B2', name: `5xx over ${RUNS} arbitrary POST/PATCH bodies (${kind})`, value: fivexx, unit: 'count' });
    recordFigure({ row: 'B2', name: `rows without audit row (${kind})`, value: Number(orphans[0]!.n), unit: 'count' });
    expect(fivexx).toBe(0);
    expectRuns('B2', runs, RUNS);
    expectLive('B2', `bodies the hub answered (${kind})`, accepted + rejected, RUNS);
    expectLive('B2', `valid bodies accepted (${kind})`, accepted);
    expectLive('B2', `invalid bodies refused (${kind})`, rejected);
  });
});
