/**
 * Propagation worker: N ConfigClients watching one service through NATS (each with its own connection, or
 * sharing `shared` connections via `nats: { connection }`). Every onChange is stamped with a wall clock
 * (timeOrigin + now, comparable across processes on one machine); once all N clients saw round r the
 * stamps go back to the parent. `cpu` answers with the process's CPU time, signature checks and fleet report requests (figure 8).
 */
import type { ServicesMap } from '../../src/options.js';
import { connect, type NatsConnection } from 'nats';
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';
import { noticeSignatureChecks } from '../../src/watch/notice.js';

interface Start {
  type: 'start';
  hubUrl: string;
  natsUrl: string;
  n: number;
  shared: number;
  service: string;
  applyPayload: boolean;
  verifyKeys?: Record<string, string> | undefined;
  /** false: `fired` carries no stamps (figure 8 counts this process's CPU, the bench's IPC is not the client's). */
  stamps?: boolean;
  /** false: the clients send no fleet reports (figure 8's row that separates their cost). */
  fleetReport?: boolean;
}

const schema = z.looseObject({ round: z.number().int(), operational: z.looseObject({ batch_size: z.number().int() }) });
const clients: ConfigClient[] = [];
const connections: NatsConnection[] = [];
const stamps = new Map<number, number[]>();
/** GETs this worker's clients sent to the hub, counted by their shared dispatcher. */
let gets = 0;
let getsReported = 0;
/** Fleet report requests (POST, docs/fleet.md §3) this worker's clients sent. */
let posts = 0;
const dispatcher = new Agent().compose((dispatch) => (options, handler) => {
  // GETs only: the fleet report requests are not refetches.
  if (options.method === 'GET') gets++;
  else if (options.method === 'POST') posts++;
  return dispatch(options, handler);
});
let n = 0;

function send(m: unknown): void {
  process.send?.(m);
}

async function start(m: Start): Promise<void> {
  n = m.n;
  for (let i = 0; i < m.shared; i++) connections.push(await connect({ servers: m.natsUrl, name: `bench-prop-${process.pid}-${i}` }));
  for (let i = 0; i < m.n; i++) {
    const mode = { applyPayload: m.applyPayload, ...(m.verifyKeys ? { verifyKeys: m.verifyKeys } : {}) };
    const nats = m.shared > 0 ? { connection: connections[i % m.shared]!, ...mode } : { servers: m.natsUrl, ...mode };
    const client = new ConfigClient({
      hubUrl: m.hubUrl,
      snapshotDir: false,
      pollIntervalMs: false,
      // The initial load of 1 000 clients at once is figure 5's subject, not this one's: give it time.
      startupTimeoutMs: 60_000,
      transport: { dispatcher },
      fleetReport: m.fleetReport ?? true,
      nats,
      services: { [m.service]: { schema } } as ServicesMap,
    });
    clients.push(client);
    const withStamps = m.stamps !== false;
    client.onChange(m.service, (next) => {
      const r = (next as { round: number }).round;
      const list = stamps.get(r) ?? [];
      stamps.set(r, list);
      list.push(withStamps ? performance.timeOrigin + performance.now() : 0);
      if (list.length === n) {
        stamps.delete(r);
        // GETs since the last report: the refetches this change caused (0 when the payload is applied).
        send(withStamps ? { type: 'fired', round: r, stamps: list, gets: gets - getsReported } : { type: 'fired', round: r });
        getsReported = gets;
      }
    });
  }
  const t0 = Date.now();
  if (process.env.BENCH_DEBUG) process.stderr.write(`worker ${process.pid}: ${m.n} clients constructed, get ${m.hubUrl}\n`);
  await Promise.all(clients.map((c) => c.get(m.service)));
  if (process.env.BENCH_DEBUG) process.stderr.write(`worker ${process.pid}: all got in ${Date.now() - t0} ms\n`);
  // Wait until every client's NATS subscription is live (the watcher starts with the first get).
  const deadline = Date.now() + 15_000;
  while (clients.some((c) => c.status(m.service).nats !== 'connected') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const notConnected = clients.filter((c) => c.status(m.service).nats !== 'connected').length;
  for (const nc of connections) await nc.flush();
  await new Promise((r) => setTimeout(r, 200)); // the subscribe-time resync GETs are not a change's
  getsReported = gets;
  send({ type: 'ready', notConnected });
}

process.on('message', (raw) => {
  const m = raw as { type: string };
  if (m.type === 'start') {
    start(m as Start).catch((e: unknown) => send({ type: 'failed', error: String((e as Error)?.stack ?? e) }));
  } else if (m.type === 'cpu') {
    // Figure 8: this process's CPU so far (user + system, µs) and its signature checks (one per distinct message).
    const used = process.cpuUsage();
    send({ type: 'cpu', micros: used.user + used.system, checks: noticeSignatureChecks(), posts });
  } else if (m.type === 'close') {
    void (async () => {
      await Promise.allSettled(clients.map((c) => c.close()));
      await Promise.allSettled(connections.map((c) => c.close()));
      await dispatcher.close().catch(() => undefined);
      send({ type: 'closed' });
      setTimeout(() => process.exit(0), 20);
    })();
  }
});
process.on('disconnect', () => process.exit(0));
// An orderly exit (a --cpu-prof profile is written), not the default termination.
process.on('SIGTERM', () => process.exit(0));
