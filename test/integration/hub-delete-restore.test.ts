/**
 * Issue 10.3: delete and rollback as an operator needs them. A DELETE sends every client of the service
 * back to its defaults, so it must name the revision it deletes (If-Match); a deleted service is restored
 * by rolling back to a revision from its history; a rollback by version restores an earlier config with
 * that label, not the one being served.
 */
import { describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { historyResponseSchema } from '../../src/hub/wire.js';
import { KEYS, STORE_KINDS, type StoreKind, uniqueService, useSuiteHub } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';
const admin = { 'x-api-key': KEYS.admin.key, 'content-type': 'application/json' };

describe.each(STORE_KINDS)('hub delete and restore on %s', (kind: StoreKind) => {
  let hub: Hub;
  useSuiteHub(kind, { seed: false }, (started) => {
    hub = started;
  });

  const post = (service: string, body: unknown, query = '') =>
    hub.app.inject({ method: 'POST', url: `${API}/${service}${query}`, headers: admin, payload: JSON.stringify(body) });
  const del = (service: string, ifMatch?: string) =>
    hub.app.inject({ method: 'DELETE', url: `${API}/${service}`, headers: { 'x-api-key': KEYS.admin.key, ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) } });
  const get = (service: string) => hub.app.inject({ method: 'GET', url: `${API}/${service}`, headers: admin });
  const rollback = (service: string, body: unknown) =>
    hub.app.inject({ method: 'POST', url: `${API}/rollback/${service}`, headers: admin, payload: JSON.stringify(body) });

  it('W2: DELETE without If-Match is refused with 428 {detail} and deletes nothing; a stale one is 412; the current one deletes', async () => {
    const service = uniqueService('del');
    await post(service, { a: 1 });
    await post(service, { a: 2 });
    const missing = await del(service);
    expect(missing.statusCode).toBe(428);
    expect(missing.json()).toEqual({ detail: expect.stringContaining('If-Match') });
    expect((await get(service)).json()).toMatchObject({ revision: 2, config: { a: 2 } });
    const stale = await del(service, '"1"');
    expect(stale.statusCode).toBe(412);
    expect(stale.json()).toMatchObject({ detail: expect.any(String), revision: 2 });
    expect((await get(service)).statusCode).toBe(200);
    const ok = await del(service, '"2"');
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ status: 'deleted', revision: 3 });
    expect((await get(service)).statusCode).toBe(404);
    // `*` deletes whatever revision is current, on purpose.
    const other = uniqueService('del-star');
    await post(other, { b: 1 });
    expect((await del(other, '*')).json()).toMatchObject({ status: 'deleted', revision: 2 });
  });

  it('W2: a deleted service is restored by rolling back to a revision its history names', async () => {
    const service = uniqueService('restore');
    await post(service, { a: 1 }, '?version=1.0.0');
    await post(service, { a: 2 }, '?version=1.1.0');
    expect((await del(service, '"2"')).statusCode).toBe(200);
    expect((await get(service)).statusCode).toBe(404);

    const history = historyResponseSchema.parse((await hub.app.inject({ method: 'GET', url: `${API}/history/${service}`, headers: admin })).json());
    expect(history.history.map((h) => [h.action, h.revision, h.version])).toEqual([
      ['deleted', 3, '1.1.0'],
      ['updated', 2, '1.1.0'],
      ['created', 1, '1.0.0'],
    ]);
    const restored = await rollback(service, { revision: 2 });
    expect(restored.statusCode).toBe(200);
    expect(restored.json()).toMatchObject({ status: 'rollback', config: { a: 2 }, version: '1.1.0', revision: 4 });
    expect((await get(service)).json()).toMatchObject({ config: { a: 2 }, revision: 4, active: true });
    const after = (await hub.app.inject({ method: 'GET', url: `${API}/history/${service}`, headers: admin })).json();
    expect(after.total).toBe(4); // exactly one audit row for the restore
    expect(after.history[0]).toMatchObject({ action: 'rollback', revision: 4 });

    // Deleted again, restored to an older revision with If-Match (a versioned write).
    expect((await del(service, '"4"')).statusCode).toBe(200);
    const stale = await hub.app.inject({
      method: 'POST',
      url: `${API}/rollback/${service}`,
      headers: { ...admin, 'if-match': '"4"' },
      payload: JSON.stringify({ revision: 1 }),
    });
    expect(stale.statusCode).toBe(412);
    const cas = await hub.app.inject({
      method: 'POST',
      url: `${API}/rollback/${service}`,
      headers: { ...admin, 'if-match': '"5"' },
      payload: JSON.stringify({ revision: 1 }),
    });
    expect(cas.json()).toMatchObject({ status: 'rollback', config: { a: 1 }, version: '1.0.0', revision: 6 });
    // A revision the service never had: 404 {detail}.
    expect((await rollback(service, { revision: 99 })).statusCode).toBe(404);
  });

  it('W2: rollback by version restores the newest earlier config with that label, not the one being served', async () => {
    const service = uniqueService('by-version');
    // The version label often stays the same across updates.
    await post(service, { a: 1 }, '?version=1.0.0');
    await post(service, { a: 2 }, '?version=1.0.0');
    await post(service, { a: 3 }, '?version=1.0.0');
    const r = await rollback(service, { version: '1.0.0' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ status: 'rollback', config: { a: 2 }, revision: 4 });
    // Label of a version that only ever held what is served now: nothing to roll back to.
    await post(service, { a: 9 }, '?version=2.0.0');
    const none = await rollback(service, { version: '2.0.0' });
    expect(none.statusCode).toBe(404);
    expect(none.json()).toEqual({ detail: expect.stringContaining("version '2.0.0'") });
    expect((await get(service)).json()).toMatchObject({ config: { a: 9 }, revision: 5 });
  });
});
