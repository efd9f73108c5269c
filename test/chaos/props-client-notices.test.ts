/**
 * Property tests on the notice road, driven through a real client subscribed on a real nats-server (a
 * private one from the lab), whose hub is the msw bridge. Every payload is published from a second
 * connection and really crosses the server into the watcher's subscription callback.
 *
 * The client is handed a connection (`nats: { connection }`) on which the test also listens for a sentinel
 * published right after each payload, from the same publisher: the server delivers one publisher's messages
 * in order, and nats.js dispatches one connection's messages in order, so when the sentinel arrives the
 * watcher has handled the payload. No sleeps guess at delivery.
 *
 * B1: arbitrary bytes / JSON / anything as payloads → never throws, never applies; at most a bounded refresh.
 * X3: notices (payload applied or refetched) and fetch answers reordered by fast-check's scheduler → the
 *     client never goes back to an older revision, and ends on the newest.
 *
 * Liveness (issue 9): both assert that the runs executed, that every payload reached the client's connection,
 * and that the watcher acted on notices (B1: reports of malformed ones and a valid notice applied after the
 * storm; X3: changes with source `nats`), so neither can pass on a road that delivers nothing.
 */
import fc from 'fast-check';
import { HttpResponse, http } from 'msw';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigClient, type ConfigError } from '../../src/index.js';
import { cleanupLab, createMswAgent, type MswAgent, type NatsServerHandle, startNatsServer, waitFor } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { SentinelDelivery } from '../helpers/nats-sentinel.js';
import { expectLive, expectRuns } from './liveness.js';

const HUB = 'http://hub.test';
const B1_RUNS = 1_000;
const X3_RUNS = 1_000;
const SENTINEL = `chaos.sentinel.${process.pid}`;

const ticks = async (n = 3) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

let agent: MswAgent;
let server: NatsServerHandle;
/** Handed to the clients; the test's sentinel subscription lives on it too. */
let clientConnection: NatsConnection;
/** Publishes payloads and sentinels. */
let publisher: NatsConnection;
let fetches = 0;
let hubRevision = 1;
/** X3: each fetch answer waits for this hook (the scheduler) before it is sent. */
let beforeAnswer: (() => Promise<unknown>) | undefined;

let sentinels: SentinelDelivery;

/** `data` on `subject`, then a sentinel: by the time it resolves the watcher's callback has run for `data`. */
const deliver = (subject: string, data: Uint8Array): Promise<void> => sentinels.deliver(subject, data);

function doc(service: string, revision: number) {
  return { service_name: service, config: { rev: revision }, version: `v${revision}`, updated_at: 1_760_000_000_000 + revision, revision };
}

/** A change a notice caused: a refetch it triggered (`nats`), or its payload applied (`notice`, if the runtime says so). */
const fromNotice = (source: string): boolean => source === 'nats' || source === 'notice';

