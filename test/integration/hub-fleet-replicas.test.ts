/**
 * Issue 11 (docs/fleet.md §5): two hub replicas on one PostgreSQL schema answer the same fleet view,
 * over real sockets. (PGlite is one process's embedded database: replicas cannot share it.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { answered, BATCH_SCHEMA, call, consumers, report, reportHeader, schemaUpload } from '../helpers/fleet-http.js';
import { dropSchema, startHub, uniqueSchema, uniqueService, waitFor } from '../helpers/hub-fixtures.js';

const API = '/api/v1/config';

describe('hub fleet: two replicas on one PostgreSQL schema', () => {
  const schema = uniqueSchema('hubfleetrep');
  let a: Hub;
  let b: Hub;
  let urlA: string;
  let urlB: string;

  beforeAll(async () => {
    [{ hub: a }, { hub: b }] = await Promise.all([startHub('postgres', { schema, seed: false }), startHub('postgres', { schema, seed: false })]);
    [urlA, urlB] = await Promise.all([a.listen({ host: '127.0.0.1', port: 0 }), b.listen({ host: '127.0.0.1', port: 0 })]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await dropSchema(schema);
    expect(answered.count).toBeGreaterThan(0);
  });

  const view = async (base: string, service: string) => (await call(base, 'GET', `${API}/${service}/instances`)).body;

  it('two replicas agree on the fleet view: each merges the table with its own unflushed reports', async () => {
    const service = uniqueService('agree');
    await call(urlA, 'POST', `${API}/${service}`, { body: { a: 1 } });
    // Instances spread over both replicas, as behind a load balancer.
    for (let i = 0; i < 6; i++) {
      const base = i % 2 === 0 ? urlA : urlB;
      const r = await call(base, 'GET', `${API}/${service}`, { headers: reportHeader(report(`i-${i}`, { [service]: { revision: i < 4 ? 1 : 0 } })) });
      expect(r.status).toBe(200);
    }
    // The same instance seen later by the other replica: the newest sighting wins everywhere.
    await call(urlB, 'GET', `${API}/${service}`, { headers: reportHeader(report('i-0', { [service]: { revision: 1, stale: true } })) });
    const expected = { total: 6, on_latest: 4, behind: 2, rejected: 0 };
    await waitFor(async () => {
      const [va, vb] = await Promise.all([view(urlA, service), view(urlB, service)]);
      return JSON.stringify(va) === JSON.stringify(vb) && JSON.stringify(va.summary) === JSON.stringify(expected) && va.instances[0].stale === true;
    }, 3000, 50);
    const [va, vb] = await Promise.all([view(urlA, service), view(urlB, service)]);
    expect(va).toEqual(vb);
    expect(va.instances.map((i: { instance_id: string }) => i.instance_id)).toEqual(['i-0', 'i-1', 'i-2', 'i-3', 'i-4', 'i-5']);
    const lists = await Promise.all([call(urlA, 'GET', API), call(urlB, 'GET', API)]);
    const counts = lists.map((l) => l.body.services.find((s: { service_name: string }) => s.service_name === service).instances);
    expect(counts).toEqual([expected, expected]);
  });

  it("a rejection reported to one replica is in the other's fleet view within 1 s", async () => {
    const service = uniqueService('reject');
    await call(urlA, 'POST', `${API}/${service}`, { body: { a: 1 } });
    await call(urlA, 'POST', `${API}/${service}/instances`, { body: report('r-0', { [service]: {} }) });
    await waitFor(async () => (await view(urlB, service)).summary.total === 1, 3000, 10);
    // A flush of A has just happened: the rejection waits for A's next one (the worst case).
    const sent = Date.now();
    await call(urlA, 'POST', `${API}/${service}/instances`, { body: report('r-1', { [service]: { error: 'CONFIG_INVALID' } }) });
    expect((await view(urlA, service)).summary.rejected).toBe(1);
    await waitFor(async () => (await view(urlB, service)).summary.rejected === 1, 3000, 10);
    const afterMs = Date.now() - sent;
    console.log(`[fleet] replica B sees the rejection reported to A after ${afterMs} ms`);
    expect(afterMs).toBeLessThanOrEqual(1250);
  });

  it('a write through one replica is checked against consumers that reported to the other', async () => {
    const service = uniqueService('cross');
    await call(urlA, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 1 } } });
    await consumers(urlB, service, schemaUpload(BATCH_SCHEMA), ['x-1', 'x-2']);
    await b.fleet.instances.flush();
    const refused = await call(urlA, 'POST', `${API}/${service}`, { body: { operational: { batch_size: 0 } } });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ detail: '1 consumer (2 instances) would reject this config', consumers: [{ instance_ids: ['x-1', 'x-2'] }] });
  });
});
