/**
 * Property tests on the notice road, driven through a real client whose NATS connection is a small in-memory
 * fake handed in as `nats.connection` (so every message runs the watcher's parse → onNotice → handleNotice
 * path), and whose hub is the msw bridge.
 *
 * B1: arbitrary bytes / JSON / anything as payloads → never throws, never applies; at most a bounded refresh.
 * X3: notices (with payloads, applyPayload on) and fetch answers reordered by fast-check's scheduler → the
 *     client never goes back to an older revision, and ends on the newest.
 */
import fc from 'fast-check';
import { HttpResponse, http } from 'msw';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigClient } from '../../src/index.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';
import { recordFigure } from './figures.js';

const HUB = 'http://hub.test';
const B1_RUNS = 1_000;
const X3_RUNS = 1_000;

interface FakeNats {
  connection: NatsConnection;
  publish(subject: string, data: Uint8Array): void;
}

/** Just enough of NatsConnection for NatsWatcher with a handed connection. */
function fakeNats(): FakeNats {
  const subscribers = new Map<string, (data: Uint8Array) => void>();
  const never = new Promise<never>(() => undefined);
  const connection = {
    subscribe(subject: string) {
      const queue: Uint8Array[] = [];
      let wake: (() => void) | undefined;
      let closed = false;
      subscribers.set(subject, (data) => {
        queue.push(data);
        wake?.();
        wake = undefined;
      });
      return {
        async *[Symbol.asyncIterator]() {
          while (!closed) {
            const data = queue.shift();
            if (data) yield { subject, data };
            else await new Promise<void>((resolve) => (wake = resolve));
          }
        },
        unsubscribe() {
          closed = true;
          wake?.();
        },
        isClosed: () => closed,
      };
    },
    // A status stream that never yields (no disconnects in this fake).
    status: () => ({ [Symbol.asyncIterator]: () => ({ next: () => never }) }),
    closed: () => never,
    flush: async () => undefined,
    isClosed: () => false,
  };
  return {
    connection: connection as unknown as NatsConnection,
    publish: (subject, data) => subscribers.get(subject)?.(data),
  };
}

const ticks = async (n = 3) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

let agent: MswAgent;
let fetches = 0;
let hubRevision = 1;
/** X3: each fetch answer waits for this hook (the scheduler) before it is sent. */
let beforeAnswer: (() => Promise<unknown>) | undefined;

function doc(service: string, revision: number) {
  return { service_name: service, config: { rev: revision }, version: `v${revision}`, updated_at: 1_760_000_000_000 + revision, revision };
}

beforeAll(() => {
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
  await agent.close();
});

const encoder = new TextEncoder();

describe('property: notices', () => {
  it(`B1: arbitrary bytes / JSON / anything as a NATS payload never throws and never applies (${B1_RUNS} runs, applyPayload on and off)`, async () => {
    const service = 'chaos-b1';
    const subject = `config.update.${service}`;
    hubRevision = 1;
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
    try {
      for (const applyPayload of [false, true]) {
        const nats = fakeNats();
        const client = new ConfigClient({
          hubUrl: HUB,
          snapshotDir: false,
          pollIntervalMs: false,
          transport: { dispatcher: agent, retries: 0 },
          nats: { connection: nats.connection, applyPayload },
          services: { [service]: {} },
        });
        const changes: unknown[] = [];
        client.onChange(service, (n) => {
          changes.push(n);
        });
        const first = await client.get(service);
        await ticks(10);
        const before = fetches;
        await fc.assert(
          fc.asyncProperty(payload, async (bytes) => {
            try {
              nats.publish(subject, bytes);
            } catch {
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
        await client.close();
      }
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(exceptions).toBe(0);
    expect(unhandled).toEqual([]);
    recordFigure({ row: 'B1', name: `exceptions over ${B1_RUNS} payloads`, value: exceptions + unhandled.length, unit: 'count' });
    recordFigure({ row: 'B1', name: 'payloads applied', value: applied, unit: 'count' });
  });

  it(`X3: notices and fetch answers reordered by the fast-check scheduler → never back to an older revision (${X3_RUNS} runs)`, async () => {
    let run = 0;
    let regressions = 0;
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 6 }), fc.boolean(), async (s, commits, applyPayload) => {
        run++;
        const service = `chaos-x3-${run}`;
        const subject = `config.update.${service}`;
        hubRevision = 1;
        beforeAnswer = () => s.schedule(Promise.resolve('answer'), 'fetch answer');
        const nats = fakeNats();
        const client = new ConfigClient({
          hubUrl: HUB,
          snapshotDir: false,
          pollIntervalMs: false,
          startupTimeoutMs: 60_000,
          transport: { dispatcher: agent, retries: 0 },
          nats: { connection: nats.connection, applyPayload },
          services: { [service]: {} },
        });
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
            if ((change.revision ?? 0) < maxSeen) {
              regressions++;
            }
          });
          const first = client.get(service);
          // Commits happen in order; each one's notice is delivered whenever the scheduler says.
          for (let i = 2; i <= commits; i++) {
            s.schedule(Promise.resolve(i), `commit ${i}`).then((revision) => {
              if (revision > hubRevision) hubRevision = revision;
              s.schedule(Promise.resolve(revision), `notice ${revision}`).then((r) => {
                nats.publish(subject, encoder.encode(JSON.stringify(doc(service, r))));
              });
            });
          }
          // Drain: run scheduled tasks one at a time, checking the served revision after each.
          let idle = 0;
          while (idle < 3) {
            if (s.count() > 0) {
              idle = 0;
              await s.waitOne();
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
          expect(regressions).toBe(0);
        } finally {
          beforeAnswer = undefined;
          await client.close();
        }
      }),
      { numRuns: X3_RUNS },
    );
    recordFigure({ row: 'X3', name: `regressions over ${X3_RUNS} scheduler runs`, value: regressions, unit: 'count' });
  });
});
