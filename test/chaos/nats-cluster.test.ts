/**
 * NATS cluster rows: N5 (kill the client's node → failover, no duplicate subscriptions or onChange) and
 * N6 (the client's node paused while the hub publishes through another → catch up by resync/poll).
 * Private 3-node cluster; the hub (in-process, private PostgreSQL schema) publishes through node 2; clients know nodes 0 and 1
 * only (noRandomize, cluster gossip ignored). Client nats timings are shortened: reconnectTimeWait 200 ms (+100 ms jitter),
 * pingInterval 500 ms, maxPingOut 2.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildHub, type Hub } from '../../examples/hub/server.js';
import { ConfigClient, type ConfigClientOptions } from '../../src/index.js';
import { CHAOS_PG_URL, closeChaosHub, median, serviceSeq, uniqueService, writeConfig } from '../helpers/chaos.js';
import { type NatsClusterHandle, sleep, startNatsCluster, waitFor } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const NATS_TIMINGS = { reconnectTimeWait: 200, reconnectJitter: 100, pingInterval: 500, maxPingOut: 2, noRandomize: true, ignoreClusterUpdates: true };

let cluster: NatsClusterHandle;
let hub: Hub;
// The hub's store: a private schema on the shared PostgreSQL (PGlite boots slowly on a loaded 2-core box).
const PG_SCHEMA = `chaos_nc_${process.pid}_${Date.now().toString(36)}`;
let hubUrl: string;
let snapshotRoot: string;
let clients: Array<{ close(): Promise<void> }> = [];

const write = (service: string, config: Record<string, unknown>) => writeConfig(hub, service, config);

function makeClient(service: string, overrides: Partial<ConfigClientOptions> = {}) {
  const client = new ConfigClient({
    hubUrl,
    snapshotDir: join(snapshotRoot, `${serviceSeq()}-${clients.length}`),
    cacheTtlMs: 600_000,
    pollIntervalMs: false,
    transport: { requestTimeoutMs: 1_000, connectTimeoutMs: 500, retryBaseDelayMs: 10, retryMaxDelayMs: 50 },
    recovery: { minDelayMs: 50, maxDelayMs: 200 },
    // Nodes 0 and 1 only, without gossip: a kill moves the client between them, never onto the hub's node 2.
    nats: { servers: [cluster.node(0).url, cluster.node(1).url], connectOptions: NATS_TIMINGS },
    ...overrides,
    services: { [service]: {} },
  });
  clients.push(client);
  return client;
}

const revisionOf = (client: { status(name: string): { revision: number | undefined } }, service: string) => client.status(service).revision ?? -1;

interface Connz {
  connections?: { name?: string; subscriptions_list?: string[] }[];
}

/** Subscriptions on `subject` held by our client connections, over every running node. */
async function subscriptionsFor(subject: string): Promise<number> {
  let count = 0;
  for (const node of cluster.nodes) {
    if (!node.running || node.paused) continue;
    const connz = (await node.monitor('connz?subs=1')) as Connz;
    for (const c of connz.connections ?? []) {
      if (c.name !== '@central-hub/config') continue;
      count += (c.subscriptions_list ?? []).filter((s) => s === subject).length;
    }
  }
  return count;
}

beforeAll(async () => {
  snapshotRoot = await mkdtemp(join(tmpdir(), 'chaos-natsc-'));
  cluster = await startNatsCluster(3);
  hub = await buildHub({
    databaseUrl: CHAOS_PG_URL,
    pgSchema: PG_SCHEMA, disableAuth: true, natsUrl: cluster.node(2).url, seed: false, relayIntervalMs: 200 });
  hubUrl = await hub.listen({ port: 0 });
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  clients = [];
  for (const node of cluster.nodes) if (node.paused) node.resume();
  const stopped = cluster.nodes.filter((n) => !n.running);
  for (const node of stopped) await node.restart({ waitForRoutes: 0 });
  if (stopped.length > 0) await cluster.waitForMesh(15_000);
});

afterAll(async () => {
  await closeChaosHub(hub, PG_SCHEMA, snapshotRoot);
});

