import { describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { json, KEYS, STORE_KINDS, type StoreKind, uniqueService, useSuiteHub } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';
const WRITERS = 50;
const MAX_ATTEMPTS_PER_WRITER = 400;
const admin = { 'x-api-key': KEYS.admin.key };

describe.each(STORE_KINDS)('hub concurrency on %s', { timeout: 120_000 }, (kind: StoreKind) => {
  let hub: Hub;
  useSuiteHub(kind, { seed: false }, (started) => {
    hub = started;
  });

  it(`${WRITERS} concurrent writers with If-Match: one success per revision, audit = writes + seed, no gaps`, async () => {
    const service = uniqueService('race');
    const seeded = await hub.app.inject({ method: 'POST', url: `${API}/${service}`, ...json({ writer: -1 }), headers: { ...admin, 'content-type': 'application/json' } });
    expect(seeded.statusCode).toBe(201);

    let attempts = 0;
    let preconditionFailed = 0;
    const other: number[] = [];
    const successRevisions: number[] = [];

    // Each writer reads once, then retries with the revision the 412 reports (a compare-and-swap loop).
    async function writer(h: Hub, id: number): Promise<void> {
      let revision = (await h.app.inject({ method: 'GET', url: `${API}/${service}`, headers: admin })).json().revision as number;
      for (let i = 0; i < MAX_ATTEMPTS_PER_WRITER; i++) {
        attempts++;
        const r = await h.app.inject({
          method: 'POST',
          url: `${API}/${service}?change_reason=writer-${id}`,
          ...json({ writer: id, based_on: revision }),
          headers: { ...admin, 'content-type': 'application/json', 'if-match': `"${revision}"` },
        });
        if (r.statusCode === 200) {
          expect(r.json().revision).toBe(revision + 1);
          successRevisions.push(r.json().revision);
          return;
        }
        if (r.statusCode === 412) {
          preconditionFailed++;
          expect(r.json().revision).toBeGreaterThan(revision);
          revision = r.json().revision;
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
          continue;
        }
        other.push(r.statusCode);
        return;
      }
    }

    const started = Date.now();
    await Promise.all(Array.from({ length: WRITERS }, (_, id) => writer(hub, id)));
    const elapsedMs = Date.now() - started;

    const audit = await hub.store.sql.query<{ revision: number | string; action: string }>(
      'SELECT revision, action FROM config_audit_log WHERE service_name = $1 ORDER BY revision',
      [service],
    );
    const revisions = audit.map((a) => Number(a.revision));
    const gaps = revisions.filter((r, i) => r !== i + 1).length;
    const duplicates = successRevisions.length - new Set(successRevisions).size;
    console.log(
      `[hub-concurrency ${kind}] writers=${WRITERS} attempted=${attempts} succeeded=${successRevisions.length} ` +
        `412s=${preconditionFailed} other=${other.length} audit_rows=${audit.length} (= ${successRevisions.length} writes + 1 create) ` +
        `revision_gaps=${gaps} duplicate_revisions=${duplicates} final_revision=${revisions.at(-1)} elapsed_ms=${elapsedMs}`,
    );

    expect(other).toEqual([]);
    expect(successRevisions).toHaveLength(WRITERS);
    expect(duplicates).toBe(0);
    expect(attempts).toBe(successRevisions.length + preconditionFailed);
    expect(audit).toHaveLength(successRevisions.length + 1);
    expect(gaps).toBe(0);
    expect(revisions).toEqual(Array.from({ length: WRITERS + 1 }, (_, i) => i + 1));
    expect([...successRevisions].sort((a, b) => a - b)).toEqual(revisions.slice(1));
    const final = await hub.app.inject({ method: 'GET', url: `${API}/${service}`, headers: admin });
    expect(final.json().revision).toBe(WRITERS + 1);
  });

  it('two writers with the same If-Match, 100 rounds: never two successes', async () => {
    const service = uniqueService('pair');
    await hub.app.inject({ method: 'POST', url: `${API}/${service}`, ...json({ n: 0 }), headers: { ...admin, 'content-type': 'application/json' } });
    let doubleWins = 0;
    for (let round = 1; round <= 100; round++) {
      const results = await Promise.all(
        [0, 1].map((w) =>
          hub.app.inject({
            method: 'PATCH',
            url: `${API}/${service}`,
            ...json({ n: round, w }),
            headers: { ...admin, 'content-type': 'application/json', 'if-match': `"${round}"` },
          }),
        ),
      );
      const codes = results.map((r) => r.statusCode).sort();
      if (codes[0] === 200 && codes[1] === 200) doubleWins++;
      expect(codes).toEqual([200, 412]);
    }
    console.log(`[hub-concurrency ${kind}] If-Match pairs: rounds=100 double_successes=${doubleWins}`);
  });
});
