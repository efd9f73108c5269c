/**
 * Database rows of the reliability matrix, against a PRIVATE PostgreSQL cluster (never the shared one):
 * D1 crash (`pg_ctl stop -m immediate`) under 20 writers, restart after 5 s;
 * D2 database hung (SIGSTOP of the postmaster and its backends);
 * D3 `max_connections` small, 100 concurrent POSTs.
 * The hub runs in-process (`buildHub`) and is driven over real sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hub, buildHub } from '../../examples/hub/server.js';
import { KEYS } from '../helpers/hub-fixtures.js';
import { cleanupLab, type PostgresHandle, sleep, startPostgres } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const API = '/api/v1/config';
const headers = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };
const CLIENT_DEADLINE_MS = 10_000;

interface Outcome {
  service: string;
  n: number;
  status: number | 'timeout' | 'network';
  revision?: number;
  retryAfter?: string | null;
  ms: number;
  /** When the answer arrived. */
  at: number;
  body?: string;
}

async function post(base: string, service: string, n: number): Promise<Outcome> {
  const t0 = Date.now();
  try {
    const r = await fetch(`${base}${API}/${service}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ n }),
      signal: AbortSignal.timeout(CLIENT_DEADLINE_MS),
    });
    const text = await r.text();
    const out: Outcome = { service, n, status: r.status, retryAfter: r.headers.get('retry-after'), ms: Date.now() - t0, at: Date.now(), body: text };
    if (r.ok) out.revision = (JSON.parse(text) as { revision: number }).revision;
    return out;
  } catch (error) {
    const name = (error as Error).name;
    return { service, n, status: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network',
      ms: Date.now() - t0,
      at: Date.now(),
    };
  }
}

const percentile = (values: number[], p: number): number => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0;
};

/** Every acknowledged write is in the audit at its revision with its content; revisions 1..n per service. */
async function checkAcked(hub: Hub, acked: Outcome[], services: string[]) {
  const rows = await hub.store.sql.query<{ service_name: string; revision: string | number }>(
    'SELECT service_name, revision FROM service_configs WHERE service_name = ANY($1::text[])',
    [services],
  );
  const audit = await hub.store.sql.query<{ service_name: string; revision: string | number; n: number }>(
    `SELECT service_name, revision, (config_json->>'n')::int AS n FROM config_audit_log
     WHERE service_name = ANY($1::text[]) ORDER BY service_name, revision`,
    [services],
  );
  const committed = rows.reduce((sum, r) => sum + Number(r.revision), 0);
  const byKey = new Map(audit.map((a) => [`${a.service_name}#${a.revision}`, a.n]));
  const missing = acked.filter((a) => byKey.get(`${a.service}#${a.revision}`) !== a.n);
  const gaps: string[] = [];
  for (const r of rows) {
    const revs = audit.filter((a) => a.service_name === r.service_name).map((a) => Number(a.revision));
    const expected = Array.from({ length: Number(r.revision) }, (_, i) => i + 1);
    if (JSON.stringify(revs) !== JSON.stringify(expected)) gaps.push(r.service_name);
  }
  return { committed, auditRows: audit.length, missing, gaps };
}

describe('D1/D2: private PostgreSQL crash and hang under writers', () => {
  let pgh: PostgresHandle;
  let hub: Hub;
  let base: string;

  beforeAll(async () => {
    pgh = await startPostgres();
    hub = await buildHub({
      databaseUrl: pgh.url,
      apiKeys: Object.values(KEYS),
      seed: false,
      statementTimeoutMs: 1000,
      connectionTimeoutMs: 1000,
    });
    base = await hub.listen({ port: 0 });
  });
  afterAll(async () => {
    await hub?.close().catch(() => {});
    await cleanupLab();
  });

  it('D1: crash (-m immediate) under 20 writers, restart after 5 s: 503 meanwhile, every acked write with its audit row', async () => {
    const WRITERS = 20;
    const services = Array.from({ length: WRITERS }, (_, i) => `d1-writer-${i}`);
    const outcomes: Outcome[] = [];
    let stop = false;
    const writers = services.map(async (service) => {
      for (let n = 1; !stop; n++) {
        const o = await post(base, service, n);
        outcomes.push(o);
        if (o.status !== 200 && o.status !== 201) await sleep(50);
      }
    });
    await sleep(1500);
    await pgh.stopImmediate();
    await sleep(5000);
    const restartMs = await pgh.start();
    const upAt = Date.now();
    // Keep writing until every writer has been acknowledged again after the restart (bounded).
    const recovered = (s: string) => outcomes.some((o) => o.service === s && o.status === 200 && o.at > upAt);
    const deadline = upAt + 20_000;
    while (Date.now() < deadline && !(services.every(recovered) && Date.now() - upAt > 2000)) await sleep(100);
    stop = true;
    await Promise.all(writers);

    const acked = outcomes.filter((o) => o.status === 200 || o.status === 201);
    const s503 = outcomes.filter((o) => o.status === 503);
    const others = outcomes.filter((o) => !(o.status === 200 || o.status === 201 || o.status === 503));
    const s503NoRetryAfter = s503.filter((o) => o.retryAfter === null || o.retryAfter === undefined);
    const maxMs = Math.max(...outcomes.map((o) => o.ms));
    const { committed, auditRows, missing, gaps } = await checkAcked(hub, acked, services);
    console.log(
      `[D1] attempts=${outcomes.length} acked=${acked.length} committed_rows=${committed} audit_rows=${auditRows} ` +
        `in_doubt=${committed - acked.length} 503=${s503.length} other=${others.length} ` +
        `(${[...new Set(others.map((o) => `${o.status}:${o.body?.slice(0, 80)}`))].join(' | ')}) max_latency_ms=${maxMs} pg_restart_ms=${restartMs}`,
    );
    recordFigure({ row: 'D1', name: 'acknowledged writes', value: acked.length, unit: 'count' });
    recordFigure({ row: 'D1', name: 'committed revisions (rows)', value: committed, unit: 'count' });
    recordFigure({ row: 'D1', name: 'audit rows', value: auditRows, unit: 'count' });
    recordFigure({ row: 'D1', name: 'acknowledged writes missing after recovery', value: missing.length, unit: 'count' });
    recordFigure({ row: 'D1', name: '503 answers during the outage', value: s503.length, unit: 'count' });
    recordFigure({ row: 'D1', name: 'other errors (500, hang, reset)', value: others.length, unit: 'count' });
    recordFigure({ row: 'D1', name: 'max request latency', value: maxMs, unit: 'ms' });
    expect(missing).toEqual([]);
    expect(gaps).toEqual([]);
    expect(auditRows).toBe(committed);
    expect(committed).toBeGreaterThanOrEqual(acked.length);
    expectLive('D1', '503 answers while PostgreSQL was down (fault injected)', s503.length);
    expectLive('D1', 'acknowledged writes checked against rows and audit', acked.length, WRITERS);
    expect(s503NoRetryAfter).toEqual([]);
    expect(others.map((o) => `${o.status} ${o.body ?? ''}`)).toEqual([]);
    expect(maxMs).toBeLessThan(CLIENT_DEADLINE_MS);
  }, 60_000);

  it('D2: database hung (SIGSTOP): 503 with Retry-After within the deadline, then recovers', async () => {
    const service = 'd2-hang';
    expect((await post(base, service, 0)).status).toBe(201);
    pgh.pause();
    let outcomes: Outcome[] = [];
    try {
      outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => post(base, service, i + 1)));
    } finally {
      pgh.resume();
    }
    const latencies = outcomes.map((o) => o.ms);
    const p99 = percentile(latencies, 99);
    const statuses = [...new Set(outcomes.map((o) => o.status))];
    console.log(`[D2] requests=${outcomes.length} statuses=${statuses.join(',')} p50=${percentile(latencies, 50)} p99=${p99} ms`);
    recordFigure({ row: 'D2', name: 'hub p99 latency while the database is hung', value: p99, unit: 'ms' });
    expect(statuses).toEqual([503]);
    expectLive('D2', 'requests answered 503 while the database was hung (SIGSTOP)', outcomes.filter((o) => o.status === 503).length, 20);
    expect(outcomes.every((o) => o.retryAfter !== null)).toBe(true);
    // statement/query timeout 1 s (+1 s client-side query_timeout), connection timeout 1 s.
    expect(p99).toBeLessThan(5000);
    // Recovers once the database answers again.
    let after: Outcome | undefined;
    for (let i = 0; i < 50; i++) {
      after = await post(base, service, 100 + i);
      if (after.status === 200) break;
      await sleep(200);
    }
    expect(after?.status).toBe(200);
    const { missing, gaps, auditRows, committed } = await checkAcked(hub, [after!], [service]);
    expect(missing).toEqual([]);
    expect(gaps).toEqual([]);
    expect(auditRows).toBe(committed);
  }, 60_000);
});

