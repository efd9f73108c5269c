/**
 * Process-level hub and NATS faults, with the hub as a child process (`tsx examples/hub/main.ts`) on its
 * own database of the shared PostgreSQL, publishing to a PRIVATE nats-server whose JetStream stream
 * captures every `config.update.>` publish (so "published" is checked from what NATS stored):
 *
 * N7 NATS killed at commit time, 20 writes, NATS back → every committed revision published (3 rounds);
 * H3 hub SIGKILLed after COMMIT, before the response → the write is whole (row + audit + outbox) and is
 *    published after the restart;
 * H6 SIGTERM under 50 writes/s → stops accepting, drains, relay flushes the outbox.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection, StorageType } from 'nats';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, PG_URL, withPg } from '../helpers/hub-fixtures.js';
import { cleanupLab, type HubProcess, type NatsServerHandle, sleep, startHubProcess, startNatsServer, waitFor } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const API = '/api/v1/config';
const headers = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

interface Lab {
  db: string;
  dbUrl: string;
  nats: NatsServerHandle;
  observer: NatsConnection;
  stream: string;
  sql: pg.Client;
  env: Record<string, string>;
}

async function setUp(tag: string): Promise<Lab> {
  const db = `chaos_${tag}_${randomBytes(4).toString('hex')}`;
  await withPg((c) => c.query(`CREATE DATABASE ${db}`));
  const u = new URL(PG_URL);
  u.pathname = `/${db}`;
  const nats = await startNatsServer({ jetstream: true });
  const observer = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const stream = `CHAOS_${tag.toUpperCase()}`;
  const jsm = await observer.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: ['config.update.>'], storage: StorageType.File });
  const sql = new pg.Client({ connectionString: u.toString() });
  sql.on('error', () => {});
  await sql.connect();
  return {
    db,
    dbUrl: u.toString(),
    nats,
    observer,
    stream,
    sql,
    env: { DATABASE_URL: u.toString(), NATS_URL: nats.url, HUB_API_KEYS: JSON.stringify(Object.values(KEYS)), HUB_LOG_LEVEL: 'warn' },
  };
}

async function tearDown(lab: Lab | undefined): Promise<void> {
  if (lab === undefined) return;
  await lab.sql.end().catch(() => {});
  await lab.observer.close().catch(() => {});
  await cleanupLab();
  await withPg((c) => c.query(`DROP DATABASE IF EXISTS ${lab.db} WITH (FORCE)`));
}

/** service#revision → time stored, for every message in the stream (retries while the observer reconnects). */
async function published(lab: Lab): Promise<Map<string, number>> {
  const jsm = await lab.observer.jetstreamManager();
  const info = await jsm.streams.info(lab.stream);
  const out = new Map<string, number>();
  for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(lab.stream, { seq });
    const n = m.json<{ service_name: string; revision: number }>();
    const key = `${n.service_name}#${n.revision}`;
    if (!out.has(key)) out.set(key, m.time.getTime());
  }
  return out;
}

async function committed(lab: Lab): Promise<{ revisions: string[]; rowsWithoutAudit: number; auditWithoutOutbox: number; pending: number }> {
  const audit = await lab.sql.query<{ k: string }>(`SELECT service_name || '#' || revision AS k FROM config_audit_log WHERE revision IS NOT NULL`);
  const orphans = await lab.sql.query<{ n: string }>(
    `SELECT count(*) AS n FROM service_configs s WHERE NOT EXISTS
       (SELECT 1 FROM config_audit_log a WHERE a.service_name = s.service_name AND a.revision = s.revision)`,
  );
  const noOutbox = await lab.sql.query<{ n: string }>(
    `SELECT count(*) AS n FROM config_audit_log a WHERE a.revision IS NOT NULL AND NOT EXISTS
       (SELECT 1 FROM config_outbox o WHERE o.service_name = a.service_name AND o.revision = a.revision)`,
  );
  const pending = await lab.sql.query<{ n: string }>('SELECT count(*) AS n FROM config_outbox WHERE published_at IS NULL');
  return {
    revisions: audit.rows.map((r) => r.k),
    rowsWithoutAudit: Number(orphans.rows[0]!.n),
    auditWithoutOutbox: Number(noOutbox.rows[0]!.n),
    pending: Number(pending.rows[0]!.n),
  };
}

async function write(base: string, method: 'POST' | 'PATCH', service: string, n: number, timeoutMs = 10_000) {
  try {
    const r = await fetch(`${base}${API}/${service}`, { method, headers, body: JSON.stringify({ n }), signal: AbortSignal.timeout(timeoutMs) });
    const text = await r.text();
    return { status: r.status, body: text, json: r.ok ? (JSON.parse(text) as { revision: number; broadcast: string }) : undefined };
  } catch (error) {
    return { status: (error as Error).name === 'TimeoutError' ? ('timeout' as const) : ('network' as const), body: String(error) };
  }
}

