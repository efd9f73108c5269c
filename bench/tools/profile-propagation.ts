/**
 * Profiling aid for figure 3: one worker's share of the 1 000-client row in one process — N clients (250 by
 * default) sharing S NATS connections (5), a PostgreSQL hub in its own process — and R changes POSTed one
 * after the other. Prints, per change, the wall time until every onChange fired and this process's CPU per
 * client (`N=250 S=5 R=40 node --cpu-prof --import tsx bench/tools/profile-propagation.ts`).
 */
import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from 'nats';
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';
import { startNatsServer } from '../../test/helpers/lab/nats-server.js';
import { startPostgres } from '../../test/helpers/lab/postgres-cluster.js';
import { cleanupLab } from '../../test/helpers/lab/registry.js';
import { putConfig, sampleConfig, startHub } from '../lib/lab.js';

const N = Number(process.env.N ?? 250);
const S = Number(process.env.S ?? 5);
const R = Number(process.env.R ?? 40);
const APPLY = process.env.APPLY === '1';
const service = 'bench-prop';
const schema = z.looseObject({ round: z.number().int(), operational: z.looseObject({ batch_size: z.number().int() }) });

try {
  const [nats, pgc] = await Promise.all([startNatsServer(), startPostgres({ maxConnections: 200 })]);
  const hub = await startHub({ NATS_URL: nats.url, DATABASE_URL: pgc.url });
  await putConfig(hub.url, service, sampleConfig({ round: 0 }));
  const connections: NatsConnection[] = [];
  for (let i = 0; i < S; i++) connections.push(await connect({ servers: nats.url }));
  let fired = 0;
  let onAll: (() => void) | undefined;
  const clients = Array.from({ length: N }, (_, i) => {
    const client = new ConfigClient({
      hubUrl: hub.url,
      snapshotDir: false,
      pollIntervalMs: false,
      startupTimeoutMs: 60_000,
      nats: S > 0 ? { connection: connections[i % S]!, applyPayload: APPLY } : { servers: nats.url, applyPayload: APPLY },
      services: { [service]: { schema } },
    });
    client.onChange(service, () => {
      if (++fired === N) onAll?.();
    });
    return client;
  });
  await Promise.all(clients.map((c) => c.get(service)));
  while (clients.some((c) => c.status(service).nats !== 'connected')) await new Promise((r) => setTimeout(r, 20));
  for (const nc of connections) await nc.flush();
  // The hub's CPU (utime + stime from /proc, clock ticks of 10 ms) over the measured rounds, per GET it served.
  const hubTicks = (): number => {
    const fields = readFileSync(`/proc/${hub.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]);
  };
  let hubTicksTotal = 0;
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let r = 1; r <= R; r++) {
    fired = 0;
    const all = new Promise<void>((resolve) => (onAll = resolve));
    const c0 = process.cpuUsage();
    const h0 = hubTicks();
    const t0 = performance.now();
    await putConfig(hub.url, service, sampleConfig({ round: r }));
    await all;
    const cpu = process.cpuUsage(c0);
    if (r > 3) {
      hubTicksTotal += hubTicks() - h0;
      walls.push(performance.now() - t0);
      cpus.push((cpu.user + cpu.system) / N);
    }
    await new Promise((res) => setTimeout(res, 30));
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!.toFixed(1);
  console.log(`${N} clients, ${S} shared NATS connections${APPLY ? ', applyPayload' : ''}: all fired p50 ${med(walls)} ms; ${med(cpus)} µs CPU of this process per client per change (p50); hub ${((hubTicksTotal * 10_000) / (walls.length * N)).toFixed(0)} µs CPU per client per change (POST + its share of the GETs)`);
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(connections.map((c) => c.close()));
} finally {
  await cleanupLab();
}
