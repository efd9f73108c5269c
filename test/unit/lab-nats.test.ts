import { connect, type NatsConnection, StringCodec } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupLab, startNatsCluster, startNatsServer, waitFor } from '../helpers/lab/index.js';

const sc = StringCodec();
const conns: NatsConnection[] = [];
async function client(servers: string | string[], opts: Parameters<typeof connect>[0] = {}): Promise<NatsConnection> {
  const nc = await connect({ servers, reconnectTimeWait: 100, maxReconnectAttempts: -1, ...opts });
  conns.push(nc);
  return nc;
}
function nextMessage(nc: NatsConnection, subject: string, timeoutMs = 3_000): Promise<string> {
  const sub = nc.subscribe(subject, { max: 1 });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no message on ${subject} within ${timeoutMs} ms`)), timeoutMs);
    void (async () => {
      for await (const m of sub) {
        clearTimeout(t);
        resolve(sc.decode(m.data));
      }
    })();
  });
}

afterAll(async () => {
  await Promise.allSettled(conns.map((c) => c.close()));
  await cleanupLab();
});

describe('lab: nats-server', () => {
  it('starts, pub/sub works, kill → restart on the same port, client reconnects', async () => {
    const t0 = Date.now();
    const srv = await startNatsServer();
    const startMs = Date.now() - t0;
    console.log(`[lab timing] nats-server start: ${startMs} ms (port ${srv.port}, pid ${srv.pid})`);
    expect(srv.url).toBe(`nats://127.0.0.1:${srv.port}`);

    const nc = await client(srv.url);
    const got = nextMessage(nc, 'config.update.a');
    await nc.flush();
    nc.publish('config.update.a', sc.encode('r1'));
    expect(await got).toBe('r1');

    const varz = await srv.monitor<{ connections: number }>('varz');
    expect(varz.connections).toBe(1);

    const oldPid = srv.pid;
    await srv.kill();
    expect(srv.running).toBe(false);
    const t1 = Date.now();
    await srv.restart();
    console.log(`[lab timing] nats-server restart after SIGKILL: ${Date.now() - t1} ms`);
    expect(srv.pid).not.toBe(oldPid);
    expect(srv.running).toBe(true);

    // the client reconnects to the same port and resubscribes
    await waitFor('client reconnect', async () => (await srv.monitor<{ connections: number }>('varz')).connections === 1, {
      timeoutMs: 5_000,
    });
    const got2 = nextMessage(nc, 'config.update.b');
    await nc.flush();
    nc.publish('config.update.b', sc.encode('r2'));
    expect(await got2).toBe('r2');

    // SIGSTOP / SIGCONT
    srv.pause();
    expect(srv.paused).toBe(true);
    await expect(fetch(`${srv.monitorUrl}/varz`, { signal: AbortSignal.timeout(300) })).rejects.toThrow();
    srv.resume();
    expect((await srv.monitor<{ server_name: string }>('varz')).server_name).toBe(srv.name);

    await srv.stop();
    expect(srv.running).toBe(false);
  });

  it('jetstream option', async () => {
    const srv = await startNatsServer({ jetstream: true });
    const jsz = await srv.monitor<{ config?: { store_dir?: string } }>('jsz');
    expect(jsz.config?.store_dir).toContain('natslab-js-');
    await srv.dispose();
  });

  it('startup failure is a clear error (port taken)', async () => {
    const a = await startNatsServer();
    await expect(startNatsServer({ port: a.port, timeoutMs: 3_000 })).rejects.toThrow(/nats-server .*exited during startup/);
    await a.stop();
  });
});

describe('lab: nats cluster', () => {
  it('3 nodes routed to each other; a message crosses nodes; a killed node restarts and re-meshes', async () => {
    const t0 = Date.now();
    const cluster = await startNatsCluster(3);
    console.log(`[lab timing] nats 3-node cluster start (full mesh): ${Date.now() - t0} ms`);
    expect(cluster.servers).toHaveLength(3);
    for (const n of cluster.nodes) expect(new Set((await n.routes()).map((r) => r.remote_id)).size).toBe(2);

    const sub = await client(cluster.node(0).url, { noRandomize: true, ignoreClusterUpdates: true });
    const pub = await client(cluster.node(2).url, { noRandomize: true, ignoreClusterUpdates: true });
    const got = nextMessage(sub, 'config.update.x');
    await sub.flush();
    // interest propagates over routes asynchronously: wait until node 2 knows about node 0's subscription
    await cluster.node(2).waitForRouteInterest('config.update.x');
    pub.publish('config.update.x', sc.encode('across'));
    expect(await got).toBe('across');

    await cluster.node(1).kill();
    await cluster.waitForMesh(); // the 2 survivors still see each other
    const t1 = Date.now();
    await cluster.node(1).restart();
    console.log(`[lab timing] cluster node restart + routes: ${Date.now() - t1} ms`);
    await cluster.waitForMesh();

    await cluster.stopAll();
    expect(cluster.nodes.every((n) => !n.running)).toBe(true);
  });
});
