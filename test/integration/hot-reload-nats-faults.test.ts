/**
 * Hot reload under NATS faults (issue 4 §4; RELIABILITY N1, N5), with private nats-servers that this file
 * kills (SIGKILL) and restarts — never the shared one:
 * - a change committed while the client's server is dead is repaired by the reconnect resync (the poll is
 *   10 min, so it cannot be the poll), and `status().nats` goes connected → reconnecting → connected;
 * - in a 3-node cluster, killing the client's node fails it over to another; the next change still arrives
 *   through NATS, exactly once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type NatsClusterHandle, type NatsServerHandle, startNatsCluster, startNatsServer } from '../helpers/lab/index.js';
import { Lab, ms, record, sleep, uniqueService, waitUntil } from '../helpers/hot-reload/index.js';

const lab = new Lab();
afterEach(() => lab.cleanup());

const TEN_MINUTES = 600_000;

async function privateNats(): Promise<NatsServerHandle> {
  const server = await startNatsServer();
  lab.defer(`nats-server ${server.name}`, () => server.dispose());
  return server;
}

async function cluster(): Promise<NatsClusterHandle> {
  const c = await startNatsCluster(3, { name: `hr${Math.random().toString(36).slice(2, 8)}` });
  lab.defer('nats cluster', () => c.stopAll());
  return c;
}

interface Connz {
  connections?: Array<{ name?: string; subscriptions_list?: string[] }>;
}

async function connectionNamed(server: NatsServerHandle, name: string): Promise<{ subscriptions_list?: string[] } | undefined> {
  if (!server.running) return undefined;
  const connz = await server.monitor<Connz>('connz?subs=1');
  return connz.connections?.find((c) => c.name === name);
}

describe('a private nats-server killed while a change is committed', () => {
  it('the hub publishes through it: the client converges after the restart; status goes connected → reconnecting → connected', async () => {
    const nats = await privateNats();
    const hub = await lab.hub({ natsUrl: nats.url });
    await hub.natsReady();
    const service = uniqueService();
    await hub.post(service, { value: 1 });

    const client = lab.client({ hubUrl: hub.url, services: { [service]: {} }, nats: { servers: nats.url }, pollIntervalMs: TEN_MINUTES });
    const rec = record(client, service);
    expect(await client.get(service)).toEqual({ value: 1 });
    await waitUntil('NATS state connected', () => client.status(service).nats === 'connected');

    // Sanity: while the server is up, a change arrives through NATS.
    await hub.post(service, { value: 2 });
    await waitUntil('the change through NATS', () => rec.changes.length === 1, 5_000);
    expect(rec.changes[0]!.change.source).toBe('nats');

    await nats.kill();
    await waitUntil('NATS state reconnecting', () => client.status(service).nats === 'reconnecting', 5_000);
    await waitUntil('the hub to see NATS down', () => !hub.hub.broadcaster.connected, 5_000);
    const answer = await hub.post(service, { value: 3 });
    expect(answer.body.broadcast).not.toBe('sent');
    await sleep(300);
    // Nothing can reach the client while its server is dead: it still serves the old value.
    expect(rec.changes).toHaveLength(1);
    expect(await client.get(service)).toEqual({ value: 2 });

    const restartCalled = performance.now();
    await nats.restart();
    const restarted = performance.now();
    await waitUntil('convergence after the NATS restart', () => rec.changes.length === 2, 10_000, 1);
    const converged = rec.changes[1]!;
    expect(converged.next).toEqual({ value: 3 });
    expect(converged.change.source).toBe('nats');
    expect(converged.change.revision).toBe(answer.body.revision);
    expect(client.status(service).nats).toBe('connected');
    await sleep(300);
    expect(rec.changes).toHaveLength(2);
    console.log(
      `[hot-reload] N1 (hub publishes via the killed server): server ready → converged ${ms(converged.at - restarted)} ` +
        `(restart call → converged ${ms(converged.at - restartCalled)})`,
    );
  });

  it('nothing republishes the lost notice: the reconnect resync alone repairs it (poll 10 min)', async () => {
    const nats = await privateNats();
    // The hub has no NATS at all: the only way the client can learn of the change is its own resync.
    const hub = await lab.hub();
    const service = uniqueService();
    await hub.post(service, { mode: 'a' });
    const client = lab.client({ hubUrl: hub.url, services: { [service]: {} }, nats: { servers: nats.url }, pollIntervalMs: TEN_MINUTES });
    const rec = record(client, service);
    expect(await client.get(service)).toEqual({ mode: 'a' });
    await waitUntil('NATS state connected', () => client.status(service).nats === 'connected');

    await nats.kill();
    await waitUntil('NATS state reconnecting', () => client.status(service).nats === 'reconnecting', 5_000);
    const answer = await hub.post(service, { mode: 'b' });
    const getsBefore = hub.gets(service);
    await sleep(300);
    expect(hub.gets(service)).toBe(getsBefore);
    expect(rec.changes).toHaveLength(0);

    await nats.restart();
    const restarted = performance.now();
    await waitUntil('the reconnect resync', () => rec.changes.length === 1, 10_000, 1);
    const { change, next, at } = rec.changes[0]!;
    expect(next).toEqual({ mode: 'b' });
    expect(change.source).toBe('nats');
    expect(change.revision).toBe(answer.body.revision);
    expect(change.changedPaths).toEqual(['mode']);
    // One resync: one GET (a second one at most if the reconnect raced the first connection's retry).
    expect(hub.gets(service) - getsBefore).toBeLessThanOrEqual(2);
    console.log(`[hot-reload] N1 (resync only): server ready → converged ${ms(at - restarted)}`);
  });

  it('status(name).nats is off without NATS', async () => {
    const hub = await lab.hub();
    const service = uniqueService();
    await hub.post(service, { x: 1 });
    const client = lab.client({ hubUrl: hub.url, services: { [service]: {} }, pollIntervalMs: TEN_MINUTES });
    await client.get(service);
    expect(client.status(service).nats).toBe('off');
  });
});

describe('a 3-node NATS cluster on loopback', () => {
  it('the client fails over when its node is killed and keeps receiving notices, each change once', async () => {
    const c = await cluster();
    const [a, b, third] = [c.node(0), c.node(1), c.node(2)];
    const hub = await lab.hub({ natsUrl: b.url });
    await hub.natsReady();
    const service = uniqueService();
    await hub.post(service, { step: 0 });

    const name = `hr-failover-${service}`;
    const client = lab.client({
      hubUrl: hub.url,
      services: { [service]: {} },
      // noRandomize: the client connects to the first server, A; the hub publishes through B.
      nats: { servers: [a.url, b.url, third.url], connectOptions: { name, noRandomize: true } },
      pollIntervalMs: TEN_MINUTES,
    });
    const rec = record(client, service);
    expect(await client.get(service)).toEqual({ step: 0 });
    await waitUntil('NATS state connected', () => client.status(service).nats === 'connected');
    const onA = await connectionNamed(a, name);
    expect(onA?.subscriptions_list).toEqual([`config.update.${service}`]);
    // The interest must have crossed the route to B before the hub publishes there.
    await waitUntil('the subscription to reach B through the route', async () => {
      const routez = await b.monitor<{ routes?: Array<{ subscriptions_list?: string[] }> }>('routez?subs=1');
      return routez.routes?.some((r) => r.subscriptions_list?.includes(`config.update.${service}`));
    });

    await hub.post(service, { step: 1 });
    await waitUntil('step 1 through B → A', () => rec.changes.length === 1, 5_000, 1);
    expect(rec.changes[0]!.change.source).toBe('nats');

    const killed = performance.now();
    await a.kill();
    // Failed over = the client's connection shows up on B or C and the client says it is connected.
    const node = await waitUntil(
      'the client to fail over to B or C',
      async () => {
        if (client.status(service).nats !== 'connected') return undefined;
        if (await connectionNamed(b, name)) return b;
        if (await connectionNamed(third, name)) return third;
        return undefined;
      },
      10_000,
      1,
    );
    const failedOver = performance.now();
    expect(rec.changes).toHaveLength(1);
    // Resubscribed once: no duplicate subscription after the failover.
    expect((await connectionNamed(node, name))?.subscriptions_list).toEqual([`config.update.${service}`]);
    if (node === third) {
      await waitUntil('the subscription to reach B through the route', async () => {
        const routez = await b.monitor<{ routes?: Array<{ subscriptions_list?: string[] }> }>('routez?subs=1');
        return routez.routes?.some((r) => r.subscriptions_list?.includes(`config.update.${service}`));
      });
    }

    const written = performance.now();
    const answer = await hub.post(service, { step: 2 });
    expect(answer.body.broadcast).toBe('sent');
    await waitUntil('step 2 after the failover', () => rec.changes.length === 2, 5_000, 1);
    const second = rec.changes[1]!;
    expect(second.change.source).toBe('nats');
    expect(second.next).toEqual({ step: 2 });
    expect(second.change.revision).toBe(answer.body.revision);
    await sleep(500);
    // Exactly one onChange per change: the resync after the failover found nothing new and fired nothing.
    expect(rec.changes.map((r) => (r.next as { step: number }).step)).toEqual([1, 2]);
    expect(rec.errors).toEqual([]);
    console.log(
      `[hot-reload] N5 cluster: node killed → client reconnected ${ms(failedOver - killed)} (to ${node === b ? 'B' : 'C'}); ` +
        `next change → onChange ${ms(second.at - written)}`,
    );
  });
});
