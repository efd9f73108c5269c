/**
 * B5 — hostile requests to the hub over real sockets (PostgreSQL, own schema): 2 MiB body,
 * `__proto__`/`constructor` keys, 100 000-deep nesting, NaN / 1e309, array or null body, text/plain or
 * form content type, `limit=10000000`, secret-looking keys → 413 / 400 / 400 / 400 / 400 / 415 / clamped /
 * 422; each answered fast, none writes anything, none is a 5xx.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { dropSchema, KEYS, startHub } from '../helpers/hub-fixtures.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const API = '/api/v1/config';
const FAST_MS = 2000;

describe('B5: hostile requests over sockets (PostgreSQL)', () => {
  let hub: Hub;
  let schema: string | undefined;
  let base: string;
  const service = 'b5-target';

  beforeAll(async () => {
    ({ hub, schema } = await startHub('postgres', { seed: false }));
    base = await hub.listen({ port: 0 });
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${base}${API}/${service}`, {
        method: 'POST',
        headers: { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' },
        body: JSON.stringify({ i }),
      });
      expect(r.ok).toBe(true);
    }
  });
  afterAll(async () => {
    await hub?.close();
    if (schema !== undefined) await dropSchema(schema);
  });

  it('B5: every hostile request gets its 4xx fast, nothing is written, no 5xx', async () => {
    const deepArray = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const deepObject = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const cases: { what: string; method: string; path?: string; body?: string; type?: string; expect: number }[] = [
      { what: '2 MiB body', method: 'POST', body: JSON.stringify({ big: 'x'.repeat(2 * 1024 * 1024) }), expect: 413 },
      { what: '2 MiB PATCH', method: 'PATCH', body: JSON.stringify({ big: 'x'.repeat(2 * 1024 * 1024) }), expect: 413 },
      { what: '__proto__ key', method: 'POST', body: '{"__proto__":{"polluted":true}}', expect: 400 },
      { what: 'nested constructor key', method: 'PATCH', body: '{"a":{"constructor":{"prototype":{"polluted":true}}}}', expect: 400 },
      { what: '100 000-deep arrays', method: 'POST', body: deepArray, expect: 400 },
      { what: '100 000-deep objects', method: 'PATCH', body: deepObject, expect: 400 },
      { what: 'NaN', method: 'POST', body: '{"a":NaN}', expect: 400 },
      { what: '1e309', method: 'POST', body: '{"a":1e309}', expect: 400 },
      { what: '-1e309 in PATCH', method: 'PATCH', body: '{"a":{"b":-1e309}}', expect: 400 },
      { what: 'array body', method: 'POST', body: '[1,2,3]', expect: 400 },
      { what: 'null body', method: 'POST', body: 'null', expect: 400 },
      { what: 'null merge patch', method: 'PATCH', body: 'null', expect: 400 },
      { what: 'string body', method: 'POST', body: '"x"', expect: 400 },
      { what: 'empty body', method: 'POST', body: '', expect: 400 },
      { what: 'invalid JSON', method: 'POST', body: '{"a":', expect: 400 },
      { what: 'text/plain', method: 'POST', body: '{"a":1}', type: 'text/plain', expect: 415 },
      { what: 'form', method: 'POST', body: 'a=1', type: 'application/x-www-form-urlencoded', expect: 415 },
      { what: 'multipart', method: 'PATCH', body: '--x\r\n\r\n--x--', type: 'multipart/form-data; boundary=x', expect: 415 },
      { what: 'merge-patch+json on POST', method: 'POST', body: '{"a":1}', type: 'application/merge-patch+json', expect: 415 },
      { what: 'secret key', method: 'POST', body: '{"db":{"Password":"x"}}', expect: 422 },
      { what: 'secret key in PATCH', method: 'PATCH', body: '{"API_KEY":"x"}', expect: 422 },
      { what: 'PEM value', method: 'POST', body: JSON.stringify({ cert: '-----BEGIN PRIVATE KEY-----\nabc' }), expect: 422 },
      { what: 'rollback: array', method: 'POST', path: `${API}/rollback/${service}`, body: '[1]', expect: 400 },
      { what: 'rollback: revision 1e309', method: 'POST', path: `${API}/rollback/${service}`, body: '{"revision":1e309}', expect: 400 },
      { what: 'rollback: text/plain', method: 'POST', path: `${API}/rollback/${service}`, body: '{"revision":1}', type: 'text/plain', expect: 415 },
    ];
    const before = (await hub.store.get(service))!;
    const auditBefore = (await hub.store.history(service, 100)).total;
    let failures = 0;
    let fivexx = 0;
    let answered = 0;
    const timings: string[] = [];
    for (const c of cases) {
      const t0 = Date.now();
      let status: number;
      let text = '';
      try {
        const r = await fetch(`${base}${c.path ?? `${API}/${service}`}`, {
          method: c.method,
          headers: { 'x-api-key': KEYS.admin.key, 'content-type': c.type ?? 'application/json' },
          body: c.body,
          signal: AbortSignal.timeout(10_000),
        });
        status = r.status;
        text = await r.text();
      } catch (error) {
        status = -1;
        text = String(error);
      }
      const ms = Date.now() - t0;
      if (status > 0) answered++;
      timings.push(`${c.what}=${ms}ms`);
      if (status >= 500) fivexx++;
      const ok = status === c.expect && ms < FAST_MS && JSON.parse(text || '{}').detail !== undefined;
      if (!ok) {
        failures++;
        console.log(`[B5] FAIL ${c.what}: ${status} in ${ms} ms ${text.slice(0, 200)}`);
      }
    }
    // limit=10000000 is clamped (not an error, not a 10-million-row query).
    const h = await fetch(`${base}${API}/history/${service}?limit=10000000`, { headers: { 'x-api-key': KEYS.admin.key } });
    const hist = (await h.json()) as { limit: number; history: unknown[] };
    if (h.status !== 200 || hist.limit !== 100) failures++;
    const after = (await hub.store.get(service))!;
    const auditAfter = (await hub.store.history(service, 100)).total;
    console.log(`[B5] cases=${cases.length + 1} failures=${failures} 5xx=${fivexx} ${timings.join(' ')}`);
    recordFigure({ row: 'B5', name: `failures over ${cases.length + 1} hostile requests`, value: failures, unit: 'count' });
    recordFigure({ row: 'B5', name: '5xx answers', value: fivexx, unit: 'count' });
    expect(failures).toBe(0);
    expect(fivexx).toBe(0);
    expectLive('B5', 'hostile requests answered by the hub', answered, cases.length);
    expect(after.revision).toBe(before.revision);
    expect(after.config).toEqual(before.config);
    expect(auditAfter).toBe(auditBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Still healthy after all that.
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });
});
