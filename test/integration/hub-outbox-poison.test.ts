/**
 * Issue 10.1: one outbox row the NATS server refuses (over `max_payload`) stopped the broadcast for good:
 * the relay published pending rows in id order in one transaction, so every later run failed on the same
 * row and nothing behind it went out, while `/health` said `ok`. A private nats-server with a tiny
 * `max_payload` (300 bytes) makes "too large" cheap: a 2 KB config plays the 1 MiB one.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { noticeSchema, type Notice } from '../../src/hub/wire.js';
import { dropSchema, json, STORE_KINDS, type StoreKind, startHub, TcpProxy, uniqueService, waitFor } from '../helpers/hub-fixtures.js';
import { cleanupLab, type NatsServerHandle, startNatsServer } from '../helpers/lab/index.js';

const API = '/api/v1/config';
const MAX_PAYLOAD = 300;
const MAX_ATTEMPTS = 5;

describe.each(STORE_KINDS)('hub outbox with a row NATS refuses, on %s', (kind: StoreKind) => {
  let nats: NatsServerHandle;
  let proxy: TcpProxy;
  let observer: NatsConnection;
  let hub: Hub;
  let schema: string | undefined;
  const seen: { notice: Notice; at: number }[] = [];
  const reported: string[] = [];

  beforeAll(async () => {
    const conf = join(tmpdir(), `hub-poison-${process.pid}-${kind}.conf`);
    writeFileSync(conf, `max_payload: ${MAX_PAYLOAD}\n`);
    nats = await startNatsServer({ args: ['-c', conf] });
    observer = await connect({ servers: nats.url });
    const sub = observer.subscribe('config.update.>');
    void (async () => {
      for await (const m of sub) seen.push({ notice: noticeSchema.parse(m.json()), at: Date.now() });
    })();
    await observer.flush();
    // The hub reaches NATS through a proxy: cutting it is a NATS outage for the hub only, while the
    // observer stays subscribed (core NATS: a disconnected observer would miss the relay's publishes).
    proxy = new TcpProxy(nats.port);
    await proxy.listen();
    ({ hub, schema } = await startHub(kind, {
      natsUrl: `nats://127.0.0.1:${proxy.port}`,
      relayIntervalMs: 100,
      seed: false,
      disableAuth: true,
      // The hub's warnings (where the relay reports failed and dead-lettered rows).
      logger: pino({ level: 'warn' }, { write: (line: string) => reported.push(line) }),
    }));
    await waitFor(() => hub.broadcaster.connected);
  });
  afterAll(async () => {
    await hub?.close();
    await observer?.close().catch(() => {});
    proxy?.restore();
    await cleanupLab();
    if (schema !== undefined) await dropSchema(schema);
  });

  const noticeOf = (service: string) => seen.find((s) => s.notice.service_name === service);

  it('P1: a notice over max_payload goes out without config, a row that never fits is dead-lettered, and the rows behind both are published', async () => {
    expect(observer.info?.max_payload).toBe(MAX_PAYLOAD);

    // 1. Too large with its config: published as a hint (no config; clients refetch).
    const big = uniqueService('big');
    const bigConfig = { blob: 'x'.repeat(2000) };
    const r1 = await hub.app.inject({ method: 'POST', url: `${API}/${big}`, ...json(bigConfig) });
    expect(r1.statusCode).toBe(201);
    expect(r1.json().broadcast).toBe('sent');
    await waitFor(() => noticeOf(big) !== undefined);
    expect(noticeOf(big)!.notice).toMatchObject({ service_name: big, revision: 1, action: 'created' });
    expect(noticeOf(big)!.notice.config).toBeUndefined();
    // The hub still serves the whole config: the hint is enough.
    expect((await hub.app.inject({ method: 'GET', url: `${API}/${big}` })).json().config).toEqual(bigConfig);

    // 2. Too large even without config (100-character name and author, 20-character version): retried,
    //    then dead-lettered.
    const poison = `poison-${'p'.repeat(93)}`;
    const r2 = await hub.app.inject({
      method: 'POST',
      url: `${API}/${poison}?version=${'9'.repeat(20)}&updated_by=${'u'.repeat(100)}`,
      ...json({ a: 1 }),
    });
    expect(r2.statusCode).toBe(201);
    expect(r2.json().broadcast).toBe('failed');

    // 3. NATS goes away for the hub; a change is committed meanwhile (after the poison row), then NATS is back.
    proxy.cut();
    await waitFor(() => !hub.broadcaster.connected);
    const after = uniqueService('after');
    const r3 = await hub.app.inject({ method: 'POST', url: `${API}/${after}`, ...json({ n: 1 }) });
    expect(r3.json().broadcast).toBe('unavailable');
    const during = (await hub.app.inject({ method: 'GET', url: '/health' })).json();
    expect(during).toMatchObject({ status: 'degraded', nats: false, outbox: { pending: 2 } });
    const restoredAt = Date.now();
    proxy.restore();
    await waitFor(() => noticeOf(after) !== undefined, 10_000, 5);
    const relayLagMs = noticeOf(after)!.at - restoredAt;
    expect(noticeOf(after)!.notice).toMatchObject({ service_name: after, config: { n: 1 }, revision: 1 });

    // 4. The poison row is dead after MAX_ATTEMPTS relay runs, reported, and /health says so.
    await waitFor(async () => (await hub.store.outboxStats()).dead === 1, 10_000, 25);
    const rows = await hub.store.sql.query<{ service_name: string; attempts: number; dead: boolean; published: boolean; last_error: string }>(
      `SELECT service_name, attempts, dead_at IS NOT NULL AS dead, published_at IS NOT NULL AS published, last_error
       FROM config_outbox ORDER BY id`,
    );
    expect(rows.map((r) => [r.service_name, r.published, r.dead])).toEqual([
      [big, true, false],
      [poison, false, true],
      [after, true, false],
    ]);
    expect(rows[1]!.attempts).toBe(MAX_ATTEMPTS);
    expect(rows[1]!.last_error).toMatch(/max_payload \(300 bytes\) even without config/);
    expect(noticeOf(poison)).toBeUndefined();
    const health = await hub.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({
      status: 'degraded',
      store: kind,
      db: true,
      nats: true,
      outbox: { pending: 0, dead: 1, lag_ms: 0 },
      // The fleet's write-behind (docs/fleet.md §5): nothing waits, nothing dropped, no flush error.
      fleet: { pending: 0, dropped: 0 },
      reads: expect.objectContaining({ source: 'memory', listening: true }),
    });
    expect(reported.some((m) => m.includes('dead-lettered after 5 attempts'))).toBe(true);

    // 5. And the broadcast keeps going.
    const later = uniqueService('later');
    expect((await hub.app.inject({ method: 'POST', url: `${API}/${later}`, ...json({ n: 2 }) })).json().broadcast).toBe('sent');
    await waitFor(() => noticeOf(later) !== undefined);

    const b = hub.broadcaster;
    console.log(
      `[hub-outbox-poison ${kind}] max_payload=${MAX_PAYLOAD} published=${b.published} without_config=${b.publishedWithoutConfig} ` +
        `failed_attempts=${b.failedAttempts} dead_lettered=${b.deadLettered} relay_lag_ms_after_nats_back=${relayLagMs} ` +
        '(row committed during the outage, after the poison row)',
    );
    expect(b.published).toBeGreaterThanOrEqual(3);
    expect(b.publishedWithoutConfig).toBeGreaterThan(0);
    expect(b.deadLettered).toBe(1);
    expect(b.failedAttempts).toBe(MAX_ATTEMPTS);
  });
});

// PostgreSQL: on PGlite (one connection) the relay's transaction, held open while a flush waits for the
// hung link, makes every other query wait too, /health's ping included (it answers `unavailable`).
describe('hub /health when the relay falls behind while NATS still looks connected (PostgreSQL)', () => {
  it('P1: turns degraded once the oldest pending row is older than 10 s, and ok again when it is published', async () => {
    const nats = await startNatsServer();
    const proxy = new TcpProxy(nats.port);
    await proxy.listen();
    const { hub, schema } = await startHub('postgres', { natsUrl: `nats://127.0.0.1:${proxy.port}`, relayIntervalMs: 200, seed: false, disableAuth: true });
    try {
      await waitFor(() => hub.broadcaster.connected);
      // A hung link: the connection stays up (no disconnect for 20 s of missed pings), flushes time out,
      // every relay run fails, and the row stays pending.
      proxy.hang();
      const service = uniqueService('lag');
      const r = await hub.app.inject({ method: 'POST', url: `${API}/${service}`, ...json({ n: 1 }) });
      expect(r.json().broadcast).toBe('failed');
      const early = (await hub.app.inject({ method: 'GET', url: '/health' })).json();
      expect(early).toMatchObject({ status: 'ok', nats: true, outbox: { pending: 1, dead: 0 } });
      let health: { status: string; nats: boolean; outbox: { pending: number; lag_ms: number } } = early;
      let polls = 0;
      await waitFor(
        async () => {
          polls++;
          health = (await hub.app.inject({ method: 'GET', url: '/health' })).json();
          return health.status === 'degraded';
        },
        15_000,
        250,
      );
      console.log(`[hub-outbox-poison lag] degraded at lag_ms=${health.outbox.lag_ms} nats=${health.nats} polls=${polls}`);
      expect(polls).toBeGreaterThan(1);
      expect(health).toMatchObject({ status: 'degraded', nats: true, outbox: { pending: 1 } });
      expect(health.outbox.lag_ms).toBeGreaterThan(hub.broadcaster.maxRelayLagMs);
      proxy.restore();
      await waitFor(async () => (await hub.store.pendingOutboxCount()) === 0, 15_000, 50);
      await waitFor(async () => (await hub.app.inject({ method: 'GET', url: '/health' })).json().status === 'ok', 15_000, 50);
    } finally {
      proxy.restore();
      await hub.close();
      await cleanupLab();
      if (schema !== undefined) await dropSchema(schema);
    }
  }, 40_000);
});
