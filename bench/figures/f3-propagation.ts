/**
 * Figure 3: propagation. A write starts at the hub (POST) → every client's onChange has fired, for 1, 100
 * and 1 000 clients spread over worker processes, vs the composed floor measured in the same run:
 * PostgreSQL UPDATE (same table, same triggers: audit + revision + outbox) commit → NATS publish →
 * receive → one GET per client (N concurrent GETs over N keep-alive connections).
 */
import { connect } from 'nats';
import pg from 'pg';
import { Pool } from 'undici';
import { closeWorkers, putConfig, sampleConfig, startWorker, type Worker } from '../lib/lab.js';
import { dist, type FigureResult, fmt, log, round, sleep, wallMs, within } from '../lib/util.js';
import type { BenchContext } from './context.js';

interface Scenario {
  clients: number;
  workers: number;
  /** NATS connections shared per worker (0: one connection per client). */
  shared: number;
  rounds: number;
  /** The opt-in mode that applies the notice's validated payload instead of refetching (informative row). */
  applyPayload?: boolean;
  /** Clients verify the hub's Ed25519 signature (`nats.verifyKeys`) and apply the payload: no refetch. */
  signed?: boolean;
}

/**
 * Config GETs the hub has answered, counted inside the hub: the sum of its own
 * `hub_http_requests_total{route="/api/v1/config/:service",method="GET"}` over statuses (GET /metrics).
 */