describe('NATS cluster faults', () => {
  it("N5: kill the client's node → failover within reconnect wait + jitter; no duplicate subscriptions or onChange (3 rounds)", async () => {
    const service = uniqueService('N5');
    const subject = `config.update.${service}`;
    await write(service, { n: 0 });
    const client = makeClient(service);
    await client.get(service);
    await waitFor('connected', () => client.status(service).nats === 'connected');
    await waitFor('subscription visible', async () => (await subscriptionsFor(subject)) === 1, { timeoutMs: 5_000 });
    const seen: number[] = [];
    client.onChange(service, (_n, _p, change) => {
      seen.push(change.revision ?? -1);
    });
    const failovers: number[] = [];
    const written: number[] = [];
    for (let round = 0; round < 3; round++) {
      // The client's node: 0 or 1 (its server list; cluster gossip is ignored). The hub stays on node 2.
      const clientNode = await (async () => {
        for (const node of cluster.nodes) {
          const connz = (await node.monitor('connz')) as Connz;
          if ((connz.connections ?? []).some((c) => c.name === '@central-hub/config')) return node;
        }
        return undefined;
      })();
      expect(clientNode).toBeDefined();
      expect(clientNode).not.toBe(cluster.node(2));
      await clientNode!.kill();
      const killed = Date.now();
      // A change published through node 2 right after the kill.
      written.push(await write(service, { n: round + 1 }));
      await waitFor('failed over', () => client.status(service).nats === 'connected' && revisionOf(client, service) >= written.at(-1)!, {
        timeoutMs: 10_000,
        intervalMs: 5,
      });
      failovers.push(Date.now() - killed);
      // Notices flow through the new node, once each.
      written.push(await write(service, { n: round + 1, after: true }));
      await waitFor('notice via the new node', () => revisionOf(client, service) >= written.at(-1)!, { timeoutMs: 3_000, intervalMs: 5 });
      await waitFor('one subscription', async () => (await subscriptionsFor(subject)) === 1, { timeoutMs: 3_000 });
      await clientNode!.restart({ waitForRoutes: 0 });
      await cluster.waitForMesh(15_000);
    }
    await sleep(300);
    const duplicates = seen.length - new Set(seen).size;
    const subs = await subscriptionsFor(subject);
    recordFigure({ row: 'N5', name: 'failover time (median of 3; wait 200 ms + 100 ms jitter)', value: median(failovers), unit: 'ms' });
    recordFigure({ row: 'N5', name: 'failover time (max of 3)', value: Math.max(...failovers), unit: 'ms' });
    recordFigure({ row: 'N5', name: 'duplicate onChange', value: duplicates, unit: 'count' });
    recordFigure({ row: 'N5', name: 'subscriptions for the subject at the end', value: subs, unit: 'count' });
    expect(failovers).toHaveLength(3);
    expectLive('N5', 'node kills (faults injected) failed over', failovers.length, 3);
    expectLive('N5', 'changes delivered across the failovers', seen.length, 6);
    expect(duplicates).toBe(0);
    expect(seen).toEqual(written);
    expect(subs).toBe(1);
    // Failover is bounded by ping detection (none needed for a kill) + reconnect wait + jitter + a fetch.
    expect(Math.max(...failovers)).toBeLessThan(3_000);
  });

  it("N6: the client's node paused while the hub publishes through another → catch up by resync/poll", async () => {
    const service = uniqueService('N6');
    await write(service, { n: 0 });
    const pollMs = 1_000;
    const client = makeClient(service, { pollIntervalMs: pollMs });
    await client.get(service);
    await waitFor('connected', () => client.status(service).nats === 'connected');
    const node0 = cluster.node(0);
    const connz = (await node0.monitor('connz')) as Connz;
    expect((connz.connections ?? []).some((c) => c.name === '@central-hub/config')).toBe(true);
    node0.pause();
    const pausedNodes = cluster.nodes.filter((n) => n.paused).length;
    const revision = await write(service, { n: 1 });
    const written = Date.now();
    await waitFor('caught up', () => revisionOf(client, service) >= revision, { timeoutMs: 10_000, intervalMs: 5 });
    const staleness = Date.now() - written;
    await waitFor('reconnected elsewhere', () => client.status(service).nats === 'connected', { timeoutMs: 10_000 });
    node0.resume();
    recordFigure({ row: 'N6', name: 'staleness with the client node paused (poll 1 s, ping 500 ms × 2)', value: staleness, unit: 'ms' });
    expect(staleness).toBeLessThan(pollMs * 1.2 + 1_500);
    expectLive('N6', "client's node paused (faults injected)", pausedNodes);
  });
});
