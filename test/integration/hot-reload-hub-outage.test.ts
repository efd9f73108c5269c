/**
 * Hot reload across a hub outage (issue 4 §4; RELIABILITY C7, H1 in small): the in-process reference hub
 * is closed, the client keeps serving its cached value and reports it stale (source `cache`); a new hub on
 * the same port and the same database comes back — a PostgreSQL schema, or PGlite in a persistent data
 * directory (the one-machine setup) — and the client converges, then follows a change made after it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Lab, ms, record, SHARED_NATS, sleep, uniqueService, waitUntil } from '../helpers/hot-reload/index.js';

const lab = new Lab();
afterEach(() => lab.cleanup());

describe('the hub stopped and started again', () => {
  it.each(['postgres', 'pglite'] as const)('%s: get keeps serving the cached value, status goes stale (cache); the hub back → converges to a later change', async (store) => {
    // The data must survive the hub: a schema of the shared PostgreSQL, or PGlite on disk.
    const storeOptions = store === 'postgres' ? { pgSchema: lab.pgSchema() } : { store, dataDir: lab.tempDir('hot-reload-pglite-') };
    const first = await lab.hub({ ...storeOptions, natsUrl: SHARED_NATS });
    await first.natsReady();
    const port = first.port;
    const service = uniqueService();
    const v1 = { db: { pool: 5 }, greeting: 'hello' };
    await first.post(service, v1);

    const client = lab.client({
      hubUrl: first.url,
      services: { [service]: {} },
      nats: { servers: SHARED_NATS },
      pollIntervalMs: 600_000,
      cacheTtlMs: 300,
      transport: { retries: 0, connectTimeoutMs: 500, requestTimeoutMs: 1_000 },
      recovery: { minDelayMs: 100, maxDelayMs: 400 },
    });
    const rec = record(client, service);
    expect(await client.get(service)).toEqual(v1);
    await waitUntil('NATS state connected', () => client.status(service).nats === 'connected');
    expect(client.status(service)).toMatchObject({ source: 'hub', stale: false });

    await first.close();
    const stopped = performance.now();
    // For well past the TTL, every get answers at once with the last good value, never undefined or a throw.
    let reads = 0;
    while (performance.now() - stopped < 1_000) {
      const started = performance.now();
      expect(await client.get(service)).toEqual(v1);
      // Served from memory (stale-while-revalidate), never waiting for the dead hub; generous for loaded CI machines.
      expect(performance.now() - started).toBeLessThan(250);
      reads++;
      await sleep(20);
    }
    const down = client.status(service);
    expect(down.stale).toBe(true);
    expect(down.source).toBe('cache');
    expect(down.lastErrorCode).toBe('HUB_UNREACHABLE');
    expect(down.revision).toBeDefined();
    expect(rec.changes).toHaveLength(0);

    const second = await lab.hub({ ...storeOptions, natsUrl: SHARED_NATS, port });
    const back = performance.now();
    await second.natsReady();
    // The background recovery finds the hub again: same data (it survived in the database), so no onChange.
    await waitUntil('the client to see the hub again', () => client.status(service).source === 'hub', 5_000, 1);
    const recovered = performance.now();
    expect(client.status(service)).toMatchObject({ stale: false, lastErrorCode: undefined, revision: down.revision });
    expect(rec.changes).toHaveLength(0);

    const v2 = { db: { pool: 8 }, greeting: 'hello' };
    const written = performance.now();
    const answer = await second.post(service, v2);
    expect(answer.body.revision).toBe((down.revision ?? 0) + 1);
    await waitUntil('the change made after the restart', () => rec.changes.length === 1, 5_000, 1);
    const { change, next, at } = rec.changes[0]!;
    expect(next).toEqual(v2);
    expect(change.changedPaths).toEqual(['db.pool']);
    expect(change.revision).toBe(answer.body.revision);
    expect(change.source).toBe('nats');
    expect(await client.get(service)).toEqual(v2);
    console.log(
      `[hot-reload] hub outage (${store}): ${reads} cached reads while down; hub back → client fresh ${ms(recovered - back)}; ` +
        `change after restart → onChange ${ms(at - written)}`,
    );
  }, 90_000);
});