async function waitPublished(lab: Lab, keys: string[], timeoutMs: number): Promise<Map<string, number>> {
  let seen = new Map<string, number>();
  await waitFor(
    'every committed revision in the stream',
    async () => {
      try {
        seen = await published(lab);
      } catch {
        return false;
      }
      return keys.every((k) => seen.has(k));
    },
    { timeoutMs, intervalMs: 100 },
  ).catch(() => {});
  return seen;
}

describe('N7: NATS killed at commit time (hub process, private nats-server, 3 rounds)', () => {
  let lab: Lab | undefined;
  let hub: HubProcess;
  beforeAll(async () => {
    lab = await setUp('n7');
    hub = await startHubProcess(lab.env, { timeoutMs: 60_000 });
  }, 90_000);
  afterAll(async () => {
    await tearDown(lab);
  });

  it('N7: 20 writes while nats-server is down (SIGKILL), restart → every committed revision published; relay lag', async () => {
    const l = lab!;
    const services = ['n7-a', 'n7-b', 'n7-c', 'n7-d'];
    for (const s of services) expect((await write(hub.url, 'POST', s, 0)).status).toBe(201);
    const lags: number[] = [];
    let unpublishedTotal = 0;
    let committedWhileDown = 0;
    let republished = 0;
    for (let round = 1; round <= 3; round++) {
      await l.nats.kill();
      await sleep(300);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => write(hub.url, i % 3 === 0 ? 'PATCH' : 'POST', services[i % 4]!, round * 100 + i)),
      );
      expect(results.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
      const broadcasts = new Set(results.map((r) => r.json?.broadcast));
      expect([...broadcasts].every((b) => b === 'unavailable' || b === 'failed')).toBe(true);
      const c = await committed(l);
      expect(c.pending).toBeGreaterThanOrEqual(20);
      await l.nats.restart();
      const upAt = Date.now();
      const seen = await waitPublished(l, c.revisions, 20_000);
      const unpublished = c.revisions.filter((k) => !seen.has(k));
      const lastRound = results.map((r) => `${JSON.parse(r.body).service_name}#${r.json!.revision}`);
      committedWhileDown += results.length;
      republished += lastRound.filter((k) => seen.has(k)).length;
      const lag = Math.max(...lastRound.map((k) => seen.get(k) ?? Number.NaN)) - upAt;
      lags.push(lag);
      unpublishedTotal += unpublished.length;
      await waitFor('outbox drained', async () => (await committed(l)).pending === 0, { timeoutMs: 10_000 });
      console.log(`[N7] round=${round} committed_while_down=20 broadcast=${[...broadcasts].join('/')} unpublished=${unpublished.length} relay_lag_ms=${lag}`);
      expect(unpublished).toEqual([]);
    }
    recordFigure({ row: 'N7', name: 'committed revisions never published (3 rounds × 20 writes)', value: unpublishedTotal, unit: 'count' });
    recordFigure({ row: 'N7', name: 'relay lag after nats-server restart, median', value: median(lags), unit: 'ms' });
    recordFigure({ row: 'N7', name: 'relay lag after nats-server restart, max', value: Math.max(...lags), unit: 'ms' });
    expect(unpublishedTotal).toBe(0);
    expectLive('N7', 'writes committed while nats-server was down (faults injected: 3 kills)', committedWhileDown, 60);
    expectLive('N7', 'of those, seen published after the restart', republished, 60);
  }, 120_000);
});

