/**
 * Scale simulation for docs/scale.md, the PostgreSQL side: a private PostgreSQL cluster (test/helpers/lab,
 * fsync ON here unless FSYNC=off) with the hub's migrations as they are on disk (examples/hub/migrations,
 * applied in order: audit, revision, outbox and — with 006 — the NOTIFY trigger on service_configs),
 * SERVICES rows, LISTENERS connections that LISTEN on `hub_config_changes` (one per hub replica).
 *
 * The write is the hub's write path as two transactions (sql-store.ts): BEGIN; SELECT … FOR UPDATE;
 * UPDATE service_configs … RETURNING; COMMIT — then the outbox claim: BEGIN; SELECT … FROM config_outbox …
 * FOR UPDATE SKIP LOCKED; UPDATE config_outbox SET published_at; COMMIT (the NATS publish between them is left out).
 *
 * Phases:
 *  1. steady: 1 write/s for STEADY_S s: commit latency, and commit → NOTIFY received at every listener;
 *  2. saturation: WRITERS concurrent writers for PHASE_S s, NOTIFY trigger on, then off (ALTER TABLE …
 *     DISABLE TRIGGER), twice interleaved: writes/s and PostgreSQL CPU per write (postmaster + children,
 *     /proc/<pid>/stat), NOTIFY latency under load;
 *  3. reads: WRITERS connections running the hub's GET query (one row by primary key) for PHASE_S s:
 *     reads/s and PostgreSQL CPU per read (what every GET costs the database when the hub does not cache);
 *  4. fleet write-behind: the instance registry's upsert (examples/hub/fleet/instance-sql.ts, 500-row
 *     statements) of FLEET_ROWS rows per flush, flushes back to back for PHASE_S s: rows/s, CPU per row.
 * WAL bytes per write and per upserted row (pg_current_wal_lsn), and the audit log's bytes per row.
 *
 *   npx tsx bench/tools/sim-pg-notify.ts
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { type InstanceRow, upsertInstances } from '../../examples/hub/fleet/instance-sql.js';
import { loadMigrations } from '../../examples/hub/store/migrate.js';
import { childPids, startPostgres } from '../../test/helpers/lab/postgres-cluster.js';
import { cleanupLab } from '../../test/helpers/lab/registry.js';
import { sampleConfig } from '../lib/lab.js';
import { CLK_TCK, dist, fmt, log, percentile, procCpuTicks, sleep } from '../lib/util.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const LISTENERS = Number(process.env.LISTENERS ?? 4);
const WRITERS = Number(process.env.WRITERS ?? 4);
const STEADY_S = Number(process.env.STEADY_S ?? 10);
const PHASE_S = Number(process.env.PHASE_S ?? 5);
const FLEET_ROWS = Number(process.env.FLEET_ROWS ?? 2000);
const FSYNC = process.env.FSYNC === 'off' ? 'off' : 'on';
const CHANNEL = 'hub_config_changes';

const serviceName = (i: number): string => `service-${String(i).padStart(4, '0')}-worker`;

function ticks(pid: number): number {
  try {
    return procCpuTicks(pid);
  } catch {
    return 0;
  }
}

/**
 * PostgreSQL CPU (ms) of the postmaster and its children since the mark. Backends that exit in between
 * are lost, so every connection here stays open through a phase.
 */
function pgCpu(postmaster: number) {
  const pids = [postmaster, ...childPids(postmaster)];
  const start = new Map(pids.map((p) => [p, ticks(p)]));
  return (): number => {
    let t = 0;
    for (const p of [postmaster, ...childPids(postmaster)]) t += ticks(p) - (start.get(p) ?? 0);
    return (t * 1000) / CLK_TCK;
  };
}


