/**
 * A notice that arrives while the first load is still in flight (issue 4 §4, the "one road" rule): the
 * first GET was answered by the hub before the change was committed, but its answer reaches the client
 * after the change's notice. The notice must not be dropped on the floor: the client has to end on the new
 * value through NATS, not 10 minutes later through the poll.
 * And the mirror case, the join gap: the first load is done before the NATS subscription is; a change
 * committed in between was published to nobody, so the first subscription must be followed by a resync.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpProxy } from '../helpers/lab/index.js';
import { Lab, ms, record, SHARED_NATS, uniqueService, waitUntil } from '../helpers/hot-reload/index.js';

const lab = new Lab();
afterEach(() => lab.cleanup());

describe('a notice during the first load', () => {
  it('is not lost: the client converges to the change it announced', async () => {
    const hub = await lab.hub({ natsUrl: SHARED_NATS });
    await hub.natsReady();
    const service = uniqueService();
    await hub.post(service, { phase: 'old' });

    // The client reaches the hub through a proxy that holds every chunk 800 ms, in both directions.
    const proxy = await startTcpProxy({ target: { port: hub.port } });
    lab.defer('tcp proxy', () => proxy.close());
    proxy.delay(800);

    const client = lab.client({
      hubUrl: proxy.url(),
      services: { [service]: {} },
      nats: { servers: SHARED_NATS },
      pollIntervalMs: 600_000,
      startupTimeoutMs: 10_000,
    });
    const rec = record(client, service);
    const first = client.get(service);
    // The hub has answered the first GET (old value, now on its way back through the proxy) and the
    // client is subscribed: commit the change now, its notice overtakes the answer.
    await waitUntil('the hub to answer the first GET', () => hub.gets(service) === 1, 5_000, 1);
    await waitUntil('NATS state connected', () => client.status(service).nats === 'connected', 5_000, 1);
    const answer = await hub.post(service, { phase: 'new' });
    expect(answer.body.broadcast).toBe('sent');
    const written = performance.now();
    expect(await first).toEqual({ phase: 'old' });
    proxy.delay(0);

    await waitUntil('the client to converge to the announced change', async () => (await client.get(service)).phase === 'new', 5_000);
    const converged = performance.now();
    expect(rec.changes).toHaveLength(1);
    expect(rec.changes[0]!.change).toMatchObject({ source: 'nats', revision: answer.body.revision, changedPaths: ['phase'] });
    console.log(`[hot-reload] notice during the first load: write → converged ${ms(converged - written)}`);
  });

  it('is not lost either for a service first read after the client subscribed (no startup resync to cover it)', async () => {
    const hub = await lab.hub({ natsUrl: SHARED_NATS });
    await hub.natsReady();
    const early = uniqueService();
    const late = uniqueService();
    await hub.post(early, { n: 1 });
    await hub.post(late, { phase: 'old' });
    const proxy = await startTcpProxy({ target: { port: hub.port } });
    lab.defer('tcp proxy', () => proxy.close());

    const client = lab.client({
      hubUrl: proxy.url(),
      services: { [early]: {}, [late]: {} },
      nats: { servers: SHARED_NATS },
      pollIntervalMs: 600_000,
      startupTimeoutMs: 10_000,
    });
    // The client subscribes for both services with the first get of `early`; its startup resync is over
    // long before `late` is first read.
    await client.get(early);
    await waitUntil('NATS state connected', () => client.status(early).nats === 'connected', 5_000, 1);
    await hub.settle(early);

    const rec = record(client, late);
    proxy.delay(800);
    const first = client.get(late);
    await waitUntil('the hub to answer the first GET', () => hub.gets(late) === 1, 5_000, 1);
    const answer = await hub.post(late, { phase: 'new' });
    expect(answer.body.broadcast).toBe('sent');
    const written = performance.now();
    expect(await first).toEqual({ phase: 'old' });
    proxy.delay(0);

    await waitUntil('the client to converge to the announced change', async () => (await client.get(late)).phase === 'new', 5_000);
    const converged = performance.now();
    expect(rec.changes).toHaveLength(1);
    expect(rec.changes[0]!.change).toMatchObject({ source: 'nats', revision: answer.body.revision, changedPaths: ['phase'] });
    console.log(`[hot-reload] notice during a later first load: write → converged ${ms(converged - written)}`);
  });

  it('a change committed after the first load but before the first subscription is not lost (join gap)', async () => {
    const hub = await lab.hub({ natsUrl: SHARED_NATS });
    await hub.natsReady();
    const service = uniqueService();
    await hub.post(service, { phase: 'old' });

    // The client reaches NATS through a proxy that holds every chunk 400 ms: it subscribes late.
    const natsPort = Number(new URL(SHARED_NATS.replace('nats:', 'http:')).port);
    const proxy = await startTcpProxy({ target: { port: natsPort } });
    lab.defer('tcp proxy', () => proxy.close());
    proxy.delay(400);

    const client = lab.client({
      hubUrl: hub.url,
      services: { [service]: {} },
      nats: { servers: proxy.url('nats') },
      pollIntervalMs: 600_000,
    });
    const rec = record(client, service);
    expect(await client.get(service)).toEqual({ phase: 'old' });
    expect(client.status(service).nats).not.toBe('connected');
    const answer = await hub.post(service, { phase: 'new' });
    expect(answer.body.broadcast).toBe('sent');
    const written = performance.now();
    // The notice went out before the client's interest reached the server: it is gone for this client.
    expect(client.status(service).nats).not.toBe('connected');

    await waitUntil('NATS state connected', () => client.status(service).nats === 'connected', 10_000);
    proxy.delay(0);
    await waitUntil('the client to converge to the change made in the join gap', () => rec.changes.length === 1, 5_000);
    const converged = performance.now();
    expect(await client.get(service)).toEqual({ phase: 'new' });
    expect(rec.changes[0]!.change).toMatchObject({ source: 'nats', revision: answer.body.revision, changedPaths: ['phase'] });
    console.log(`[hot-reload] change in the join gap: write → converged ${ms(converged - written)}`);
  });
});
