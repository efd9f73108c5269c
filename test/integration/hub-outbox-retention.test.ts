import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { dropSchema, json, KEYS, PrivateNats, STORE_KINDS, type StoreKind, startHub, uniqueService, waitFor } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';
const admin = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };
const RETENTION_MS = 300;

async function outboxRows(hub: Hub, service: string) {
  const rows = await hub.store.sql.query<{ revision: number | string; published: boolean }>(
    'SELECT revision, published_at IS NOT NULL AS published FROM config_outbox WHERE service_name = $1 ORDER BY id',
    [service],
  );
  return rows.map((r) => ({ revision: Number(r.revision), published: r.published }));
}

describe.each(STORE_KINDS)('hub outbox retention on %s', (kind: StoreKind) => {
  let nats: PrivateNats;
  let hub: Hub;
  let schema: string | undefined;

  beforeAll(async () => {
    nats = await PrivateNats.start();
    ({ hub, schema } = await startHub(kind, { natsUrl: nats.url, relayIntervalMs: 50, outboxRetentionMs: RETENTION_MS, seed: false }));
    await waitFor(() => hub.broadcaster.connected);
  });
  afterAll(async () => {
    await hub?.close();
    await nats?.dispose();
    if (schema !== undefined) await dropSchema(schema);
  });

  it(`deletes rows published more than ${RETENTION_MS} ms ago, never a pending row`, async () => {
    const service = uniqueService('retention');
    for (let i = 1; i <= 5; i++) {
      const r = await hub.app.inject({ method: 'POST', url: `${API}/${service}`, ...json({ i }), headers: admin });
      expect(r.json()).toMatchObject({ broadcast: 'sent', revision: i });
    }
    // All published (the oldest may already be pruned on a slow machine: only published rows ever go).
    const published = await outboxRows(hub, service);
    expect(published.every((r) => r.published)).toBe(true);

    // NATS down: the next changes stay pending; the published ones age out meanwhile.
    await nats.stop();
    await waitFor(() => !hub.broadcaster.connected);
    for (let i = 6; i <= 8; i++) {
      const r = await hub.app.inject({ method: 'POST', url: `${API}/${service}`, ...json({ i }), headers: admin });
      expect(r.json()).toMatchObject({ broadcast: 'unavailable', revision: i });
    }
    const pending = [6, 7, 8].map((revision) => ({ revision, published: false }));
    await waitFor(async () => (await outboxRows(hub, service)).length === 3, 10_000, 25);
    expect(await outboxRows(hub, service)).toEqual(pending);
    expect(hub.broadcaster.pruned).toBeGreaterThanOrEqual(5);
    // Several retention periods later the pending rows are still there.
    await new Promise((r) => setTimeout(r, RETENTION_MS * 3));
    expect(await outboxRows(hub, service)).toEqual(pending);
    expect(await hub.store.pendingOutboxCount()).toBe(3);

    // NATS back: the relay publishes them, and once they are old enough they go too.
    await nats.start();
    await waitFor(async () => (await hub.store.pendingOutboxCount()) === 0, 15_000, 25);
    await waitFor(async () => (await outboxRows(hub, service)).length === 0, 10_000, 25);
    // The history is untouched by the retention: it lives in config_audit_log.
    const history = await hub.app.inject({ method: 'GET', url: `${API}/history/${service}?limit=100`, headers: admin });
    expect(history.json()).toMatchObject({ total: 8 });
  });
});

describe('hub outbox retention default', () => {
  it('keeps published rows (24 h) and rejects a negative retention', async () => {
    await expect(startHub('pglite', { outboxRetentionMs: -1 })).rejects.toThrow(/outboxRetentionMs/);
    const nats = await PrivateNats.start();
    const { hub } = await startHub('pglite', { natsUrl: nats.url, relayIntervalMs: 20, seed: false });
    try {
      await waitFor(() => hub.broadcaster.connected);
      const service = uniqueService('kept');
      const r = await hub.app.inject({ method: 'POST', url: `${API}/${service}`, ...json({ a: 1 }), headers: admin });
      expect(r.json()).toMatchObject({ broadcast: 'sent' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await hub.broadcaster.prune()).toBe(0);
      expect(await outboxRows(hub, service)).toEqual([{ revision: 1, published: true }]);
    } finally {
      await hub.close();
      await nats.dispose();
    }
  });
});