async function hubConfigGets(hubUrl: string): Promise<number> {
  const text = await (await fetch(`${hubUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('hub_http_requests_total{') && line.includes('route="/api/v1/config/:service"') && line.includes('method="GET"')) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

export async function figure3(ctx: BenchContext): Promise<FigureResult> {
  const service = 'bench-prop';
  const floorService = 'bench-floor';
  const hubUrl = ctx.hub.url;
  await putConfig(hubUrl, service, sampleConfig({ round: 0 }));
  await putConfig(hubUrl, floorService, sampleConfig({ round: 0 }));
  const scenarios: Scenario[] = [
    { clients: 1, workers: 1, shared: 0, rounds: ctx.quick ? 8 : 40 },
    { clients: 100, workers: 4, shared: 0, rounds: ctx.quick ? 6 : 30 },
    { clients: 1000, workers: 4, shared: 5, rounds: ctx.quick ? 4 : 20 },
    { clients: 1000, workers: 4, shared: 5, rounds: ctx.quick ? 4 : 20, applyPayload: true },
    { clients: 1, workers: 1, shared: 0, rounds: ctx.quick ? 8 : 40, signed: true },
    { clients: 100, workers: 4, shared: 0, rounds: ctx.quick ? 6 : 30, signed: true },
    { clients: 1000, workers: 4, shared: 5, rounds: ctx.quick ? 4 : 20, signed: true },
  ];
  const db = new pg.Client({ connectionString: ctx.pg.url });
  await db.connect();
  const pub = await connect({ servers: ctx.nats.url, name: 'bench-floor-pub' });
  const subConn = await connect({ servers: ctx.nats.url, name: 'bench-floor-sub' });
  const sub = subConn.subscribe('bench.floor');
  let onFloorMessage: (() => void) | undefined;
  void (async () => {
    for await (const _ of sub) onFloorMessage?.();
  })();
  await subConn.flush();
  let seq = 0;
  const rows: Array<Record<string, string | number>> = [];
  const goals: FigureResult['goals'] = [];
  const data: Record<string, unknown> = {};
  try {
    for (const sc of scenarios) {
      const floorPool = new Pool(hubUrl, { connections: sc.clients });
      const floorSample = async (): Promise<number> => {
        const received = new Promise<void>((resolve) => (onFloorMessage = resolve));
        const t0 = wallMs();
        await db.query(`UPDATE service_configs SET config_json = $1::jsonb, updated_by = 'bench' WHERE service_name = $2`, [
          JSON.stringify(sampleConfig({ round: ++seq })),
          floorService,
        ]);
        pub.publish('bench.floor', JSON.stringify({ service_name: floorService, round: seq }));
        await received;
        await Promise.all(
          Array.from({ length: sc.clients }, async () => {
            const res = await floorPool.request({ path: `/api/v1/config/${floorService}`, method: 'GET' });
            JSON.parse(await res.body.text());
          }),
        );
        return wallMs() - t0;
      };
      // Warm the floor's connections.
      for (let i = 0; i < 3; i++) await floorSample();
      log(`propagation: ${sc.clients} client(s): floor warm, starting workers`);

      const per = Math.ceil(sc.clients / sc.workers);
      const workers: Worker[] = [];
      const fired = new Map<number, number[][]>();
      /** GETs the clients sent in each round (counted by every client's dispatcher; the hub counts its own, below). */
      const getsByRound = new Map<number, number>();
      const waiters = new Map<number, () => void>();
      try {
        for (let w = 0; w < sc.workers; w++) {
          const n = Math.min(per, sc.clients - w * per);
          if (n <= 0) break;
          const worker = startWorker('propagation');
          worker.on('fired', (m) => {
            const r = Number(m.round);
            const list = fired.get(r) ?? [];
            list.push(m.stamps as number[]);
            getsByRound.set(r, (getsByRound.get(r) ?? 0) + Number(m.gets ?? 0));
            fired.set(r, list);
            if (list.length === workers.length) waiters.get(r)?.();
          });
          const verifyKeys = sc.signed ? { [ctx.noticeKey.keyId]: ctx.noticeKey.publicKeyPem } : undefined;
          worker.send({ type: 'start', hubUrl, natsUrl: ctx.nats.url, n, shared: sc.shared, service, applyPayload: sc.applyPayload === true, verifyKeys });
          workers.push(worker);
        }
        const ready = await Promise.all(workers.map((w) => w.next<{ notConnected: number }>('ready', 120_000)));
        const notConnected = ready.reduce((a, r) => a + r.notConnected, 0);
        if (notConnected > 0) throw new Error(`${notConnected} clients never reported NATS connected`);

        const clientRound = async (): Promise<{ all: number; each: number[]; post: number; gets: number; hubGets: number }> => {
          const r = ++seq;
          const done = new Promise<void>((resolve) => waiters.set(r, resolve));
          const hubBefore = await hubConfigGets(hubUrl);
          const t0 = wallMs();
          await putConfig(hubUrl, service, sampleConfig({ round: r }));
          const post = wallMs() - t0;
          await within(10_000, `round ${r} with ${sc.clients} clients`, done);
          waiters.delete(r);
          const each = fired.get(r)!.flat().map((t) => t - t0);
          fired.delete(r);
          const gets = getsByRound.get(r) ?? 0;
          getsByRound.delete(r);
          // Every refetch is answered before its client's onChange fires: by now the hub has counted them all.
          const hubGets = (await hubConfigGets(hubUrl)) - hubBefore;
          return { all: Math.max(...each), each, post, gets, hubGets };
        };
        // Warm-up rounds (not counted).
        for (let i = 0; i < 2; i++) {
          await clientRound();
          await sleep(50);
        }
        const all: number[] = [];
        const each: number[] = [];
        const floor: number[] = [];
        const posts: number[] = [];
        const gets: number[] = [];
        const hubGets: number[] = [];
        for (let i = 0; i < sc.rounds; i++) {
          const s = await clientRound();
          all.push(s.all);
          each.push(...s.each);
          posts.push(s.post);
          gets.push(s.gets);
          hubGets.push(s.hubGets);
          await sleep(30);
          floor.push(await floorSample());
          await sleep(30);
        }
        const da = dist(all);
        const de = dist(each);
        const df = dist(floor);
        const ratio = da.p50 / df.p50;
        rows.push({
          clients: sc.clients,
          layout: `${workers.length} proc, ${sc.shared === 0 ? 'own NATS conn per client' : `${sc.shared} shared NATS conns per proc`}${sc.applyPayload ? ', nats.applyPayload (opt-in, no refetch)' : ''}${sc.signed ? ', signed notices (nats.verifyKeys)' : ''}`,
          'hub GETs per change (counted in the hub)': round(hubGets.reduce((a, b) => a + b, 0) / Math.max(1, hubGets.length), 2),
          'client GETs per change': round(gets.reduce((a, b) => a + b, 0) / Math.max(1, gets.length), 2),
          'all fired p50': round(da.p50, 2),
          'all fired p99': round(da.p99, 2),
          'all fired max': round(da.max, 2),
          'per client p50/p99': `${fmt(de.p50)} / ${fmt(de.p99)}`,
          'POST answered p50': round(dist(posts).p50, 2),
          'floor p50': round(df.p50, 2),
          'floor p99': round(df.p99, 2),
          'floor max': round(df.max, 2),
          'ratio p50': round(ratio, 2),
          rounds: sc.rounds,
        });
        const getsPerChange = hubGets.reduce((a, b) => a + b, 0) / Math.max(1, hubGets.length);
        data[`clients${sc.clients}${sc.applyPayload ? 'applyPayload' : ''}${sc.signed ? 'signed' : ''}`] = { all, floor, gets, hubGets };
        if (sc.signed) {
          // Issue 13: with signed notices a change costs the hub O(1) — no refetch.
          goals.push({ goal: `${sc.clients} client(s), signed notices: hub GETs per change = 0 (counted in the hub)`, measured: `${fmt(getsPerChange)}`, met: getsPerChange === 0 });
          if (sc.clients === 1000) goals.push({ goal: '1000 clients, signed notices: p99 ≤ 150 ms', measured: `${fmt(da.p99)} ms (p50 ${fmt(da.p50)})`, met: da.p99 <= 150 });
          else if (sc.clients === 100) goals.push({ goal: '100 clients, signed notices: p50 ≤ 2× floor', measured: `${fmt(ratio)}× (${fmt(da.p50)} vs ${fmt(df.p50)} ms)`, met: ratio <= 2 });
          else goals.push({ goal: `${sc.clients} client, signed notices: p50 vs floor`, measured: `${fmt(ratio)}× (${fmt(da.p50)} vs ${fmt(df.p50)} ms)`, met: null });
        } else if (sc.applyPayload) goals.push({ goal: `${sc.clients} clients with nats.applyPayload (opt-in): p99 ≤ 100 ms`, measured: `${fmt(da.p99)} ms`, met: null });
        else if (sc.clients <= 100) goals.push({ goal: `${sc.clients} client(s): p50 ≤ 2× floor`, measured: `${fmt(ratio)}× (${fmt(da.p50)} vs ${fmt(df.p50)} ms)`, met: ratio <= 2 });
        else goals.push({ goal: `${sc.clients} clients: p99 ≤ 100 ms`, measured: `${fmt(da.p99)} ms`, met: da.p99 <= 100 });
      } finally {
        await closeWorkers(workers);
        await floorPool.close();
      }
    }
  } finally {
    await db.end().catch(() => undefined);
    await pub.close().catch(() => undefined);
    await subConn.close().catch(() => undefined);
  }
  return {
    id: 3,
    title: 'Propagation: write starts → every onChange fired, ms',
    method:
      'Rounds: the bench POSTs a new config (value carries the round number) to the hub (PostgreSQL + NATS); each worker process stamps every client\'s onChange with performance.timeOrigin + now() (one machine, one clock) and reports when all its clients fired. "all fired" = slowest client of the round; p50/p99/max over rounds; 2 warm-up rounds. Clients: default refetch mode (notice → conditional GET), no poll, no snapshot. Floor, interleaved with the rounds, same hub, same database: a direct `UPDATE service_configs` (audit, revision and outbox triggers fire) committed → NATS publish → a subscriber in the bench receives → N concurrent GETs of the hub over N warm keep-alive connections (N = clients), JSON.parse.',
    rows,
    goals,
    notes: [
      'The applyPayload row is informative: the same 1 000 clients with the opt-in `nats.applyPayload` (the notice\'s validated payload is applied, no refetch), to show how much of the 1 000-client figure is the refetch of every client. Its floor is the same N-GET composition, which that mode does not perform.',
      'The signed rows: the hub signs every notice (Ed25519) and the clients hold its public key (`nats.verifyKeys`), so a verified payload is applied without a refetch. "hub GETs per change" is counted inside the hub (its own `hub_http_requests_total` for the config route, read from /metrics before the write and after the last onChange of the round); "client GETs per change" by every client\'s own dispatcher (an undici interceptor). N per change in the default mode, 0 with signed notices.',
    ],
    data,
  };
}