try {
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const started = new Date().toISOString();
  log(`starting PostgreSQL (fsync=${FSYNC})`);
  const pgc = await startPostgres({ maxConnections: 100, settings: { fsync: FSYNC } });
  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: pgc.url });
    await c.connect();
    return c;
  };
  const admin = await connect();
  const migrations = await loadMigrations();
  for (const m of migrations) await admin.query(m.sql);
  const hasNotify = (await admin.query(`SELECT 1 FROM pg_trigger WHERE tgname = 'hub_notify_change'`)).rowCount === 1;
  const config = JSON.stringify(sampleConfig({ round: 0 }));
  await admin.query(
    `INSERT INTO service_configs (service_name, config_json, version, created_by, updated_by)
     SELECT 'service-' || lpad(i::text, 4, '0') || '-worker', $1::jsonb, '1.0.0', 'sim', 'sim' FROM generate_series(0, $2 - 1) AS i`,
    [config, SERVICES],
  );

  // Listeners: one per hub replica. Received time per (service, revision) per listener.
  const received = new Map<string, number[]>();
  const listeners: pg.Client[] = [];
  for (let i = 0; i < LISTENERS; i++) {
    const c = await connect();
    c.on('notification', (n) => {
      const now = performance.now();
      const p = JSON.parse(n.payload ?? '{}') as { service?: string; revision?: number };
      const key = `${p.service}:${p.revision}`;
      const list = received.get(key);
      if (list === undefined) received.set(key, [now]);
      else list.push(now);
    });
    await c.query(`LISTEN ${CHANNEL}`);
    listeners.push(c);
  }

  const writers = await Promise.all(Array.from({ length: WRITERS }, () => connect()));
  let round = 0;
  /** The hub's write: returns commit-acknowledged time and the key of its NOTIFY. */
  const write = async (db: pg.Client, service: string): Promise<{ t0: number; tCommit: number; key: string }> => {
    const t0 = performance.now();
    await db.query('BEGIN');
    await db.query('SELECT service_name, revision FROM service_configs WHERE service_name = $1 FOR UPDATE', [service]);
    const r = await db.query<{ revision: string }>(
      'UPDATE service_configs SET config_json = $2::jsonb, updated_by = $3 WHERE service_name = $1 RETURNING revision',
      [service, JSON.stringify(sampleConfig({ round: ++round })), 'ops@example.com'],
    );
    await db.query('COMMIT');
    const tCommit = performance.now();
    const revision = Number(r.rows[0]?.revision);
    await db.query('BEGIN');
    const claimed = await db.query<{ id: string }>(
      `SELECT id FROM config_outbox WHERE published_at IS NULL AND dead_at IS NULL AND service_name = $1 AND revision = $2
       LIMIT 1 FOR UPDATE SKIP LOCKED`,
      [service, revision],
    );
    if (claimed.rows.length > 0) await db.query('UPDATE config_outbox SET published_at = NOW() WHERE id = ANY($1::bigint[])', [claimed.rows.map((x) => x.id)]);
    await db.query('COMMIT');
    return { t0, tCommit, key: `${service}:${revision}` };
  };

  /** WAL bytes written since `lsn` (pg_current_wal_lsn). */
  const walLsn = async (): Promise<string> => (await admin.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
  const walSince = async (lsn: string): Promise<number> =>
    Number((await admin.query<{ b: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint AS b', [lsn])).rows[0]!.b);

  const notifyLatencies = async (writes: ReadonlyArray<{ tCommit: number; key: string }>): Promise<number[]> => {
    await sleep(300);
    const out: number[] = [];
    for (const w of writes) for (const t of received.get(w.key) ?? []) out.push(t - w.tCommit);
    return out;
  };

  // 1. Steady: 1 write/s.
  log(`steady: 1 write/s for ${STEADY_S} s, ${LISTENERS} listeners`);
  const steadyWrites: Array<{ t0: number; tCommit: number; key: string }> = [];
  const steadyStart = performance.now();
  for (let i = 0; i < STEADY_S; i++) {
    await sleep(Math.max(0, steadyStart + i * 1000 - performance.now()));
    steadyWrites.push(await write(writers[0]!, serviceName(i % SERVICES)));
  }
  const steadyNotify = await notifyLatencies(steadyWrites);

  // 2. Saturation, NOTIFY on / off interleaved.
  const saturate = async (label: string) => {
    const done: Array<{ t0: number; tCommit: number; key: string }> = [];
    const lsn = await walLsn();
    const cpu = pgCpu(pgc.pid!);
    const t = performance.now();
    let next = 0;
    await Promise.all(
      writers.map(async (db) => {
        while (performance.now() - t < PHASE_S * 1000) done.push(await write(db, serviceName(next++ % SERVICES)));
      }),
    );
    const wall = (performance.now() - t) / 1000;
    const cpuMs = cpu();
    const wal = await walSince(lsn);
    const notify = await notifyLatencies(done);
    log(`${label}: ${done.length} writes in ${wall.toFixed(1)} s`);
    return {
      label,
      writesPerSec: done.length / wall,
      commit: dist(done.map((w) => w.tCommit - w.t0)),
      pgCpuUsPerWrite: (cpuMs * 1000) / done.length,
      walBytesPerWrite: wal / done.length,
      notify: dist(notify),
      notifiesPerWrite: notify.length / done.length,
    };
  };
  const sat: Array<Awaited<ReturnType<typeof saturate>>> = [];
  for (let k = 0; k < 2; k++) {
    if (hasNotify) await admin.query('ALTER TABLE service_configs ENABLE TRIGGER hub_notify_change');
    sat.push(await saturate(hasNotify ? 'NOTIFY trigger on' : 'no NOTIFY trigger (006 absent)'));
    if (hasNotify) {
      await admin.query('ALTER TABLE service_configs DISABLE TRIGGER hub_notify_change');
      sat.push(await saturate('NOTIFY trigger off'));
    }
  }
  if (hasNotify) await admin.query('ALTER TABLE service_configs ENABLE TRIGGER hub_notify_change');

  // 3. Reads: the GET query, one row by primary key.
  log(`reads: ${WRITERS} connections for ${PHASE_S} s`);
  const readCpu = pgCpu(pgc.pid!);
  const tRead = performance.now();
  let reads = 0;
  await Promise.all(
    writers.map(async (db) => {
      while (performance.now() - tRead < PHASE_S * 1000) {
        await db.query('SELECT * FROM service_configs WHERE service_name = $1', [serviceName(reads++ % SERVICES)]);
      }
    }),
  );
  const readWall = (performance.now() - tRead) / 1000;
  const readCpuMs = readCpu();

  // 4. Fleet write-behind: FLEET_ROWS instance rows per flush.
  log(`fleet upserts: ${FLEET_ROWS} rows per flush for ${PHASE_S} s`);
  const executor = {
    query: async <T>(text: string, params?: unknown[]) => (await writers[0]!.query(text, params)).rows as T[],
    exec: async (sql: string) => {
      await writers[0]!.query(sql);
    },
  };
  const fleetRows = (now: number): InstanceRow[] =>
    Array.from({ length: FLEET_ROWS }, (_, i) => ({
      service_name: serviceName(i % SERVICES),
      instance_id: `pod-${String(i).padStart(5, '0')}-abcdef`,
      host: `node-${i % 200}.example.internal`,
      pid: 1000 + i,
      client_version: '0.1.0',
      revision: 12,
      source: 'hub',
      stale: false,
      last_error: null,
      schema_hash: '1e63a4b7c9d2e5f80112233445566778899aabbccddeeff00112233445566778',
      last_seen: now,
      expires_at: now + 180_000,
    }));
  const fleetLsn = await walLsn();
  const fleetCpu = pgCpu(pgc.pid!);
  const tFleet = performance.now();
  let upserted = 0;
  const flushMs: number[] = [];
  while (performance.now() - tFleet < PHASE_S * 1000) {
    const t = performance.now();
    await upsertInstances(executor, fleetRows(Date.now()));
    flushMs.push(performance.now() - t);
    upserted += FLEET_ROWS;
  }
  const fleetWall = (performance.now() - tFleet) / 1000;
  const fleetCpuMs = fleetCpu();
  const fleetWal = await walSince(fleetLsn);
  const audit = (
    await admin.query<{ bytes: string; n: string }>(
      `SELECT pg_total_relation_size('config_audit_log')::bigint AS bytes, (SELECT count(*) FROM config_audit_log)::bigint AS n`,
    )
  ).rows[0]!;

  await Promise.all([admin, ...listeners, ...writers].map((c) => c.end()));

  const lines: string[] = [];
  const row = (...cells: Array<string | number>) => lines.push(`| ${cells.join(' | ')} |`);
  lines.push(
    `# sim-pg-notify — ${started}, fsync=${FSYNC}, ${SERVICES} services, ${LISTENERS} listeners, ${WRITERS} writers, migrations ${migrations.map((m) => m.name.slice(0, 3)).join(',')}, load average at start ${loadavg}`,
    '',
  );
  row('measure', 'value');
  row('---', '---:');
  const sd = dist(steadyWrites.map((w) => w.tCommit - w.t0));
  const sn = dist(steadyNotify);
  row('steady 1 write/s: write transaction (BEGIN … COMMIT) p50 / p99 ms', `${fmt(sd.p50)} / ${fmt(sd.p99)}`);
  row(`… commit acknowledged → NOTIFY at each of ${LISTENERS} listeners, p50 / p99 / max ms`, `${fmt(sn.p50)} / ${fmt(sn.p99)} / ${fmt(sn.max)}`);
  row('… NOTIFYs received per write (all listeners)', fmt(steadyNotify.length / steadyWrites.length));
  for (const s of sat) {
    row(`saturation, ${s.label}: writes/s (hub write + outbox claim, ${WRITERS} writers)`, fmt(s.writesPerSec, 0));
    row(`… write transaction p50 / p99 ms`, `${fmt(s.commit.p50)} / ${fmt(s.commit.p99)}`);
    row(`… PostgreSQL CPU per write, µs`, fmt(s.pgCpuUsPerWrite, 0));
    row(`… WAL per write, bytes`, fmt(s.walBytesPerWrite, 0));
    row(`… NOTIFY latency p50 / p99 ms, received per write`, s.notify.n > 0 ? `${fmt(s.notify.p50)} / ${fmt(s.notify.p99)}, ${fmt(s.notifiesPerWrite)}` : '—');
  }
  row(`reads (GET query by primary key, ${WRITERS} connections): reads/s`, fmt(reads / readWall, 0));
  row('… PostgreSQL CPU per read, µs', fmt((readCpuMs * 1000) / reads, 1));
  row(`fleet upsert, ${FLEET_ROWS} rows per flush: rows/s`, fmt(upserted / fleetWall, 0));
  row('… flush p50 / p99 ms', `${fmt(percentile(flushMs, 0.5))} / ${fmt(percentile(flushMs, 0.99))}`);
  row('… PostgreSQL CPU per row, µs', fmt((fleetCpuMs * 1000) / upserted, 1));
  row('… WAL per row, bytes', fmt(fleetWal / upserted, 0));
  row('config_audit_log on disk (table + indexes + TOAST) per row, bytes', fmt(Number(audit.bytes) / Number(audit.n), 0));
  console.log(lines.join('\n'));
} finally {
  await cleanupLab();
}
