/**
 * Lifecycle promises of `close()` against the real hub and a real nats-server: a closed client is not kept
 * alive by a NATS connection it was handed (the application keeps that connection for its own use), and a
 * handed connection's other subscriptions are untouched.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigClient } from '../../src/index.js';
import { Lab, sleep, subject, uniqueService } from '../helpers/hot-reload/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const lab = new Lab();
afterAll(() => lab.cleanup());

describe('close() with a handed NATS connection', () => {
  it('a closed client is garbage-collected while the handed connection lives on, and the connection keeps working', async () => {
    const hub = await lab.hub();
    const service = uniqueService('life');
    await hub.post(service, { n: 1 });
    const nc = await lab.nats();
    let collected = 0;
    const registry = new FinalizationRegistry(() => {
      collected++;
    });
    const CLIENTS = 5;
    for (let i = 0; i < CLIENTS; i++) {
      // Each client in its own scope: nothing of the test refers to it after close().
      await (async () => {
        const client = new ConfigClient({ hubUrl: hub.url, snapshotDir: false, pollIntervalMs: 60_000, nats: { connection: nc }, services: { [service]: {} } });
        expect(await client.get(service)).toEqual({ n: 1 });
        await sleep(50); // subscribed (and the startup resync done)
        await client.close();
        registry.register(client, i);
      })();
    }
    let own = 0;
    nc.subscribe(subject(service), { callback: () => own++ });
    for (let i = 0; i < 20 && collected < CLIENTS; i++) {
      gc();
      await sleep(50);
    }
    expect(collected).toBe(CLIENTS);
    expect(nc.isClosed()).toBe(false);
    await hub.post(service, { n: 2 });
    await hub.natsReady().catch(() => undefined);
    nc.publish(subject(service), new TextEncoder().encode('{"service_name":"x"}'));
    await nc.flush();
    await sleep(50);
    expect(own).toBeGreaterThan(0);
  });
});
