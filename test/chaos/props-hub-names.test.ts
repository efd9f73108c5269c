/**
 * B4 — service names with `.`, `*`, `>`, spaces, unicode, `%2F`, 300 chars, empty: 400 before any SQL or
 * NATS subject. The hub runs on the shared PostgreSQL (own schema) and publishes to a PRIVATE nats-server;
 * an observer subscribed to `>` sees every subject; the store is wrapped so that every service name that
 * reaches it (the only path to SQL) is recorded.
 */
import fc from 'fast-check';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { dropSchema, KEYS, startHub } from '../helpers/hub-fixtures.js';
import { cleanupLab, type NatsServerHandle, startNatsServer, waitFor } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive, expectRuns } from './liveness.js';

const API = '/api/v1/config';
const VALID = /^[a-z0-9-]{1,100}$/;
const SUBJECT = /^config\.update\.[a-z0-9-]{1,100}$/;
const RUNS = Number(process.env.CHAOS_B4_RUNS ?? 300);

const nameArb = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 120 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9-]{1,12}$/).map((s) => `b4-${s}`) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      '.',
      '..',
      '*',
      '>',
      'a.b',
      'a b',
      'a*',
      'a>',
      'config.update.x',
      '%2F',
      'a/b',
      '../x',
      'A',
      'Abc',
      'ünïcödé',
      'x\u0000y',
      'x\ny',
      'ｘ',
      `b4-${'x'.repeat(97)}`,
      'x'.repeat(101),
      'x'.repeat(300),
      "x'; DROP TABLE service_configs; --",
    ),
  },
);

describe('B4: service names on PostgreSQL with a private nats-server', () => {
  let nats: NatsServerHandle;
  let observer: NatsConnection;
  let hub: Hub;
  let schema: string | undefined;
  const subjects: string[] = [];
  const reachedStore: string[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    observer = await connect({ servers: nats.url });
    const sub = observer.subscribe('>');
    void (async () => {
      for await (const m of sub) subjects.push(m.subject);
    })();
    await observer.flush();
    ({ hub, schema } = await startHub('postgres', { natsUrl: nats.url, seed: false }));
    await waitFor('hub connected to nats', () => hub.broadcaster.connected);
    // Every store call that takes a service name is recorded (the store is the only way to SQL).
    const store = hub.store as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const method of ['get', 'history'] as const) {
      const original = store[method]!.bind(hub.store);
      store[method] = (service: unknown, ...rest: unknown[]) => {
        reachedStore.push(String(service));
        return original(service, ...rest);
      };
    }
    const write = store.write!.bind(hub.store);
    store.write = (command: unknown) => {
      reachedStore.push(String((command as { service: unknown }).service));
      return write(command);
    };
  });
  afterAll(async () => {
    await hub?.close();
    await observer?.close().catch(() => {});
    await cleanupLab();
    if (schema !== undefined) await dropSchema(schema);
  });

  it(`B4: ${RUNS} fast-check names × routes: 400 for invalid names before SQL or a subject; valid names work`, async () => {
    const headers = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };
    const written = new Set<string>();
    let invalidTried = 0;
    let invalidNot4xx = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(nameArb, fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'HISTORY', 'ROLLBACK'), async (name, route) => {
        runs++;
        const enc = encodeURIComponent(name);
        const [method, url, payload] =
          route === 'HISTORY'
            ? ['GET', `${API}/history/${enc}`, undefined]
            : route === 'ROLLBACK'
              ? ['POST', `${API}/rollback/${enc}`, '{"revision":1}']
              : [route, `${API}/${enc}`, route === 'GET' || route === 'DELETE' ? undefined : '{"k":1}'];
        const storeCallsBefore = reachedStore.length;
        const r = await hub.app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
        expect(r.statusCode, `${route} ${JSON.stringify(name)} → ${r.body.slice(0, 200)}`).toBeLessThan(500);
        if (VALID.test(name)) {
          if (route === 'POST') {
            expect(r.statusCode).toBeLessThan(300);
            written.add(name);
          }
          return;
        }
        invalidTried++;
        // '', '.' and '..' are resolved by the URL layer to the collection (dot segments): no name at all.
        const collection = name === '' || name === '.' || name === '..';
        if (collection && method === 'GET') {
          // `GET /api/v1/config/` is the list route: no name reaches anything.
          expect([200, 400, 404]).toContain(r.statusCode);
        } else {
          // 400 from the validator; 404 only when the router itself has no match (empty segment).
          if (![400, 404].includes(r.statusCode)) invalidNot4xx++;
          expect([400, 404], `${route} ${JSON.stringify(name)} → ${r.statusCode} ${r.body.slice(0, 200)}`).toContain(r.statusCode);
          if (!collection) expect(r.statusCode).toBe(400);
        }
        // Nothing reaches the store: not the name, and not another service the URL could collapse into
        // (e.g. `POST /rollback/` must not become a write to a service named `rollback`).
        expect(reachedStore.slice(storeCallsBefore)).toEqual([]);
      }),
      { numRuns: RUNS },
    );

    // Raw paths a client could send without encoding.
    for (const raw of ['a.b', 'a%2Fb', '..%2F..%2Fetc', 'a%00b', 'a%20b', '%2A', '%3E', 'A-B', `${'y'.repeat(300)}`]) {
      const r = await hub.app.inject({ method: 'POST', url: `${API}/${raw}`, headers, payload: '{"k":1}' });
      expect(r.statusCode, `raw ${raw} → ${r.body}`).toBe(400);
    }
    const malformed = await hub.app.inject({ method: 'GET', url: `${API}/%E0%A4%A`, headers });
    expect(malformed.statusCode).toBeGreaterThanOrEqual(400);
    expect(malformed.statusCode).toBeLessThan(500);

    await waitFor('every valid write published', () => [...written].every((n) => subjects.includes(`config.update.${n}`)), {
      timeoutMs: 10_000,
    });
    const badSubjects = subjects.filter((s) => !SUBJECT.test(s));
    const badStoreNames = reachedStore.filter((s) => !VALID.test(s));
    const tables = await hub.store.sql.query<{ service_name: string }>(
      `SELECT service_name FROM service_configs UNION ALL SELECT service_name FROM config_audit_log
       UNION ALL SELECT service_name FROM config_outbox`,
    );
    const badRows = tables.filter((t) => !VALID.test(t.service_name));
    console.log(
      `[B4] runs=${RUNS} invalid_tried=${invalidTried} valid_written=${written.size} subjects_seen=${subjects.length} ` +
        `bad_subjects=${badSubjects.length} bad_names_reaching_store=${badStoreNames.length} bad_rows=${badRows.length}`,
    );
    recordFigure({ row: 'B4', name: 'subjects outside config.update.<valid>', value: badSubjects.length, unit: 'count' });
    recordFigure({ row: 'B4', name: 'invalid names reaching the store (SQL)', value: badStoreNames.length, unit: 'count' });
    recordFigure({ row: 'B4', name: 'invalid names tried', value: invalidTried, unit: 'count' });
    expect(badSubjects).toEqual([]);
    expect(badStoreNames).toEqual([]);
    expect(badRows).toEqual([]);
    expect(invalidNot4xx).toBe(0);
    expectRuns('B4', runs, RUNS);
    expectLive('B4', 'invalid names tried', invalidTried);
    expectLive('B4', 'valid names written and published', [...written].filter((n) => subjects.includes(`config.update.${n}`)).length);
    expectLive('B4', 'store calls recorded (the spy on the real store is live)', reachedStore.length);
  });
});
