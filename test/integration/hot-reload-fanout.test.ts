/**
 * Hot reload end to end (issue 4 §4): the reference hub (in process, PGlite, real HTTP) publishing on the
 * shared nats-server, and real ConfigClients, each with a NATS connection of its own.
 * - a POST reaches 20 clients through NATS with the right changed paths; a PATCH changes only its path;
 * - without NATS, a short poll delivers the change (source `poll`), and status says NATS is `off`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigClient } from '../../src/client.js';
import { Lab, ms, percentile, type Recorded, record, SHARED_NATS, uniqueService, waitUntil } from '../helpers/hot-reload/index.js';

const lab = new Lab();
afterEach(() => lab.cleanup());

const CLIENTS = 20;
const ROUNDS = 5;
/** Long enough that only NATS can deliver within a test. */
const LONG_POLL_MS = 600_000;

describe('hot reload through NATS to 20 clients', () => {
  it('a POST fires onChange in all 20 clients with the changed paths (source nats); a PATCH changes only its path', async () => {
    const hub = await lab.hub({ natsUrl: SHARED_NATS });
    await hub.natsReady();
    const service = uniqueService();
    await hub.post(service, { feature: { enabled: false, limit: 10 }, label: 'v0', round: 0 });

    const clients: ConfigClient[] = [];
    const recorders: Recorded[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const client = lab.client({
        hubUrl: hub.url,
        services: { [service]: {} },
        nats: { servers: SHARED_NATS, connectOptions: { name: `hr-fanout-${i}` } },
        pollIntervalMs: LONG_POLL_MS,
      });
      clients.push(client);
      recorders.push(record(client, service));
    }
    const firsts = await Promise.all(clients.map((c) => c.get(service)));
    for (const value of firsts) expect(value).toEqual({ feature: { enabled: false, limit: 10 }, label: 'v0', round: 0 });
    await waitUntil('every client to be subscribed', () => clients.every((c) => c.status(service).nats === 'connected'));
    const getsBefore = hub.gets(service);

    const perClient: number[] = [];
    const lastPerRound: number[] = [];
    const afterResponse: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const start = performance.now();
      const answer = await hub.post(service, { feature: { enabled: round % 2 === 1, limit: 10 }, label: `v${round}`, round });
      const answered = performance.now();
      expect(answer.body.broadcast).toBe('sent');
      await waitUntil(`round ${round} to reach all ${CLIENTS} clients`, () => recorders.every((r) => r.changes.length === round), 5_000, 1);
      const arrivals = recorders.map((r) => r.changes[round - 1]!.at - start);
      perClient.push(...arrivals);
      lastPerRound.push(Math.max(...arrivals));
      afterResponse.push(Math.max(...arrivals) + start - answered);
      for (const r of recorders) {
        const { change, next, prev } = r.changes[round - 1]!;
        expect(change.source).toBe('nats');
        expect(change.service).toBe(service);
        expect(change.revision).toBe(answer.body.revision);
        expect(change.changedPaths).toEqual(['feature.enabled', 'label', 'round']);
        expect(next).toEqual({ feature: { enabled: round % 2 === 1, limit: 10 }, label: `v${round}`, round });
        expect((prev as { round: number }).round).toBe(round - 1);
      }
    }
    // A notice is a hint, then one conditional GET per client per change: no storm.
    expect(hub.gets(service) - getsBefore).toBeLessThanOrEqual(CLIENTS * ROUNDS * 2);

    // PATCH (RFC 7396): only the patched leaf changes; the rest of the document is untouched.
    const patchStart = performance.now();
    const patched = await hub.patch(service, { feature: { limit: 25 } });
    expect(patched.body.broadcast).toBe('sent');
    await waitUntil('the PATCH to reach all clients', () => recorders.every((r) => r.changes.length === ROUNDS + 1), 5_000, 1);
    const patchArrivals = recorders.map((r) => r.changes[ROUNDS]!.at - patchStart);
    for (const [i, r] of recorders.entries()) {
      const { change, next } = r.changes[ROUNDS]!;
      expect(change.source).toBe('nats');
      expect(change.changedPaths).toEqual(['feature.limit']);
      expect(next).toEqual({ feature: { enabled: ROUNDS % 2 === 1, limit: 25 }, label: `v${ROUNDS}`, round: ROUNDS });
      expect(await clients[i]!.get(service)).toEqual(next);
      expect(r.errors).toEqual([]);
    }

    // Nothing more arrives: exactly one onChange per change and client.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const r of recorders) expect(r.changes).toHaveLength(ROUNDS + 1);

    console.log(
      `[hot-reload] POST → onChange, ${CLIENTS} clients × ${ROUNDS} writes: p50 ${ms(percentile(perClient, 50))}, ` +
        `p95 ${ms(percentile(perClient, 95))}, max ${ms(Math.max(...perClient))}; write start → last client: ` +
        `p50 ${ms(percentile(lastPerRound, 50))}, max ${ms(Math.max(...lastPerRound))}; ` +
        `hub response → last client: p50 ${ms(percentile(afterResponse, 50))}, max ${ms(Math.max(...afterResponse))}; ` +
        `PATCH → last client ${ms(Math.max(...patchArrivals))}`,
    );
  });
});

describe('hot reload without NATS', () => {
  it('a short poll delivers the change (source poll) and status reports NATS off', async () => {
    const hub = await lab.hub();
    const service = uniqueService();
    await hub.post(service, { level: 'info', workers: 2 });
    const client = lab.client({ hubUrl: hub.url, services: { [service]: {} }, pollIntervalMs: 200 });
    const rec = record(client, service);
    expect(await client.get(service)).toEqual({ level: 'info', workers: 2 });
    expect(client.status(service).nats).toBe('off');

    const start = performance.now();
    const answer = await hub.post(service, { level: 'debug', workers: 2 });
    expect(answer.body.broadcast).toBe('unavailable');
    await waitUntil('the poll to deliver the change', () => rec.changes.length === 1, 3_000);
    const elapsed = performance.now() - start;
    const { change, next } = rec.changes[0]!;
    expect(change.source).toBe('poll');
    expect(change.changedPaths).toEqual(['level']);
    expect(change.revision).toBe(answer.body.revision);
    expect(next).toEqual({ level: 'debug', workers: 2 });
    expect(await client.get(service)).toEqual({ level: 'debug', workers: 2 });
    // 200 ms ± 20 % jitter, plus one GET.
    expect(elapsed).toBeLessThan(2_000);

    // Unchanged polls (304) fire nothing.
    const gets = hub.gets(service);
    await waitUntil('two more polls', () => hub.gets(service) >= gets + 2, 3_000);
    expect(rec.changes).toHaveLength(1);
    expect(client.status(service)).toMatchObject({ source: 'hub', stale: false, nats: 'off', revision: answer.body.revision });
    console.log(`[hot-reload] no NATS, poll 200 ms: POST → onChange ${ms(elapsed)}`);
  });
});
