import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { KEYS, startHub, uniqueService } from '../helpers/hub-fixtures.js';

const admin = { 'x-api-key': KEYS.admin.key };

/** RELIABILITY B2/B4: arbitrary bodies and names → 2xx only for valid objects, never 5xx, no row without audit. */
describe('hub under arbitrary input (fast-check, PGlite)', () => {
  let hub: Hub;
  beforeAll(async () => {
    ({ hub } = await startHub('pglite', { seed: false }));
  });
  afterAll(async () => {
    await hub?.close();
  });

  it('POST/PATCH bodies: 2xx only for JSON objects, never 5xx; audit rows = successful writes', async () => {
    const service = uniqueService('fuzz');
    let ok = 0;
    let runs = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
          fc.string(),
          fc.dictionary(fc.string(), fc.jsonValue()).map((v) => JSON.stringify(v)),
        ),
        fc.constantFrom('POST', 'PATCH'),
        fc.constantFrom('application/json', 'application/merge-patch+json', 'text/plain'),
        async (payload, method, contentType) => {
          runs++;
          const r = await hub.app.inject({ method, url: `/api/v1/config/${service}`, payload, headers: { ...admin, 'content-type': contentType } });
          statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
          expect(r.statusCode).toBeLessThan(500);
          expect(r.json()).toHaveProperty(r.statusCode < 300 ? 'status' : 'detail');
          if (r.statusCode < 300) {
            ok++;
            const parsed = JSON.parse(payload);
            expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
    const audit = await hub.store.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM config_audit_log WHERE service_name = $1', [service]);
    console.log(`[hub-fuzz] statuses ${JSON.stringify(Object.fromEntries(statuses))}; successful writes ${ok}; audit rows ${audit[0]!.n}`);
    expect(audit[0]!.n).toBe(ok);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Liveness (issue 9): every run reached the hub, and both outcomes were exercised.
    expect(runs, 'property runs executed').toBe(300);
    expect(ok, 'bodies accepted').toBeGreaterThan(0);
    expect(runs - ok, 'bodies refused').toBeGreaterThan(0);
  });

  it('service names: anything outside ^[a-z0-9-]{1,100}$ is 400 and never reaches the store', async () => {
    let runs = 0;
    let invalid = 0;
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 120, unit: 'binary' }), async (name) => {
        runs++;
        const valid = /^[a-z0-9-]{1,100}$/.test(name);
        if (!valid) invalid++;
        const r = await hub.app.inject({ method: 'GET', url: `/api/v1/config/${encodeURIComponent(name)}`, headers: admin });
        if (valid) expect([200, 404]).toContain(r.statusCode);
        else expect(r.statusCode).toBe(400);
      }),
      { numRuns: 300 },
    );
    // Liveness (issue 9): every run reached the hub, with invalid names among them.
    expect(runs, 'property runs executed').toBe(300);
    expect(invalid, 'invalid names tried').toBeGreaterThan(0);
  });
});
