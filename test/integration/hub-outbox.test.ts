import { connect, type NatsConnection, StorageType } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noticeSchema } from '../../src/hub/wire.js';
import type { Hub } from '../../examples/hub/server.js';
import { dropSchema, json, KEYS, PrivateNats, STORE_KINDS, type StoreKind, startHub, uniqueService, waitFor } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';
const admin = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };
const CHANGES_WHILE_DOWN = 20;

/** Reads every message of `stream` whose subject is `subject`; retries while the test connection reconnects. */
async function storedNotices(nc: NatsConnection, stream: string, subject: string) {
  const jsm = await nc.jetstreamManager({ timeout: 1000 });
  const info = await jsm.streams.info(stream);
  const out: { revision: number; action: string | undefined; time: Date }[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m.subject !== subject) continue;
    const notice = noticeSchema.parse(m.json());
    out.push({ revision: notice.revision ?? -1, action: notice.action, time: m.time });
  }
  return out;
}

describe.each(STORE_KINDS)('hub outbox relay with a private nats-server on %s', (kind: StoreKind) => {
  let nats: PrivateNats;
  let observer: NatsConnection;
  let hub: Hub;
  let schema: string | undefined;
  const stream = `HUBTEST_${kind.toUpperCase()}`;

  beforeAll(async () => {
    nats = await PrivateNats.start();
    observer = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
    // JetStream captures every core publish on config.update.> even while no subscriber is connected,
    // which makes "all 20 revisions were published after the restart" deterministic to check.
    const jsm = await observer.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: ['config.update.>'], storage: StorageType.File });
    ({ hub, schema } = await startHub(kind, { natsUrl: nats.url, relayIntervalMs: 200, seed: false }));
    await waitFor(() => hub.broadcaster.connected);
  });
  afterAll(async () => {
    await hub?.close();
    await observer?.close().catch(() => {});
    await nats?.dispose();
    if (schema !== undefined) await dropSchema(schema);
  });

  it(`publishes every revision committed while NATS was down (${CHANGES_WHILE_DOWN} changes) once it is back`, async () => {
    const service = uniqueService('outbox');
    const subject = `config.update.${service}`;
    const first = await hub.app.inject({ method: 'POST', url: `${API}/${service}`, ...json({ n: 0 }), headers: admin });
    expect(first.json()).toMatchObject({ broadcast: 'sent', revision: 1 });
    await waitFor(async () => (await storedNotices(observer, stream, subject)).length === 1);

    await nats.stop();
    await waitFor(() => !hub.broadcaster.connected);
    const health = await hub.app.inject({ method: 'GET', url: '/health' });
    expect(health.json()).toMatchObject({ status: 'degraded', nats: false, db: true });

    const broadcasts: string[] = [];
    for (let i = 1; i <= CHANGES_WHILE_DOWN; i++) {
      const method = i % 5 === 0 ? 'PATCH' : 'POST';
      const r = await hub.app.inject({ method, url: `${API}/${service}`, ...json({ n: i }), headers: admin });
      expect(r.statusCode).toBe(200);
      broadcasts.push(r.json().broadcast);
    }
    expect(new Set(broadcasts)).toEqual(new Set(['unavailable']));
    expect(await hub.store.pendingOutboxCount()).toBe(CHANGES_WHILE_DOWN);

    await nats.start();
    const restartedAt = Date.now();
    let notices: Awaited<ReturnType<typeof storedNotices>> = [];
    await waitFor(
      async () => {
        try {
          notices = await storedNotices(observer, stream, subject);
        } catch {
          return false; // the observer is still reconnecting
        }
        return notices.length >= CHANGES_WHILE_DOWN + 1;
      },
      15_000,
      50,
    );
    const observedLagMs = Date.now() - restartedAt;
    const afterRestart = notices.filter((n) => n.revision > 1);
    const relayLagMs = Math.max(...afterRestart.map((n) => n.time.getTime())) - restartedAt;
    const revisions = afterRestart.map((n) => n.revision).sort((a, b) => a - b);
    console.log(
      `[hub-outbox ${kind}] committed_while_down=${CHANGES_WHILE_DOWN} broadcast=${broadcasts[0]} ` +
        `published_after_restart=${afterRestart.length} distinct_revisions=${new Set(revisions).size} ` +
        `relay_lag_ms=${relayLagMs} (last notice stored after nats-server was up; observed ${observedLagMs} ms) ` +
        `pending_after=${await hub.store.pendingOutboxCount()}`,
    );
    expect(revisions).toEqual(Array.from({ length: CHANGES_WHILE_DOWN }, (_, i) => i + 2));
    expect(await hub.store.pendingOutboxCount()).toBe(0);
    await waitFor(() => hub.broadcaster.connected);
    expect((await hub.app.inject({ method: 'GET', url: '/health' })).json()).toMatchObject({ status: 'ok', nats: true });
  });

  it('the payload is the DESIGN §3 notice + revision + action', async () => {
    const service = uniqueService('payload');
    const sub = observer.subscribe(`config.update.${service}`, { max: 1 });
    await observer.flush();
    const r = await hub.app.inject({ method: 'POST', url: `${API}/${service}?version=2.1.0`, ...json({ a: 1 }), headers: admin });
    expect(r.json().broadcast).toBe('sent');
    for await (const m of sub) {
      expect(m.json()).toEqual({
        service_name: service,
        config: { a: 1 },
        version: '2.1.0',
        updated_at: r.json().updated_at,
        updated_by: 'admin',
        revision: 1,
        action: 'created',
      });
    }
  });
});

describe('hub started while its NATS is down (PostgreSQL)', () => {
  it('starts, answers "unavailable", publishes the backlog once NATS comes up, and closes promptly', async () => {
    const nats = await PrivateNats.start();
    // The stream is made before the outage (it lives in the server's store dir), so it captures the
    // hub's first publishes whenever they happen after the restart.
    const setup = await connect({ servers: nats.url });
    await (await setup.jetstreamManager()).streams.add({ name: 'HUBLATE', subjects: ['config.update.>'], storage: StorageType.File });
    await setup.close();
    await nats.stop();
    const { hub, schema } = await startHub('postgres', { natsUrl: nats.url, relayIntervalMs: 100, seed: false });
    let observer: NatsConnection | undefined;
    try {
      expect(hub.natsEnabled).toBe(true);
      expect(hub.broadcaster.connected).toBe(false);
      const service = uniqueService('late');
      for (let i = 0; i < 3; i++) {
        const r = await hub.app.inject({ method: 'POST', url: `${API}/${service}`, ...json({ i }), headers: admin });
        expect(r.json().broadcast).toBe('unavailable');
      }
      await nats.start();
      observer = await connect({ servers: nats.url });
      await waitFor(async () => (await storedNotices(observer!, 'HUBLATE', `config.update.${service}`)).length === 3, 15_000, 50);
      expect((await storedNotices(observer, 'HUBLATE', `config.update.${service}`)).map((n) => n.revision)).toEqual([1, 2, 3]);
    } finally {
      const started = Date.now();
      await hub.close();
      expect(Date.now() - started).toBeLessThan(5000);
      await observer?.close();
      await nats.dispose();
      if (schema !== undefined) await dropSchema(schema);
    }
  });

  it('close() does not wait for a NATS that never comes up', async () => {
    const nats = await PrivateNats.start();
    await nats.stop();
    const { hub, schema } = await startHub('postgres', { natsUrl: nats.url, seed: false });
    const started = Date.now();
    await hub.close();
    expect(Date.now() - started).toBeLessThan(3000);
    await nats.dispose();
    if (schema !== undefined) await dropSchema(schema);
  });
});