describe('D3: max_connections small, 100 concurrent POSTs', () => {
  let pgh: PostgresHandle;
  let hub: Hub;
  let base: string;

  beforeAll(async () => {
    // 6 server slots for a pool of 10 (superuser: the reserved slots count too).
    pgh = await startPostgres({ maxConnections: 6 });
    hub = await buildHub({ databaseUrl: pgh.url, apiKeys: Object.values(KEYS), seed: false });
    base = await hub.listen({ port: 0 });
  });
  afterAll(async () => {
    await hub?.close().catch(() => {});
    await cleanupLab();
  });

  it('D3: queue or 503 with Retry-After, no other error, no crash; acked writes present with audit', async () => {
    const services = Array.from({ length: 10 }, (_, i) => `d3-svc-${i}`);
    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => post(base, services[i % 10]!, i)));
    const acked = outcomes.filter((o) => o.status === 200 || o.status === 201);
    const s503 = outcomes.filter((o) => o.status === 503);
    const nonRetryable = outcomes.filter((o) => !(o.status === 200 || o.status === 201 || o.status === 503));
    const no503Header = s503.filter((o) => o.retryAfter === null);
    console.log(
      `[D3] requests=100 acked=${acked.length} 503=${s503.length} non_503_errors=${nonRetryable.length} ` +
        `(${[...new Set(nonRetryable.map((o) => `${o.status}:${o.body?.slice(0, 80)}`))].join(' | ')}) max_ms=${Math.max(...outcomes.map((o) => o.ms))}`,
    );
    recordFigure({ row: 'D3', name: 'non-503 errors over 100 concurrent POSTs (max_connections=6)', value: nonRetryable.length, unit: 'count' });
    recordFigure({ row: 'D3', name: 'acknowledged / 503', value: `${acked.length} / ${s503.length}` });
    expect(nonRetryable.map((o) => `${o.status} ${o.body ?? ''}`)).toEqual([]);
    expect(no503Header).toEqual([]);
    expectLive('D3', 'concurrent POSTs answered (2xx or 503)', acked.length + s503.length, 100);
    expectLive('D3', 'acknowledged writes checked against rows and audit', acked.length);
    const { missing, gaps, auditRows, committed } = await checkAcked(hub, acked, services);
    expect(missing).toEqual([]);
    expect(gaps).toEqual([]);
    expect(auditRows).toBe(committed);
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
  }, 60_000);
});