describe('H3/H6: hub process killed after COMMIT, and SIGTERM under load', () => {
  let lab: Lab | undefined;
  beforeAll(async () => {
    lab = await setUp('h36');
  }, 60_000);
  afterAll(async () => {
    await tearDown(lab);
  });

  it('H3: SIGKILL after COMMIT, before the response (NATS paused so the post-commit publish holds the answer), 2 rounds', async () => {
    const l = lab!;
    const services = Array.from({ length: 10 }, (_, i) => `h3-svc-${i}`);
    let hub = await startHubProcess(l.env, { timeoutMs: 60_000 });
    for (const s of services) expect((await write(hub.url, 'POST', s, 0)).status).toBe(201);
    let inDoubtTotal = 0;
    /** Writes answered while NATS was paused, before the kill: possible only once the hub's publish wait (2 s) ran out. */
    const answeredBeforeKill: Array<{ status: number | string; broadcast: string | undefined }> = [];
    for (let round = 1; round <= 2; round++) {
      const before = (await committed(l)).revisions.length;
      l.nats.pause();
      let killing = false;
      const writes = services.map((s, i) =>
        write(hub.url, 'POST', s, round * 1000 + i).then((r) => {
          if (!killing) answeredBeforeKill.push({ status: r.status, broadcast: r.json?.broadcast });
          return r;
        }),
      );
      // Wait until all 10 writes have COMMITTED (audit rows visible), then kill the hub at once.
      await waitFor('10 commits', async () => (await committed(l)).revisions.length >= before + 10, { timeoutMs: 10_000, intervalMs: 10 });
      killing = true;
      await hub.kill();
      const results = await Promise.all(writes);
      l.nats.resume();
      const c = await committed(l);
      inDoubtTotal += results.filter((r) => r.status === 'network').length;
      expect(c.rowsWithoutAudit).toBe(0);
      expect(c.auditWithoutOutbox).toBe(0);
      hub = await startHubProcess(l.env, { timeoutMs: 60_000 });
      const seen = await waitPublished(l, c.revisions, 20_000);
      const unpublished = c.revisions.filter((k) => !seen.has(k));
      console.log(
        `[H3] round=${round} committed_unanswered=${results.filter((r) => r.status === 'network').length} ` +
          `rows_without_audit=${c.rowsWithoutAudit} audit_without_outbox=${c.auditWithoutOutbox} unpublished_after_restart=${unpublished.length}`,
      );
      expect(unpublished).toEqual([]);
      recordFigure({ row: 'H3', name: `round ${round}: committed but unanswered writes at the kill`, value: results.filter((r) => r.status === 'network').length, unit: 'count' });
      recordFigure({ row: 'H3', name: `round ${round}: rows without audit`, value: c.rowsWithoutAudit, unit: 'count' });
      recordFigure({ row: 'H3', name: `round ${round}: committed never published after restart`, value: unpublished.length, unit: 'count' });
    }
    await hub.stop();
    // The window was really "after COMMIT, before the response".
    expectLive('H3', 'writes committed but unanswered at the SIGKILL (the window was hit)', inDoubtTotal);
    // On a loaded machine the 10 commits can spread over more than the hub's 2 s publish wait: a write answered
    // before the kill is then one whose publish timed out, and it must say so — never "sent" while NATS was paused.
    recordFigure({ row: 'H3', name: 'writes answered before the kill (publish wait ran out)', value: answeredBeforeKill.length, unit: 'count' });
    for (const a of answeredBeforeKill) {
      expect(a.status).toBe(200);
      expect(['failed', 'unavailable']).toContain(a.broadcast);
    }
  }, 150_000);

  it('H6: SIGTERM under 50 writes/s: in-flight writes finish, no 500, exit 0, outbox flushed, every ack committed', async () => {
    const l = lab!;
    const hub = await startHubProcess(l.env, { timeoutMs: 60_000 });
    const services = Array.from({ length: 5 }, (_, i) => `h6-svc-${i}`);
    type R = Awaited<ReturnType<typeof write>> & { service: string; n: number; sentAt: number };
    const inflight: Promise<R>[] = [];
    let termAt = 0;
    let n = 0;
    const fire = () => {
      const service = services[n % services.length]!;
      const k = n++;
      const sentAt = Date.now();
      inflight.push(write(hub.url, 'POST', service, k).then((r) => ({ ...r, service, n: k, sentAt })));
    };
    const timer = setInterval(fire, 20);
    await sleep(2000);
    termAt = Date.now();
    hub.signal('SIGTERM');
    await sleep(1000);
    clearInterval(timer);
    const exit = await hub.exited;
    const results = await Promise.all(inflight);
    const during = results.filter((r) => r.sentAt >= termAt);
    const acked = results.filter((r) => r.status === 200 || r.status === 201);
    const s500 = results.filter((r) => typeof r.status === 'number' && r.status >= 500 && r.status !== 503);
    const s503 = during.filter((r) => r.status === 503);
    const timeouts = results.filter((r) => r.status === 'timeout');
    const c = await committed(l);
    const ackedKeys = acked.map((r) => `${r.service}#${r.json!.revision}`);
    const missing = ackedKeys.filter((k) => !c.revisions.includes(k));
    const seen = await published(l);
    const unpublished = c.revisions.filter((k) => !seen.has(k));
    console.log(
      `[H6] sent=${results.length} acked=${acked.length} after_sigterm=${during.length} 503_during_drain=${s503.length} ` +
        `500=${s500.length} timeouts=${timeouts.length} refused=${results.filter((r) => r.status === 'network').length} ` +
        `exit=${exit.code}/${exit.signal} outbox_unsent=${c.pending} unpublished=${unpublished.length}`,
    );
    recordFigure({ row: 'H6', name: '5xx during drain (503 "closing")', value: s503.length, unit: 'count' });
    recordFigure({ row: 'H6', name: '500 / hung requests', value: s500.length + timeouts.length, unit: 'count' });
    recordFigure({ row: 'H6', name: 'outbox rows unsent after exit', value: c.pending, unit: 'count' });
    expect(exit.code).toBe(0);
    expect(s500).toEqual([]);
    expect(timeouts).toEqual([]);
    expect(missing).toEqual([]);
    expect(c.rowsWithoutAudit).toBe(0);
    expect(c.pending).toBe(0);
    expect(unpublished).toEqual([]);
    expect(acked.length).toBeGreaterThan(50);
    expectLive('H6', 'acknowledged writes checked after SIGTERM', acked.length, 50);
    expectLive('H6', 'writes sent after SIGTERM (the drain had load)', during.length);
  }, 90_000);
});
