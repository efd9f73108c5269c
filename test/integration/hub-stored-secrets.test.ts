/**
 * Issue 10, over real sockets: a write is checked on the document it leaves, not only on its body. A
 * password already stored (a legacy row, a row written outside the API) never comes back through PATCH or
 * rollback: 422 `{detail}`, nothing written, nothing broadcast.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { dropSchema, KEYS, STORE_KINDS, type StoreKind, startHub, uniqueService } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';

describe.each(STORE_KINDS)('stored secrets never come back through the write API (%s)', (kind: StoreKind) => {
  let hub: Hub;
  let schema: string | undefined;
  let url: string;

  beforeAll(async () => {
    ({ hub, schema } = await startHub(kind, { seed: false }));
    url = await hub.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await hub?.close();
    if (schema !== undefined) await dropSchema(schema);
  });

  async function call(method: string, path: string, body?: unknown, key = KEYS.admin.key, headers: Record<string, string> = {}) {
    const res = await request(`${url}${API}${path}`, {
      method: method as 'GET',
      headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  /** Writes a password into the row behind the API's back, as a legacy row or another tool would. */
  async function plantSecret(service: string): Promise<number> {
    const rows = await hub.store.sql.query<{ revision: string | number }>(
      `UPDATE service_configs SET config_json = config_json || '{"db":{"password":"legacy-pw-4f1c"}}'::jsonb
       WHERE service_name = $1 RETURNING revision`,
      [service],
    );
    return Number(rows[0]!.revision);
  }

  const outboxRows = async (service: string) =>
    Number(
      (await hub.store.sql.query<{ n: string | number }>('SELECT count(*) AS n FROM config_outbox WHERE service_name = $1', [service]))[0]!.n,
    );

  it('A3: a PATCH to another field of a row that holds a password is refused 422; removing the password is accepted', async () => {
    const s = uniqueService('legacy');
    expect((await call('POST', `/${s}`, { a: 1 })).status).toBe(201);
    const planted = await plantSecret(s);
    const outboxBefore = await outboxRows(s);

    const patched = await call('PATCH', `/${s}`, { a: 2 });
    expect(patched.status).toBe(422);
    expect(patched.json).toMatchObject({ detail: expect.stringMatching(/db\.password/), paths: ['db.password'] });
    expect(JSON.stringify(patched.json)).not.toContain('legacy-pw-4f1c');
    const after = await call('GET', `/${s}`);
    expect(after.json).toMatchObject({ revision: planted, config: { a: 1 } });
    expect(await outboxRows(s)).toBe(outboxBefore);

    const removed = await call('PATCH', `/${s}`, { a: 2, db: { password: null } });
    expect(removed.status).toBe(200);
    expect(removed.json.config).toEqual({ a: 2, db: {} });
  });

  it('A3: a rollback to a revision that holds a password is refused 422: not served to read-only keys, not broadcast', async () => {
    const s = uniqueService('legacy');
    expect((await call('POST', `/${s}`, { a: 1 })).status).toBe(201);
    const withSecret = await plantSecret(s);
    const clean = await call('POST', `/${s}`, { a: 3 });
    expect(clean.status).toBe(200);
    const outboxBefore = await outboxRows(s);

    const rolled = await call('POST', `/rollback/${s}`, { revision: withSecret });
    expect(rolled.status).toBe(422);
    expect(rolled.json).toMatchObject({ detail: expect.stringMatching(/secret/), paths: ['db.password'] });

    const read = await call('GET', `/${s}`, undefined, KEYS.reader.key);
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ revision: clean.json.revision, config: { a: 3 } });
    expect(JSON.stringify(read.json)).not.toContain('legacy-pw-4f1c');
    expect(await outboxRows(s)).toBe(outboxBefore);

    // A rollback to a clean revision still works.
    expect((await call('POST', `/rollback/${s}`, { revision: 1 })).status).toBe(200);
  });

  it('A3: restoring a deleted service to a revision that holds a password is refused 422: it stays deleted', async () => {
    const s = uniqueService('legacy');
    expect((await call('POST', `/${s}`, { a: 1 })).status).toBe(201);
    const withSecret = await plantSecret(s);
    expect((await call('DELETE', `/${s}`, undefined, KEYS.admin.key, { 'if-match': '*' })).status).toBe(200);
    const restored = await call('POST', `/rollback/${s}`, { revision: withSecret });
    expect(restored.status).toBe(422);
    expect(restored.json).toMatchObject({ paths: ['db.password'] });
    expect((await call('GET', `/${s}`, undefined, KEYS.reader.key)).status).toBe(404);
    expect((await call('POST', `/rollback/${s}`, { revision: 1 })).status).toBe(200);
    expect((await call('GET', `/${s}`, undefined, KEYS.reader.key)).json).toMatchObject({ config: { a: 1 } });
  });

  it('A3: a full POST replacing a row that holds a password, and a DELETE of it, are accepted (they store no secret)', async () => {
    const s = uniqueService('legacy');
    expect((await call('POST', `/${s}`, { a: 1 })).status).toBe(201);
    await plantSecret(s);
    expect((await call('DELETE', `/${s}`, undefined, KEYS.admin.key, { 'if-match': '*' })).status).toBe(200);
    const replaced = await call('POST', `/${s}`, { a: 9 });
    expect(replaced.status).toBe(201);
    expect(replaced.json.config).toEqual({ a: 9 });
  });
});
