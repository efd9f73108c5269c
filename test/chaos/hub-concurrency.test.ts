/**
 * Concurrency rows over real sockets on the shared PostgreSQL (own schema):
 * X1 two writers with the same If-Match, up to 1 000 rounds, mixing POST / PATCH / DELETE / rollback;
 * X2 10 writers × 3 services × rollbacks with NATS kills, DB connection drops (a TCP proxy in front of
 *    PostgreSQL) and a hub restart mixed in; a recorder logs every attempt, then acked vs audit vs published.
 */
import { connect, type NatsConnection, StorageType } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHub, type Hub } from '../../examples/hub/server.js';
import { dropSchema, KEYS, PG_URL, startHub, uniqueSchema } from '../helpers/hub-fixtures.js';
import { cleanupLab, freePort, sleep, startNatsServer, startTcpProxy, waitFor } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const API = '/api/v1/config';

type Kind = 'POST' | 'PATCH' | 'DELETE' | 'ROLLBACK';

async function send(base: string, kind: Kind, service: string, n: number, ifMatch?: number) {
  const url = kind === 'ROLLBACK' ? `${base}${API}/rollback/${service}` : `${base}${API}/${service}`;
  const body = kind === 'ROLLBACK' ? JSON.stringify({ revision: 1 }) : kind === 'DELETE' ? undefined : JSON.stringify({ n });
  try {
    const r = await fetch(url, {
      method: kind === 'ROLLBACK' ? 'POST' : kind,
      headers: {
        'x-api-key': KEYS.admin.key,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(ifMatch === undefined ? {} : { 'if-match': `"${ifMatch}"` }),
      },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    const json = text.length > 0 ? (JSON.parse(text) as { revision?: number; broadcast?: string; status?: string }) : {};
    return { status: r.status, revision: json.revision, broadcast: json.broadcast, body: text };
  } catch (error) {
    return { status: (error as Error).name === 'TimeoutError' ? ('timeout' as const) : ('network' as const), body: String(error) };
  }
}

describe('X1: two writers with the same If-Match', () => {
  let hub: Hub;
  let schema: string | undefined;
  let base: string;
  beforeAll(async () => {
    ({ hub, schema } = await startHub('postgres', { seed: false }));
    base = await hub.listen({ port: 0 });
  });
  afterAll(async () => {
    await hub?.close();
    if (schema !== undefined) await dropSchema(schema);
  });

  it('X1: up to 1 000 rounds (POST/PATCH/DELETE/rollback pairs): exactly one 2xx, the other 412, never two successes', async () => {
    const service = 'x1-race';
    const first = await send(base, 'POST', service, 0);
    expect(first.status).toBe(201);
    let revision = first.revision!;
    const pairs: [Kind, Kind][] = [
      ['POST', 'POST'],
      ['POST', 'PATCH'],
      ['PATCH', 'PATCH'],
      ['PATCH', 'ROLLBACK'],
      ['ROLLBACK', 'POST'],
    ];
    const budgetMs = Number(process.env.CHAOS_X1_BUDGET_MS ?? 30_000);
    const started = Date.now();
    let rounds = 0;
    let doubleSuccess = 0;
    let noSuccess = 0;
    const other: string[] = [];
    let deleted = false;
    for (; rounds < 1000 && Date.now() - started < budgetMs; rounds++) {
      let [a, b] = pairs[rounds % pairs.length]!;
      // Every 50th round races a DELETE against a write; the next round brings the service back.
      if (rounds % 50 === 49) [a, b] = ['DELETE', 'PATCH'];
      if (deleted) [a, b] = ['POST', 'POST'];
      const [ra, rb] = await Promise.all([send(base, a, service, rounds * 2, revision), send(base, b, service, rounds * 2 + 1, revision)]);
      const ok = [ra, rb].filter((r) => r.status === 200 || r.status === 201);
      const conflicts = [ra, rb].filter((r) => r.status === 412);
      if (ok.length === 2) doubleSuccess++;
      if (ok.length === 0) noSuccess++;
      if (ok.length + conflicts.length !== 2) other.push(`${a}/${b}: ${ra.status} ${rb.status} ${ra.body.slice(0, 80)} ${rb.body.slice(0, 80)}`);
      if (ok.length === 1) {
        const winner = ok[0]!;
        expect(winner.revision).toBe(revision + 1);
        const loser = conflicts[0];
        if (loser !== undefined) expect(JSON.parse(loser.body)).toMatchObject({ revision: revision + 1 });
        revision = winner.revision!;
        deleted = (winner === ra ? a : b) === 'DELETE';
      }
    }
    const audit = await hub.store.sql.query<{ revision: string | number }>(
      'SELECT revision FROM config_audit_log WHERE service_name = $1 ORDER BY revision',
      [service],
    );
    console.log(`[X1] rounds=${rounds} in ${Date.now() - started} ms double_success=${doubleSuccess} no_success=${noSuccess} other=${other.length} final_revision=${revision}`);
    recordFigure({ row: 'X1', name: `rounds with two successes (of ${rounds} rounds)`, value: doubleSuccess, unit: 'count' });
    recordFigure({ row: 'X1', name: 'rounds run', value: rounds, unit: 'count' });
    expect(doubleSuccess).toBe(0);
    expect(noSuccess).toBe(0);
    expect(other.slice(0, 5)).toEqual([]);
    expect(audit.map((a) => Number(a.revision))).toEqual(Array.from({ length: revision }, (_, i) => i + 1));
    expect(rounds).toBeGreaterThanOrEqual(200);
    expectLive('X1', 'racing rounds run', rounds, 200);
    expectLive('X1', 'conflicts answered 412 (the race really happened)', rounds - noSuccess - other.length, 200);
  }, 90_000);
});

describe('X2: writers × services × rollbacks with NATS, DB and hub faults mixed in', () => {
  const schema = uniqueSchema('chaos_x2');
  let observer: NatsConnection | undefined;
  afterAll(async () => {
    await observer?.close().catch(() => {});
    await cleanupLab();
    await dropSchema(schema);
  });

  it('X2: each acked write once in audit, revisions contiguous, every committed revision published at least once', async () => {
    const nats = await startNatsServer({ jetstream: true });
    observer = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const jsm = await observer.jetstreamManager();
    await jsm.streams.add({ name: 'CHAOS_X2', subjects: ['config.update.>'], storage: StorageType.File });
    const pgProxy = await startTcpProxy({ target: { port: Number(new URL(PG_URL).port || 5432) } });
    const dbUrl = new URL(PG_URL);
    dbUrl.port = String(pgProxy.port);
    const port = await freePort();
    const start = async () => {
      const h = await buildHub({
        databaseUrl: dbUrl.toString(),
        pgSchema: schema,
        natsUrl: nats.url,
        apiKeys: Object.values(KEYS),
        seed: false,
        relayIntervalMs: 200,
        connectionTimeoutMs: 1000,
        statementTimeoutMs: 2000,
      });
      await h.listen({ port });
      return h;
    };
    let hub = await start();
    const base = `http://127.0.0.1:${port}`;
    const services = ['x2-alpha', 'x2-beta', 'x2-gamma'];
    for (const s of services) expect((await send(base, 'POST', s, 0)).status).toBe(201);

    interface Attempt {
      writer: number;
      service: string;
      kind: Kind;
      status: number | 'timeout' | 'network';
      revision?: number;
    }
    const log: Attempt[] = [];
    let stop = false;
    const writers = Array.from({ length: 10 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const service = services[(w + i) % services.length]!;
        const kind: Kind = i % 7 === 6 ? 'ROLLBACK' : i % 3 === 2 ? 'PATCH' : 'POST';
        const r = await send(base, kind, service, w * 100_000 + i);
        log.push({ writer: w, service, kind, status: r.status, revision: r.revision });
        if (typeof r.status !== 'number' || r.status >= 500) await sleep(50);
      }
    });
    // The fault schedule.
    const faults: string[] = [];
    await sleep(800);
    await nats.kill();
    faults.push('nats killed');
    await sleep(1000);
    await nats.restart();
    faults.push('nats restarted');
    await sleep(800);
    pgProxy.dropConnections();
    faults.push('db connections dropped');
    await sleep(800);
    await pgProxy.break('reset');
    await sleep(1000);
    await pgProxy.restore();
    faults.push('db unreachable 1 s');
    await sleep(800);
    await hub.close();
    faults.push('hub stopped');
    await sleep(500);
    hub = await start();
    faults.push('hub restarted');
    await sleep(1000);
    stop = true;
    await Promise.all(writers);

    const acked = log.filter((a) => a.status === 200 || a.status === 201);
    const audit = await hub.store.sql.query<{ service_name: string; revision: string | number; action: string }>(
      `SELECT service_name, revision, action FROM config_audit_log ORDER BY service_name, revision`,
    );
    const auditKeys = audit.map((a) => `${a.service_name}#${a.revision}`);
    const anomalies: string[] = [];
    // Each acked write once in the audit, with its action.
    const counts = new Map<string, number>();
    for (const k of auditKeys) counts.set(k, (counts.get(k) ?? 0) + 1);
    for (const [k, n] of counts) if (n !== 1) anomalies.push(`${k} audited ${n}×`);
    const ackedKeys = new Set<string>();
    for (const a of acked) {
      const key = `${a.service}#${a.revision}`;
      if (ackedKeys.has(key)) anomalies.push(`${key} acknowledged twice`);
      ackedKeys.add(key);
      const row = audit.find((x) => `${x.service_name}#${x.revision}` === key);
      if (row === undefined) anomalies.push(`${key} acked but not audited`);
      else if (a.kind === 'ROLLBACK' && row.action !== 'rollback') anomalies.push(`${key} rollback audited as ${row.action}`);
    }
    // Revisions per service contiguous 1..n.
    for (const s of services) {
      const revs = audit.filter((a) => a.service_name === s).map((a) => Number(a.revision));
      if (JSON.stringify(revs) !== JSON.stringify(Array.from({ length: revs.length }, (_, i) => i + 1))) anomalies.push(`${s} revisions not contiguous`);
    }
    // Every committed revision published at least once (relay catches up after the faults).
    let seen = new Set<string>();
    await waitFor(
      'every committed revision published',
      async () => {
        try {
          const info = await jsm.streams.info('CHAOS_X2');
          const keys = new Set<string>();
          for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
            const n = (await jsm.streams.getMessage('CHAOS_X2', { seq })).json<{ service_name: string; revision: number }>();
            keys.add(`${n.service_name}#${n.revision}`);
          }
          seen = keys;
        } catch {
          return false;
        }
        return auditKeys.every((k) => seen.has(k));
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    ).catch(() => {});
    const unpublished = auditKeys.filter((k) => !seen.has(k));
    for (const k of unpublished) anomalies.push(`${k} never published`);
    const byStatus = new Map<string, number>();
    for (const a of log) byStatus.set(String(a.status), (byStatus.get(String(a.status)) ?? 0) + 1);
    const s500 = log.filter((a) => a.status === 500 || a.status === 'timeout');
    await hub.close();
    await pgProxy.close();
    console.log(
      `[X2] faults=[${faults.join(', ')}] attempts=${log.length} statuses=${JSON.stringify(Object.fromEntries(byStatus))} ` +
        `acked=${acked.length} audit=${audit.length} (seeds ${services.length}) published=${seen.size} anomalies=${anomalies.length} ${anomalies.slice(0, 5).join('; ')}`,
    );
    recordFigure({ row: 'X2', name: 'acked vs audit vs published', value: `${acked.length + services.length} / ${audit.length} / ${seen.size}` });
    recordFigure({ row: 'X2', name: 'anomalies', value: anomalies.length, unit: 'count' });
    recordFigure({ row: 'X2', name: '500s or hangs under mixed faults', value: s500.length, unit: 'count' });
    expect(anomalies).toEqual([]);
    expect(s500.length).toBe(0);
    expect(acked.length).toBeGreaterThan(100);
    expectLive('X2', 'faults injected (nats kill/restart, db drop/cut, hub stop/restart)', faults.length, 6);
    expectLive('X2', 'acknowledged writes', acked.length, 100);
    expectLive('X2', 'revisions published (JetStream)', seen.size, auditKeys.length);
  }, 120_000);
});