/** Resolves when the client's watcher has subscribed (SUB flushed to the server). */
async function watching(client: ConfigClient, service: string): Promise<void> {
  for (let i = 0; client.status(service).nats !== 'connected'; i++) {
    if (i > 5_000) throw new Error(`client never subscribed for ${service}: nats is ${client.status(service).nats}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

beforeAll(async () => {
  server = await startNatsServer();
  clientConnection = await connect({ servers: server.url, name: 'chaos-props-clients' });
  publisher = await connect({ servers: server.url, name: 'chaos-props-publisher' });
  sentinels = await SentinelDelivery.attach(publisher, clientConnection, SENTINEL);
  agent = createMswAgent([
    http.get(`${HUB}/api/v1/config/:service`, async ({ params }) => {
      fetches++;
      const revision = hubRevision;
      if (beforeAnswer) await beforeAnswer();
      return HttpResponse.json(doc(String(params.service), revision));
    }),
  ]);
});
afterAll(async () => {
  await agent?.close();
  await clientConnection?.close().catch(() => undefined);
  await publisher?.close().catch(() => undefined);
  await cleanupLab();
});

const encoder = new TextEncoder();

describe('property: notices', () => {
  it(`B1: arbitrary bytes / JSON / anything as a NATS payload never throws and never applies (${B1_RUNS} runs, applyPayload on and off)`, async () => {
    const service = `chaos-b1-${process.pid}`;
    const subject = `config.update.${service}`;
    beforeAnswer = undefined;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.jsonValue().map((v) => encoder.encode(JSON.stringify(v))),
      fc.anything().map((v) => encoder.encode(String(JSON.stringify(v)))),
      // notice-shaped but for another service, or with broken fields
      fc
        .record({
          service_name: fc.oneof(fc.string(), fc.constant('other-service')),
          revision: fc.oneof(fc.integer(), fc.double(), fc.string()),
          updated_at: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
          config: fc.oneof(fc.jsonValue(), fc.string()),
        }, { requiredKeys: [] })
        .map((v) => encoder.encode(JSON.stringify(v))),
      // valid for this service but stale (revision ≤ current): must not apply either
      fc.record({ service_name: fc.constant(service), revision: fc.integer({ min: 0, max: 1 }), config: fc.jsonValue() }).map((v) => encoder.encode(JSON.stringify(v))),
    );
    let exceptions = 0;
    let applied = 0;
    let runs = 0;
    let delivered = 0;
    let reportedInvalid = 0;
    let appliedAfterStorm = 0;
    try {
      for (const applyPayload of [false, true]) {
        hubRevision = 1;
        const client = new ConfigClient({
          hubUrl: HUB,
          snapshotDir: false,
          pollIntervalMs: false,
          transport: { dispatcher: agent, retries: 0 },
          nats: { connection: clientConnection, applyPayload },
          services: { [service]: {} },
        });
        const errors: ConfigError[] = [];
        client.onError((error) => errors.push(error));
        const changes: { source: string; revision: number | undefined }[] = [];
        client.onChange(service, (_n, _p, change) => {
          changes.push({ source: change.source, revision: change.revision });
        });
        const first = await client.get(service);
        await watching(client, service);
        const before = fetches;
        await fc.assert(
          fc.asyncProperty(payload, async (bytes) => {
            runs++;
            try {
              await deliver(subject, bytes);
              delivered++;
            } catch (error) {
              if (String(error).includes('sentinel')) throw error;
              exceptions++;
            }
            await ticks();
            const now = await client.get(service);
            if (now !== first) applied++;
            expect(now).toBe(first);
            expect(changes).toEqual([]);
          }),
          { numRuns: B1_RUNS / 2 },
        );
        recordFigure({ row: 'B1', name: `refreshes caused by ${B1_RUNS / 2} arbitrary payloads (applyPayload ${applyPayload})`, value: fetches - before, unit: 'count' });
        reportedInvalid += errors.filter((e) => e.code === 'NOTICE_INVALID').length;
        // The road is live: a valid, newer notice after the storm still arrives and moves the client.
        hubRevision = 2;
        await deliver(subject, encoder.encode(JSON.stringify(doc(service, 2))));
        await waitFor(`B1 (applyPayload ${applyPayload}): a valid notice after the storm to change the client`, () =>
          changes.some((c) => fromNotice(c.source) && c.revision === 2),
        );
        appliedAfterStorm++;
        await client.close();
      }
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(exceptions).toBe(0);
    expect(unhandled).toEqual([]);
    recordFigure({ row: 'B1', name: `exceptions over ${B1_RUNS} payloads`, value: exceptions + unhandled.length, unit: 'count' });
    recordFigure({ row: 'B1', name: 'payloads applied', value: applied, unit: 'count' });
    expectRuns('B1', runs, B1_RUNS);
    expectLive('B1', 'payloads delivered to the client connection (sentinel after each)', delivered, B1_RUNS);
    expectLive('B1', 'malformed notices reported by the watcher (NOTICE_INVALID)', reportedInvalid);
    expectLive('B1', 'valid notices applied after the storm (one per applyPayload mode)', appliedAfterStorm, 2);
  }, 180_000);

  it(`X3: notices and fetch answers reordered by the fast-check scheduler → never back to an older revision (${X3_RUNS} runs)`, async () => {
    let run = 0;
    let regressions = 0;
    let noticesPublished = 0;
    let noticesDelivered = 0;
    let natsChanges = 0;
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 6 }), fc.boolean(), async (s, commits, applyPayload) => {
        run++;
        const service = `chaos-x3-${process.pid}-${run}`;
        const subject = `config.update.${service}`;
        hubRevision = 1;
        beforeAnswer = () => s.schedule(Promise.resolve('answer'), 'fetch answer');
        const client = new ConfigClient({
          hubUrl: HUB,
          snapshotDir: false,
          pollIntervalMs: false,
          startupTimeoutMs: 60_000,
          transport: { dispatcher: agent, retries: 0 },
          nats: { connection: clientConnection, applyPayload },
          services: { [service]: {} },
        });
        const deliveries: Promise<void>[] = [];
        // Per run (a shrink run must not fail on an earlier run's count); `regressions` sums them.
        const seen: string[] = [];
        try {
          let maxSeen = 0;
          const observe = (where: string) => {
            const r = client.status(service).revision ?? 0;
            if (r < maxSeen) {
              regressions++;
              throw new Error(`regression at ${where}: ${r} after ${maxSeen}`);
            }
            maxSeen = r;
          };
          client.onChange(service, (_n, _p, change) => {
            if (fromNotice(change.source)) natsChanges++;
            seen.push(`${change.source}:${change.revision}`);
            if ((change.revision ?? 0) < maxSeen) {
              regressions++;
              seen.push(`regression: ${change.revision} after ${maxSeen}`);
            }
          });
          const first = client.get(service);
          // Notices published before the SUB reached the server would be lost (core NATS): wait for it.
          await watching(client, service);
          // Commits happen in order; each one's notice is published whenever the scheduler says.
          for (let i = 2; i <= commits; i++) {
            s.schedule(Promise.resolve(i), `commit ${i}`).then((revision) => {
              if (revision > hubRevision) hubRevision = revision;
              s.schedule(Promise.resolve(revision), `notice ${revision}`).then((r) => {
                noticesPublished++;
                deliveries.push(deliver(subject, encoder.encode(JSON.stringify(doc(service, r)))).then(() => void noticesDelivered++));
              });
            });
          }
          // Drain: run scheduled tasks one at a time, checking the served revision after each (a published
          // notice is awaited until the watcher has handled it).
          let idle = 0;
          while (idle < 3) {
            if (s.count() > 0) {
              idle = 0;
              await s.waitOne();
              await ticks(2);
              await Promise.all(deliveries.splice(0));
              await ticks(2);
              if (client.status(service).revision !== undefined) observe('step');
            } else {
              idle++;
              await ticks(3);
            }
          }
          await first;
          observe('end');
          // A final refresh (answer released at once) lands on the newest revision.
          beforeAnswer = undefined;
          await client.refresh(service);
          observe('final');
          expect(client.status(service).revision).toBe(commits);
          expect(seen.filter((e) => e.startsWith('regression')), `changes: ${seen.join(', ')}`).toEqual([]);
        } finally {
          beforeAnswer = undefined;
          await Promise.allSettled(deliveries);
          await client.close();
        }
      }),
      { numRuns: X3_RUNS },
    );
    recordFigure({ row: 'X3', name: `regressions over ${X3_RUNS} scheduler runs`, value: regressions, unit: 'count' });
    expectRuns('X3', run, X3_RUNS);
    expectLive('X3', 'notices published', noticesPublished, X3_RUNS);
    expect(noticesDelivered, 'every published notice reached the client connection').toBe(noticesPublished);
    expectLive('X3', 'notices delivered to the client connection', noticesDelivered, X3_RUNS);
    expectLive('X3', 'changes committed from notices (source nats/notice)', natsChanges);
  }, 300_000);
});
