/**
 * Scale simulation for docs/scale.md: real nats-server processes on loopback, the hub's real notices, a
 * fleet-shaped subscription layout. Runs the same scenario on a 3-node cluster (full mesh of routes) and
 * on a single node, in one run, and prints a Markdown report (and JSON with OUT=<file>).
 *
 * Layout: SERVICES services × INSTANCES instances each = one subscription per (service, instance) on
 * `config.update.<service>`, spread over CONNS subscriber connections (instance slot k → connection
 * k % CONNS), connection c → node c % nodes. The publisher (the hub's connection) is on node 0, so in the
 * cluster 2/3 of the deliveries cross a route. Subscribers and publisher run in this one Node process: its
 * own receive work (nats.js parsing every delivery) is inside every latency below, an upper bound for
 * the server side.
 *
 * Phases per topology:
 *  1. memory: RSS (/proc/<pid>/status) of every nats-server idle, with the connections, with the subscriptions;
 *     interest propagation: subscribe-all flushed → the publisher's node routes every subject (routez?subs=1),
 *     and a single new subscription on another node → its first delivery (probe publishes every ~0.2 ms);
 *  2. steady: RATE writes/s for STEADY_S s, each a freshly signed notice to a random service;
 *  3. burst: BURSTS times one notice per service back to back (every service changes at once);
 *  4. shared: one more subscription per instance slot on one subject every instance watches
 *     (`config.update.shared-platform`, SERVICES × INSTANCES subscribers), SHARED_ROUNDS notices 300 ms apart;
 *  5. stress: STRESS_S s of notices as fast as flow control allows (batches of 200, at most 40 000
 *     deliveries outstanding): deliveries/s and nats-server CPU per delivery.
 * CPU of every nats-server from /proc/<pid>/stat (utime + stime, all threads) over each phase.
 *
 *   npx tsx bench/tools/sim-nats-cluster.ts                       # 1 000 × 10 over 100 connections
 *   CONNS=1000 TOPOLOGIES=cluster npx tsx bench/tools/sim-nats-cluster.ts
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection } from 'nats';
import { noticeKeyIdFor, signNotice } from '../../src/hub/notice-signature.js';
import { type NatsServerHandle, startNatsCluster, startNatsServer } from '../../test/helpers/lab/nats-server.js';
import { cleanupLab } from '../../test/helpers/lab/registry.js';
import { sampleConfig } from '../lib/lab.js';
import { CLK_TCK, dist, fmt, log, percentile, procCpuTicks, sleep } from '../lib/util.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const INSTANCES = Number(process.env.INSTANCES ?? 10);
const CONNS = Number(process.env.CONNS ?? 100);
const RATE = Number(process.env.RATE ?? 1);
const STEADY_S = Number(process.env.STEADY_S ?? 20);
const BURSTS = Number(process.env.BURSTS ?? 5);
const SHARED_ROUNDS = Number(process.env.SHARED_ROUNDS ?? 10);
const STRESS_S = Number(process.env.STRESS_S ?? 5);
const TOPOLOGIES = (process.env.TOPOLOGIES ?? 'cluster,single').split(',').filter((t) => t === 'cluster' || t === 'single');
const PREFIX = 'config.update';
const SHARED = 'shared-platform';

const serviceName = (i: number): string => `service-${String(i).padStart(4, '0')}-worker`;

// ---------------------------------------------------------------------------------------------------
// The hub's notice: the outbox payload of migrations/005_fleet.sql (jsonb_build_object, so PostgreSQL's
// jsonb key order: shorter keys first, then bytewise), signed as the broadcaster signs it (kid + sig).

function jsonbOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(jsonbOrder);
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(keys.map((k) => [k, jsonbOrder((value as Record<string, unknown>)[k])]));
}

const { privateKey } = generateKeyPairSync('ed25519');
const keyId = noticeKeyIdFor(privateKey);
const encoder = new TextEncoder();

function notice(service: string, revision: number, key: KeyObject = privateKey): Uint8Array {
  const payload = jsonbOrder({
    service_name: service,
    config: sampleConfig({ round: revision }),
    version: '1.0.0',
    updated_at: Date.now(),
    updated_by: 'ops@example.com',
    revision,
    action: 'updated',
  }) as Record<string, unknown>;
  return encoder.encode(JSON.stringify(signNotice(payload, key, keyId)));
}

// ---------------------------------------------------------------------------------------------------
// /proc readings.

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? Number.NaN);
}

interface CpuMark {
  at: number;
  ticks: number[];
  self: NodeJS.CpuUsage;
}

function markCpu(nodes: readonly NatsServerHandle[]): CpuMark {
  return { at: performance.now(), ticks: nodes.map((n) => procCpuTicks(n.pid)), self: process.cpuUsage() };
}

/** CPU since `m`: ms of nats-server CPU per node and in all, this process's, and the wall time. */
function cpuSince(nodes: readonly NatsServerHandle[], m: CpuMark) {
  const perNode = nodes.map((n, i) => ((procCpuTicks(n.pid) - m.ticks[i]!) * 1000) / CLK_TCK);
  const self = process.cpuUsage(m.self);
  return {
    wallMs: performance.now() - m.at,
    natsMs: perNode.reduce((a, b) => a + b, 0),
    perNodeMs: perNode,
    selfMs: (self.user + self.system) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------------
// Deliveries: per subject, the publish time of the message in flight and the receive times by node.

interface InFlight {
  t0: number;
  /** Receive times (ms, performance.now()) by the node of the receiving connection. */
  byNode: number[][];
}

interface Sim {
  nodes: NatsServerHandle[];
  pub: NatsConnection;
  subs: NatsConnection[];
  inFlight: Map<string, InFlight>;
  delivered: number;
}

async function waitDelivered(sim: Sim, target: number, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (sim.delivered < target) {
    if (performance.now() > end) return false;
    await sleep(2);
  }
  return true;
}

function latencies(entries: readonly InFlight[]): { all: number[]; byNode: number[][] } {
  const all: number[] = [];
  const byNode: number[][] = [];
  for (const e of entries) {
    e.byNode.forEach((times, node) => {
      byNode[node] ??= [];
      for (const t of times) {
        all.push(t - e.t0);
        byNode[node]!.push(t - e.t0);
      }
    });
  }
  return { all, byNode };
}


// ---------------------------------------------------------------------------------------------------

async function runTopology(topology: 'cluster' | 'single') {
  log(`${topology}: starting nats-server(s)`);
  const nodes = topology === 'cluster' ? (await startNatsCluster(3, { name: 'scale' })).nodes : [await startNatsServer({ serverName: 'scale-single' })];
  await sleep(1000);
  const rssIdle = nodes.map((n) => rssKiB(n.pid));

  const pub = await connect({ servers: nodes[0]!.url, name: 'hub', noRandomize: true });
  const subs: NatsConnection[] = [];
  for (let c = 0; c < CONNS; c += 50) {
    const batch = Array.from({ length: Math.min(50, CONNS - c) }, (_, k) =>
      connect({ servers: nodes[(c + k) % nodes.length]!.url, name: `instances-${c + k}`, noRandomize: true, pingInterval: 10_000 }),
    );
    subs.push(...(await Promise.all(batch)));
  }
  await sleep(1000);
  const rssConns = nodes.map((n) => rssKiB(n.pid));
  const sim: Sim = { nodes, pub, subs, inFlight: new Map(), delivered: 0 };

  const subscribe = (service: string, slot: number): void => {
    const c = slot % CONNS;
    const node = c % nodes.length;
    const subject = `${PREFIX}.${service}`;
    subs[c]!.subscribe(subject, {
      callback: () => {
        const now = performance.now();
        sim.delivered++;
        const f = sim.inFlight.get(subject);
        if (f === undefined) return;
        const times = f.byNode[node];
        if (times === undefined) f.byNode[node] = [now];
        else times.push(now);
      },
    });
  };

  // 1. Subscriptions, interest propagation, memory.
  const tSub = performance.now();
  for (let s = 0; s < SERVICES; s++) for (let i = 0; i < INSTANCES; i++) subscribe(serviceName(s), s * INSTANCES + i);
  await Promise.all(subs.map((c) => c.flush()));
  const subscribedMs = performance.now() - tSub;
  let bulkInterestMs = 0;
  if (nodes.length > 1) {
    // Every peer of node 0 has subscribers of every service (10 instances land on 10 connections, 3 nodes).
    const expected = new Set(Array.from({ length: SERVICES }, (_, s) => `${PREFIX}.${serviceName(s)}`));
    const peersWith = nodes.length - 1;
    for (;;) {
      const rz = await nodes[0]!.monitor<{ routes?: Array<{ remote_id: string; subscriptions_list?: string[] }> }>('routez?subs=1');
      const full = (rz.routes ?? []).filter((r) => [...expected].every((s) => r.subscriptions_list?.includes(s)));
      if (new Set(full.map((r) => r.remote_id)).size >= peersWith) break;
      if (performance.now() - tSub > 30_000) throw new Error('interest did not propagate within 30 s');
      await sleep(10);
    }
    bulkInterestMs = performance.now() - tSub;
  }
  await sleep(1500);
  const rssSubs = nodes.map((n) => rssKiB(n.pid));
  const subsz = await Promise.all(nodes.map((n) => n.monitor<{ num_subscriptions: number }>('subsz')));

  // Warm-up: one notice per service must reach every subscriber.
  for (let s = 0; s < SERVICES; s++) pub.publish(`${PREFIX}.${serviceName(s)}`, notice(serviceName(s), 1));
  await pub.flush();
  if (!(await waitDelivered(sim, SERVICES * INSTANCES, 20_000))) throw new Error(`warm-up: ${sim.delivered}/${SERVICES * INSTANCES} delivered`);

  // A single new subscription on another node → its first delivery from node 0 (probes every ~0.2 ms).
  const probeMs: number[] = [];
  for (let k = 0; k < 20; k++) {
    const subject = `${PREFIX}.probe-${k}`;
    const sc = subs[nodes.length > 1 ? 1 : 0]!;
    let got = 0;
    const sub = sc.subscribe(subject, { callback: () => (got ||= performance.now()) });
    await sc.flush();
    const t = performance.now();
    while (got === 0 && performance.now() - t < 5000) {
      pub.publish(subject, encoder.encode('p'));
      await new Promise((r) => setImmediate(r));
    }
    probeMs.push(got - t);
    sub.unsubscribe();
  }

  // 2. Steady: RATE writes/s, a random service each, a freshly signed notice.
  log(`${topology}: steady ${RATE}/s for ${STEADY_S} s`);
  let revision = 10;
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const steadyEntries: InFlight[] = [];
  let noticeBytes = 0;
  const steadyCpu = markCpu(nodes);
  const steadyStart = sim.delivered;
  for (let w = 0; w < STEADY_S * RATE; w++) {
    const due = steadyCpu.at + (w * 1000) / RATE;
    await sleep(Math.max(0, due - performance.now()));
    const service = serviceName(rand(SERVICES));
    const data = notice(service, ++revision);
    noticeBytes = data.byteLength;
    const entry: InFlight = { t0: performance.now(), byNode: [] };
    sim.inFlight.set(`${PREFIX}.${service}`, entry);
    steadyEntries.push(entry);
    pub.publish(`${PREFIX}.${service}`, data);
  }
  await waitDelivered(sim, steadyStart + STEADY_S * RATE * INSTANCES, 5000);
  const steady = cpuSince(nodes, steadyCpu);
  const steadyLost = steadyStart + STEADY_S * RATE * INSTANCES - sim.delivered;

  // 3. Bursts: every service changes at once (one notice each, back to back).
  log(`${topology}: ${BURSTS} bursts of ${SERVICES} notices`);
  const bursts: Array<{ allMs: number; p99Ms: number; p50Ms: number; perSec: number; natsMs: number; selfMs: number; lost: number }> = [];
  for (let b = 0; b < BURSTS; b++) {
    const payloads = Array.from({ length: SERVICES }, (_, s) => notice(serviceName(s), ++revision));
    sim.inFlight.clear();
    const entries: InFlight[] = [];
    const start = sim.delivered;
    const mark = markCpu(nodes);
    for (let s = 0; s < SERVICES; s++) {
      const entry: InFlight = { t0: performance.now(), byNode: [] };
      sim.inFlight.set(`${PREFIX}.${serviceName(s)}`, entry);
      entries.push(entry);
      pub.publish(`${PREFIX}.${serviceName(s)}`, payloads[s]!);
    }
    await pub.flush();
    await waitDelivered(sim, start + SERVICES * INSTANCES, 10_000);
    const cpu = cpuSince(nodes, mark);
    const t0 = entries[0]!.t0;
    const recv = entries.flatMap((e) => e.byNode.flat()).map((t) => t - t0);
    const lat = latencies(entries).all;
    bursts.push({
      allMs: Math.max(...recv),
      p99Ms: percentile(recv, 0.99),
      p50Ms: percentile(lat, 0.5),
      perSec: recv.length / (Math.max(...recv) / 1000),
      natsMs: cpu.natsMs,
      selfMs: cpu.selfMs,
      lost: start + SERVICES * INSTANCES - sim.delivered,
    });
    await sleep(1000);
  }

  // 4. Shared: one subject every instance watches.
  log(`${topology}: shared subject, ${SERVICES * INSTANCES} subscribers, ${SHARED_ROUNDS} rounds`);
  const rssBeforeShared = nodes.map((n) => rssKiB(n.pid));
  for (let k = 0; k < SERVICES * INSTANCES; k++) subscribe(SHARED, k);
  await Promise.all(subs.map((c) => c.flush()));
  if (nodes.length > 1) await nodes[0]!.waitForRouteInterest(`${PREFIX}.${SHARED}`);
  await sleep(1500);
  const rssShared = nodes.map((n) => rssKiB(n.pid));
  const shared: Array<{ p50Ms: number; p99Ms: number; maxMs: number; natsMs: number; lost: number }> = [];
  const sharedByNode: number[][] = [];
  for (let r = 0; r < SHARED_ROUNDS; r++) {
    const data = notice(SHARED, ++revision);
    const entry: InFlight = { t0: 0, byNode: [] };
    sim.inFlight.set(`${PREFIX}.${SHARED}`, entry);
    const start = sim.delivered;
    const mark = markCpu(nodes);
    entry.t0 = performance.now();
    pub.publish(`${PREFIX}.${SHARED}`, data);
    await waitDelivered(sim, start + SERVICES * INSTANCES, 10_000);
    const cpu = cpuSince(nodes, mark);
    const lat = latencies([entry]);
    lat.byNode.forEach((l, n) => {
      sharedByNode[n] ??= [];
      sharedByNode[n]!.push(percentile(l, 0.99));
    });
    shared.push({ p50Ms: percentile(lat.all, 0.5), p99Ms: percentile(lat.all, 0.99), maxMs: Math.max(...lat.all), natsMs: cpu.natsMs, lost: start + SERVICES * INSTANCES - sim.delivered });
    await sleep(300);
  }

  // 5. Stress: notices to the services in turn, as fast as flow control allows.
  log(`${topology}: stress for ${STRESS_S} s`);
  sim.inFlight.clear();
  const stressPayload = notice(serviceName(0), ++revision);
  const stressStart = sim.delivered;
  let published = 0;
  const stressCpu = markCpu(nodes);
  let next = 0;
  while (performance.now() - stressCpu.at < STRESS_S * 1000) {
    for (let i = 0; i < 200; i++) {
      pub.publish(`${PREFIX}.${serviceName(next)}`, stressPayload);
      next = (next + 1) % SERVICES;
    }
    published += 200;
    await pub.flush();
    while ((published * INSTANCES - (sim.delivered - stressStart)) > 40_000) await sleep(1);
  }
  await waitDelivered(sim, stressStart + published * INSTANCES, 10_000);
  const stress = cpuSince(nodes, stressCpu);
  const stressDelivered = sim.delivered - stressStart;

  await Promise.all([pub, ...subs].map((c) => c.close()));
  await Promise.all(nodes.map((n) => n.dispose()));

  const steadyLat = latencies(steadyEntries);
  const subsTotal = SERVICES * INSTANCES;
  const sum = (a: readonly number[]) => a.reduce((x, y) => x + y, 0);
  return {
    topology,
    nodes: nodes.length,
    noticeBytes,
    subscriptions: subsTotal,
    connections: CONNS,
    memory: {
      rssIdleKiB: rssIdle,
      rssConnsKiB: rssConns,
      rssSubsKiB: rssSubs,
      perConnectionKiB: (sum(rssConns) - sum(rssIdle)) / CONNS,
      perSubscriptionBytes: ((sum(rssSubs) - sum(rssConns)) * 1024) / subsTotal,
      sharedSubjectPerSubscriptionBytes: ((sum(rssShared) - sum(rssBeforeShared)) * 1024) / subsTotal,
      subszPerNode: subsz.map((s) => s.num_subscriptions),
    },
    interest: { subscribeFlushedMs: subscribedMs, bulkToPublisherNodeMs: bulkInterestMs, singleNewSubscription: dist(probeMs) },
    steady: {
      writes: STEADY_S * RATE,
      deliveries: steadyLat.all.length,
      lost: steadyLost,
      latency: dist(steadyLat.all),
      latencyByNode: steadyLat.byNode.map((l) => dist(l)),
      perMessageAll: dist(steadyEntries.map((e) => Math.max(...e.byNode.flat()) - e.t0)),
      natsCpuPctOfOneCore: (steady.natsMs / steady.wallMs) * 100,
      perNodeCpuPct: steady.perNodeMs.map((ms) => (ms / steady.wallMs) * 100),
    },
    bursts,
    shared: { rounds: shared, p99ByNode: sharedByNode.map((l) => dist(l)), memoryKiB: { before: rssBeforeShared, after: rssShared } },
    stress: {
      seconds: stress.wallMs / 1000,
      published,
      delivered: stressDelivered,
      deliveriesPerSec: stressDelivered / (stress.wallMs / 1000),
      natsCpuMs: stress.natsMs,
      natsCpuUsPerDelivery: (stress.natsMs * 1000) / stressDelivered,
      perNodeCpuMs: stress.perNodeMs,
      selfCpuUsPerDelivery: (stress.selfMs * 1000) / stressDelivered,
    },
  };
}

type Result = Awaited<ReturnType<typeof runTopology>>;

function report(results: readonly Result[], meta: string): string {
  const lines: string[] = [];
  const row = (cells: Array<string | number>) => lines.push(`| ${cells.join(' | ')} |`);
  lines.push(`# sim-nats-cluster — ${meta}`, '');
  row(['measure', ...results.map((r) => `${r.topology} (${r.nodes} node${r.nodes > 1 ? 's' : ''})`)]);
  row(['---', ...results.map(() => '---:')]);
  const f = (x: number, d = 2) => fmt(x, d);
  const add = (name: string, get: (r: Result) => string) => row([name, ...results.map(get)]);
  add('notice size, bytes (signed, hub payload)', (r) => String(r.noticeBytes));
  add('subscriptions / connections', (r) => `${r.subscriptions} / ${r.connections}`);
  add('subsz num_subscriptions per node', (r) => r.memory.subszPerNode.join(' / '));
  add('RSS idle, MiB per node', (r) => r.memory.rssIdleKiB.map((k) => f(k / 1024, 1)).join(' / '));
  add('RSS with subscriptions, MiB per node', (r) => r.memory.rssSubsKiB.map((k) => f(k / 1024, 1)).join(' / '));
  add('RSS per connection, KiB (all nodes)', (r) => f(r.memory.perConnectionKiB, 1));
  add('RSS per subscription, bytes (all nodes)', (r) => f(r.memory.perSubscriptionBytes, 0));
  add('subscribe all + flush, ms', (r) => f(r.interest.subscribeFlushedMs, 0));
  add('all interest at the publisher node, ms', (r) => (r.nodes > 1 ? f(r.interest.bulkToPublisherNodeMs, 0) : '—'));
  add('one new subscription → first delivery, p50 / p99 ms', (r) => `${f(r.interest.singleNewSubscription.p50)} / ${f(r.interest.singleNewSubscription.p99)}`);
  add(`steady ${RATE}/s: delivery latency p50 / p99 / max ms`, (r) => `${f(r.steady.latency.p50)} / ${f(r.steady.latency.p99)} / ${f(r.steady.latency.max)}`);
  add('… by subscriber node, p50 / p99 ms', (r) => r.steady.latencyByNode.map((d) => `${f(d.p50)}/${f(d.p99)}`).join(', '));
  add('… all subscribers of a message, p50 / p99 ms', (r) => `${f(r.steady.perMessageAll.p50)} / ${f(r.steady.perMessageAll.p99)}`);
  add('… nats-server CPU, % of one core (all nodes)', (r) => f(r.steady.natsCpuPctOfOneCore, 3));
  add('… lost deliveries', (r) => String(r.steady.lost));
  const med = (a: readonly number[]) => percentile(a, 0.5);
  add(`burst of ${SERVICES} notices (${SERVICES * INSTANCES} deliveries): last delivery, median of ${BURSTS} ms`, (r) => f(med(r.bursts.map((b) => b.allMs))));
  add('… 99 % delivered, median ms', (r) => f(med(r.bursts.map((b) => b.p99Ms))));
  add('… deliveries/s, median', (r) => f(med(r.bursts.map((b) => b.perSec)), 0));
  add('… nats-server CPU per delivery, µs (all bursts, all nodes)', (r) =>
    f((r.bursts.reduce((a, b) => a + b.natsMs, 0) * 1000) / (r.bursts.length * SERVICES * INSTANCES), 2),
  );
  add('… lost deliveries (all bursts)', (r) => String(r.bursts.reduce((a, b) => a + b.lost, 0)));
  add(`shared subject (${SERVICES * INSTANCES} subscribers): p50 / p99 / max ms, median of ${SHARED_ROUNDS}`, (r) =>
    `${f(med(r.shared.rounds.map((x) => x.p50Ms)))} / ${f(med(r.shared.rounds.map((x) => x.p99Ms)))} / ${f(med(r.shared.rounds.map((x) => x.maxMs)))}`,
  );
  add('… worst round p99 ms', (r) => f(Math.max(...r.shared.rounds.map((x) => x.p99Ms))));
  add('… nats-server CPU per delivery, µs (all rounds, all nodes)', (r) =>
    f((r.shared.rounds.reduce((a, b) => a + b.natsMs, 0) * 1000) / (r.shared.rounds.length * SERVICES * INSTANCES), 2),
  );
  add('… p99 by subscriber node (node 0 = the publisher\'s), median ms', (r) => r.shared.p99ByNode.map((d) => f(d.p50)).join(' / '));
  add('… lost deliveries (all rounds)', (r) => String(r.shared.rounds.reduce((a, b) => a + b.lost, 0)));
  add(`stress ${STRESS_S} s: deliveries/s`, (r) => f(r.stress.deliveriesPerSec, 0));
  add('… nats-server CPU per delivery, µs (all nodes)', (r) => f(r.stress.natsCpuUsPerDelivery, 2));
  add('… nats-server CPU per node, ms', (r) => r.stress.perNodeCpuMs.map((x) => f(x, 0)).join(' / '));
  add('… receiver (this process) CPU per delivery, µs', (r) => f(r.stress.selfCpuUsPerDelivery, 2));
  return lines.join('\n');
}

try {
  const version = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const started = new Date().toISOString();
  const results: Result[] = [];
  for (const t of TOPOLOGIES) results.push(await runTopology(t as 'cluster' | 'single'));
  const meta = `${started}, ${SERVICES} services × ${INSTANCES} instances over ${CONNS} connections, load average at start ${version}`;
  console.log(report(results, meta));
  if (process.env.OUT) writeFileSync(process.env.OUT, `${JSON.stringify({ meta, results }, null, 2)}\n`);
} finally {
  await cleanupLab();
}
