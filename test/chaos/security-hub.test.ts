/**
 * Security rows, hub side: S1 key comparison, S3 scope matrix, S5 wrong-key storm, S6 canary key/secret
 * never in hub logs or error bodies (debug logging, hub as a child process), S7 secret-looking keys and
 * values, S9 no stack traces / SQL / paths in error bodies, S10 prototype pollution through the body.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isForbiddenKey } from '../../src/hub/wire.js';
import type { Hub } from '../../examples/hub/server.js';
import { buildHub } from '../../examples/hub/server.js';
import { KEYS, PG_URL, startHub } from '../helpers/hub-fixtures.js';
import { cleanupLab, startHubProcess, startTcpProxy } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive, expectRuns } from './liveness.js';

// S1: every comparison goes through timingSafeEqual; count the calls and the buffer lengths.
const compares: { a: number; b: number }[] = [];
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return {
    ...actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compares.push({ a: a.byteLength, b: b.byteLength });
      return actual.timingSafeEqual(a, b);
    },
  };
});

const API = '/api/v1/config';
const LEAK = /\bat [\w.<>]+ \(|\.ts:\d+|\.js:\d+|\/work\/|node_modules|\bSELECT\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|config_audit_log|service_configs|config_outbox|pg_|SQLSTATE|ECONNREFUSED/i;

describe('S1: API keys hashed to a fixed length and compared in constant time', () => {
  it('S1: one 32-byte timingSafeEqual per configured key, whatever the presented key, no early exit', async () => {
    const { Authenticator } = await import('../../examples/hub/auth.js');
    const keys = [
      { name: 'a', key: 'k-aaaaaaaaaaaaaaaa', scopes: ['read:*'] },
      { name: 'b', sha256: createHash('sha256').update('k-bbbb').digest('hex'), scopes: ['read:*'] },
      { name: 'c', key: 'x', scopes: ['read:*'] },
    ];
    const auth = new Authenticator({ keys, failureLimit: 1_000_000 });
    let comparisons = 0;
    for (const presented of ['k-aaaaaaaaaaaaaaaa', 'k-bbbb', 'x', 'wrong', 'k'.repeat(10_000), 'é', 'k-aaaaaaaaaaaaaaab']) {
      compares.length = 0;
      try {
        auth.authenticate(presented, '10.0.0.1');
      } catch {
        // 401 for the wrong ones
      }
      expect(compares, presented.slice(0, 20)).toEqual(keys.map(() => ({ a: 32, b: 32 })));
      comparisons += compares.length;
    }
    expectLive('S1', 'timingSafeEqual calls observed (7 presented keys × 3 configured)', comparisons, 21);
    expect(auth.authenticate('k-bbbb', '10.0.0.2').name).toBe('b');
    expect(auth.authenticate('x', '10.0.0.2').name).toBe('c');
    recordFigure({ row: 'S1', name: 'comparisons per request = configured keys, all 32-byte constant-time', value: true });
  });
});

describe('S3/S5/S7/S9/S10 on PGlite', () => {
  let hub: Hub;
  const services = ['polygon-feed', 'tick-aggregator', 'orders-api'];
  const admin = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };

  beforeAll(async () => {
    ({ hub } = await startHub('pglite', { seed: false, authFailureLimit: 20 }));
    for (const s of services) {
      const r = await hub.app.inject({ method: 'POST', url: `${API}/${s}?version=1.0.0`, headers: admin, payload: '{"a":1}' });
      expect(r.statusCode).toBe(201);
    }
  });
  afterAll(async () => {
    await hub?.close();
  });

  it('S3: keys × routes × services: no unauthorised 2xx; list filtered by scope', async () => {
    const keys = [KEYS.admin, KEYS.reader, KEYS.polygon];
    const may = (key: (typeof keys)[number], access: 'read' | 'write', service: string) =>
      key.scopes.some((s) => {
        const [a, glob] = s.split(':') as [string, string];
        return a === access && new RegExp(`^${glob.replace(/\*/g, '.*')}$`).test(service);
      });
    const routes: { method: 'GET' | 'POST' | 'PATCH' | 'DELETE'; path: (s: string) => string; access: 'read' | 'write'; payload?: string }[] = [
      { method: 'GET', path: (s) => `${API}/${s}`, access: 'read' },
      { method: 'GET', path: (s) => `${API}/history/${s}`, access: 'read' },
      { method: 'POST', path: (s) => `${API}/${s}`, access: 'write', payload: '{"a":2}' },
      { method: 'PATCH', path: (s) => `${API}/${s}`, access: 'write', payload: '{"b":3}' },
      { method: 'POST', path: (s) => `${API}/rollback/${s}`, access: 'write', payload: '{"revision":1}' },
      { method: 'DELETE', path: (s) => `${API}/${s}`, access: 'write' },
    ];
    let unauthorised2xx = 0;
    let checked = 0;
    // Non-admin keys first, so that the services still exist when they are tried; DELETE last.
    for (const key of [KEYS.reader, KEYS.polygon]) {
      for (const route of routes) {
        for (const service of services) {
          const r = await hub.app.inject({
            method: route.method,
            url: route.path(service),
            // DELETE needs If-Match (428 otherwise); `*`: whatever the revision is at this point.
            headers: { 'x-api-key': key.key, 'content-type': 'application/json', ...(route.method === 'DELETE' ? { 'if-match': '*' } : {}) },
            ...(route.payload === undefined ? {} : { payload: route.payload }),
          });
          checked++;
          const allowed = may(key, route.access, service);
          if (!allowed) {
            if (r.statusCode < 300) unauthorised2xx++;
            expect(r.statusCode, `${key.name} ${route.method} ${route.path(service)}`).toBe(403);
          } else {
            expect(r.statusCode, `${key.name} ${route.method} ${route.path(service)} ${r.body}`).toBeLessThan(300);
            if (route.method === 'DELETE') {
              await hub.app.inject({ method: 'POST', url: `${API}/${service}`, headers: admin, payload: '{"a":1}' });
            }
          }
        }
      }
      const list = await hub.app.inject({ method: 'GET', url: `${API}/`, headers: { 'x-api-key': key.key } });
      const names = (list.json() as { services: { service_name: string }[] }).services.map((s) => s.service_name);
      expect(names.every((n) => may(key, 'read', n))).toBe(true);
    }
    console.log(`[S3] requests=${checked} unauthorised_2xx=${unauthorised2xx}`);
    recordFigure({ row: 'S3', name: `unauthorised 2xx over ${checked} key × route × service requests`, value: unauthorised2xx, unit: 'count' });
    expect(unauthorised2xx).toBe(0);
    expectLive('S3', 'key × route × service requests answered', checked, 36);
  });

  it('S5: 10 000 wrong keys from one address → 429 after the threshold, one uniform 401 body', async () => {
    const bodies401 = new Set<string>();
    const headers401 = new Set<string>();
    let n401 = 0;
    let n429 = 0;
    let other = 0;
    let first429 = -1;
    for (let i = 0; i < 10_000; i++) {
      const presented = i % 3 === 0 ? undefined : i % 3 === 1 ? `wrong-${i}` : `${KEYS.admin.key}${i}`;
      const r = await hub.app.inject({
        method: 'GET',
        url: `${API}/${services[i % 3]}`,
        remoteAddress: '10.9.9.9',
        headers: presented === undefined ? {} : { 'x-api-key': presented },
      });
      if (r.statusCode === 401) {
        n401++;
        bodies401.add(r.body);
        headers401.add(`${r.headers['content-type']}|${r.headers['www-authenticate'] ?? ''}`);
      } else if (r.statusCode === 429) {
        n429++;
        if (first429 < 0) first429 = i;
        expect(r.headers['retry-after']).toMatch(/^\d+$/);
      } else other++;
    }
    // Another address is not locked out by the first one.
    const elsewhere = await hub.app.inject({ method: 'GET', url: `${API}/${services[0]}`, remoteAddress: '10.9.9.10', headers: { 'x-api-key': KEYS.admin.key } });
    console.log(`[S5] 401=${n401} 429=${n429} other=${other} first_429_at=${first429} distinct_401_bodies=${bodies401.size}`);
    recordFigure({ row: 'S5', name: 'distinct 401 bodies over 10 000 wrong keys', value: bodies401.size, unit: 'count' });
    recordFigure({ row: 'S5', name: 'attempts before the first 429', value: first429, unit: 'count' });
    expect(bodies401.size).toBe(1);
    expect(headers401.size).toBe(1);
    expect(n401).toBe(20);
    expect(n429).toBe(10_000 - 20);
    expect(other).toBe(0);
    expect(elsewhere.statusCode).toBe(200);
    expectLive('S5', 'wrong-key requests answered (401 + 429)', n401 + n429, 10_000);
  });

  it('S7: secret-looking keys (any case/separator/depth) or secret values (private keys, URL passwords, JWTs) → 422, nothing written', async () => {
    const service = services[2]!;
    const before = (await hub.store.get(service))!.revision;
    const needle = fc.constantFrom('password', 'passwd', 'pwd', 'pass', 'secret', 'token', 'private_key', 'api_key', 'apikey', 'credential', 'credentials');
    // Keys are matched on words (issue 10): the plural `s` only where the plural is a secret noun too
    // (`tokens` counts things: max_tokens; `passwds`, `credentialss` are not words).
    const PLURAL = new Set(['password', 'secret', 'private_key', 'api_key', 'apikey', 'credential']);
    const spelled = fc
      .tuple(needle, fc.constantFrom('', 'db_', 'x-', 'My.'), fc.constantFrom('', '_value', 's', '-2'), fc.boolean(), fc.constantFrom('_', '-', '.', ' ', ''))
      .filter(([n, , post]) => post !== 's' || PLURAL.has(n))
      .map(([n, pre, post, upper, sep]) => {
        const k = `${pre}${n.replace('_', sep)}${post}`;
        return upper ? k.toUpperCase() : k;
      });
    const pem = fc.constantFrom(
      '-----BEGIN PRIVATE KEY-----\nMIIE',
      '-----BEGIN RSA PRIVATE KEY-----',
      'x -----BEGIN EC PRIVATE KEY----- y',
      '-----begin openssh private key-----',
      '-----BEGIN PGP PRIVATE KEY BLOCK-----',
      'postgres://hub:pw@db/test',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln',
    );
    const payload = fc.oneof(
      // Not null: in a merge patch `"password": null` removes a key (stores nothing) and is allowed.
      // No `__proto__`/`constructor`/`prototype` keys inside: those bodies are refused earlier, with 400 (B5).
      fc.tuple(spelled, fc.jsonValue({ maxDepth: 1 }).filter((v) => v !== null && !hasForbiddenKey(v)), fc.integer({ min: 0, max: 4 })).map(([k, v, depth]) => {
        let obj: unknown = { [k]: v };
        for (let d = 0; d < depth; d++) obj = d % 2 === 0 ? { nested: obj } : { list: [1, obj] };
        return obj;
      }),
      fc.tuple(pem, fc.constantFrom('note', 'cert', 'data')).map(([v, k]) => ({ ok: 1, [k]: v })),
    );
    let accepted = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(payload, fc.constantFrom('POST', 'PATCH'), async (body, method) => {
        runs++;
        const r = await hub.app.inject({ method, url: `${API}/${service}`, headers: admin, payload: JSON.stringify(body) });
        if (r.statusCode < 300) accepted++;
        expect(r.statusCode, `${method} ${JSON.stringify(body)} → ${r.body}`).toBe(422);
        expect(r.body).not.toMatch(/BEGIN|begin|:pw@|eyJhbGci/);
      }),
      { numRuns: 300 },
    );
    expect((await hub.store.get(service))!.revision).toBe(before);
    recordFigure({ row: 'S7', name: `secret-looking bodies accepted over ${runs}`, value: accepted, unit: 'count' });
    expect(accepted).toBe(0);
    expectRuns('S7', runs, 300);
  });

  it('S9: error bodies carry no stack trace, SQL or file path (bad JSON, bad names, bad types, unknown routes)', async () => {
    const probes: { method: 'GET' | 'POST' | 'PATCH'; url: string; payload?: string; ct?: string }[] = [
      { method: 'POST', url: `${API}/orders-api`, payload: '{"a":' },
      { method: 'POST', url: `${API}/orders-api`, payload: '{"a":"\\u0000"}' },
      { method: 'POST', url: `${API}/orders-api`, payload: 'x'.repeat(2 * 1024 * 1024) },
      { method: 'POST', url: `${API}/orders-api`, payload: 'a=1', ct: 'application/x-www-form-urlencoded' },
      { method: 'POST', url: `${API}/orders-api`, payload: 'hi', ct: 'text/plain' },
      { method: 'PATCH', url: `${API}/orders-api`, payload: '[1]' },
      { method: 'GET', url: `${API}/Bad.Name` },
      { method: 'GET', url: `${API}/%E0%A4%A` },
      { method: 'GET', url: `${API}/history/orders-api?limit=abc` },
      { method: 'POST', url: `${API}/rollback/orders-api`, payload: '{"revision":999999}' },
      { method: 'POST', url: `${API}/rollback/orders-api`, payload: '{"revision":"1; DROP TABLE x"}' },
      { method: 'GET', url: `${API}/nope-${Date.now()}` },
      { method: 'GET', url: '/etc/passwd' },
    ];
    let leaking = 0;
    let answered = 0;
    for (const p of probes) {
      const r = await hub.app.inject({
        method: p.method,
        url: p.url,
        headers: { 'x-api-key': KEYS.admin.key, 'content-type': p.ct ?? 'application/json' },
        ...(p.payload === undefined ? {} : { payload: p.payload }),
      });
      expect(r.statusCode, p.url).toBeGreaterThanOrEqual(400);
      expect(r.statusCode, `${p.url} ${r.body}`).toBeLessThan(500);
      expect(r.json()).toHaveProperty('detail');
      answered++;
      if (LEAK.test(r.body)) {
        leaking++;
        console.log(`[S9] leaking: ${p.method} ${p.url} → ${r.body.slice(0, 300)}`);
      }
    }
    recordFigure({ row: 'S9', name: 'leaking error bodies (bad input)', value: leaking, unit: 'count' });
    expect(leaking).toBe(0);
    expectLive('S9', 'bad-input error bodies checked', answered, probes.length);
  });

  it('S10: prototype pollution through POST/PATCH bodies and the query string never reaches Object.prototype', async () => {
    const bodies = [
      '{"__proto__":{"polluted":1}}',
      '{"a":{"__proto__":{"polluted":1}}}',
      '{"constructor":{"prototype":{"polluted":1}}}',
      '{"a":[{"__proto__":{"polluted":1}}]}',
      '{"a":1,"__proto__":{"polluted":1}}',
    ];
    let polluted = 0;
    let refused = 0;
    for (const method of ['POST', 'PATCH'] as const) {
      for (const payload of bodies) {
        const r = await hub.app.inject({ method, url: `${API}/orders-api`, headers: admin, payload });
        expect(r.statusCode, `${method} ${payload}`).toBe(400);
        refused++;
        if (({} as Record<string, unknown>).polluted !== undefined) polluted++;
      }
    }
    // Merge patch with keys that are harmless as data but dangerous to a naive merge.
    const r = await hub.app.inject({ method: 'PATCH', url: `${API}/orders-api`, headers: admin, payload: '{"toString":{"x":1},"hasOwnProperty":null}' });
    expect(r.statusCode).toBe(200);
    const q = await hub.app.inject({
      method: 'GET',
      url: `${API}/orders-api?__proto__[polluted]=1&constructor[prototype][polluted]=1&__proto__.polluted=1`,
      headers: admin,
    });
    expect(q.statusCode).toBe(200);
    const rb = await hub.app.inject({ method: 'POST', url: `${API}/rollback/orders-api`, headers: admin, payload: '{"__proto__":{"polluted":1},"revision":1}' });
    expect(rb.statusCode).toBe(400);
    if (({} as Record<string, unknown>).polluted !== undefined) polluted++;
    recordFigure({ row: 'S10', name: 'Object.prototype polluted (hub bodies)', value: polluted, unit: 'count' });
    expect(polluted).toBe(0);
    expect(Object.prototype).not.toHaveProperty('polluted');
    expectLive('S10', 'polluting bodies sent and refused', refused, bodies.length * 2);
  });
});

describe('S9: DB down → 503 without SQL, stack traces or paths', () => {
  it('S9: PostgreSQL behind a broken proxy → 503 + Retry-After, clean body', async () => {
    const proxy = await startTcpProxy({ target: { port: Number(new URL(PG_URL).port || 5432) } });
    const url = new URL(PG_URL);
    url.port = String(proxy.port);
    let hub: Hub | undefined;
    try {
      hub = await buildHub({ databaseUrl: url.toString(), apiKeys: Object.values(KEYS), seed: false, connectionTimeoutMs: 500, statementTimeoutMs: 1000 });
      await proxy.break('reset');
      let leaking = 0;
      let unavailable = 0;
      for (const [method, path, payload] of [
        ['GET', `${API}/any-svc`, undefined],
        ['POST', `${API}/any-svc`, '{"a":1}'],
        ['GET', `${API}/history/any-svc`, undefined],
        ['GET', `${API}/`, undefined],
        ['GET', '/health', undefined],
      ] as const) {
        const r = await hub.app.inject({
          method,
          url: path,
          headers: { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' },
          ...(payload === undefined ? {} : { payload }),
        });
        expect(r.statusCode, `${method} ${path} ${r.body}`).toBe(503);
        expect(r.headers['retry-after']).toBeDefined();
        unavailable++;
        if (LEAK.test(r.body)) leaking++;
      }
      expectLive('S9', 'requests answered 503 with the database cut (fault injected)', unavailable, 5);
      recordFigure({ row: 'S9', name: 'leaking error bodies (DB down)', value: leaking, unit: 'count' });
      expect(leaking).toBe(0);
    } finally {
      await hub?.close().catch(() => {});
      await proxy.close();
    }
  });
});

describe('S6: canary key and canary secret never in hub logs or error bodies (debug logging)', () => {
  const CANARY_KEY = `canary-key-${Date.now()}-7f3a9c`;
  const CANARY_SECRET = `canary-secret-${Date.now()}-b81e2d`;
  afterAll(async () => {
    await cleanupLab();
  });

  it('S6: the hub process at HUB_LOG_LEVEL=trace never writes or returns the canaries', { timeout: 120_000 }, async () => {
    // A broken HUB_API_KEYS holding the canary must not be echoed at startup either.
    const bad = await import('../helpers/lab/index.js').then((lab) =>
      lab.spawnProcess(process.execPath, ['--import', 'tsx', 'examples/hub/main.ts'], {
        name: 'hub-bad-keys',
        env: { PORT: '0', HUB_API_KEYS: JSON.stringify([{ name: 'c', key: CANARY_KEY, scopes: [`bad scope ${CANARY_KEY}`] }]) },
      }),
    );
    await bad.exited;
    expect(bad.output()).toContain('HUB_API_KEYS is invalid');

    const hub = await startHubProcess({
      HUB_LOG_LEVEL: 'trace',
      HUB_API_KEYS: JSON.stringify([{ name: 'canary', key: CANARY_KEY, scopes: ['read:*', 'write:*'] }]),
      DATABASE_URL: undefined,
      NATS_URL: undefined,
      DISABLE_AUTH: undefined,
    }, { timeoutMs: 60_000 });
    const bodies: string[] = [];
    const call = async (method: string, path: string, key: string | undefined, body?: string, ct = 'application/json') => {
      const r = await fetch(`${hub.url}${path}`, {
        method,
        headers: { ...(key === undefined ? {} : { 'x-api-key': key }), 'content-type': ct },
        ...(body === undefined ? {} : { body }),
      });
      const text = await r.text();
      bodies.push(text);
      return r.status;
    };
    expect(await call('POST', `${API}/canary-svc`, CANARY_KEY, '{"a":1}')).toBe(201);
    expect(await call('GET', `${API}/canary-svc`, CANARY_KEY)).toBe(200);
    expect(await call('POST', `${API}/canary-svc`, CANARY_KEY, JSON.stringify({ db_password: CANARY_SECRET }))).toBe(422);
    expect(await call('PATCH', `${API}/canary-svc`, CANARY_KEY, JSON.stringify({ nested: { api_key: CANARY_SECRET } }))).toBe(422);
    expect(await call('POST', `${API}/canary-svc`, CANARY_KEY, `{"token":"${CANARY_SECRET}"`)).toBe(400);
    expect(await call('POST', `${API}/canary-svc`, CANARY_KEY, JSON.stringify({ __proto__x: CANARY_SECRET, constructor: CANARY_SECRET }))).toBe(400);
    expect(await call('POST', `${API}/canary-svc`, CANARY_KEY, `password=${CANARY_SECRET}`, 'application/x-www-form-urlencoded')).toBe(415);
    expect(await call('GET', `${API}/canary-svc`, `${CANARY_KEY}x`)).toBe(401);
    expect(await call('GET', `${API}/canary-svc`, CANARY_KEY.slice(0, -1))).toBe(401);
    expect(await call('GET', `${API}/Bad.Name`, CANARY_KEY)).toBe(400);
    expect(await call('GET', '/health', undefined)).toBe(200);
    await hub.stop();
    const logs = hub.output() + bad.output();
    const count = (s: string, needle: string) => s.split(needle).length - 1;
    const inLogs = count(logs, CANARY_KEY) + count(logs, CANARY_SECRET) + count(logs, CANARY_KEY.slice(0, -1));
    const inBodies = bodies.reduce((n, b) => n + count(b, CANARY_KEY) + count(b, CANARY_SECRET) + count(b, CANARY_KEY.slice(0, -1)), 0);
    expect(logs.length).toBeGreaterThan(0);
    console.log(`[S6] log_bytes=${logs.length} canary_in_logs=${inLogs} canary_in_bodies=${inBodies}`);
    recordFigure({ row: 'S6', name: 'canary key/secret occurrences in hub logs (trace level)', value: inLogs, unit: 'count' });
    recordFigure({ row: 'S6', name: 'canary key/secret occurrences in hub error bodies', value: inBodies, unit: 'count' });
    expect(inLogs).toBe(0);
    expect(inBodies).toBe(0);
    expectLive('S6', 'hub answers searched for the canaries', bodies.length, 11);
    expectLive('S6', 'hub log lines searched for the canaries (trace level)', logs.split('\n').length, 20);
  });
});

function hasForbiddenKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some(hasForbiddenKey);
  return Object.keys(value).some((key) => isForbiddenKey(key) || hasForbiddenKey((value as Record<string, unknown>)[key]));
}
