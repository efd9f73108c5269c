/**
 * Safe changes end to end (issue 11, docs/fleet.md): real ConfigClients report themselves and their schemas
 * to the real reference hub over real sockets, on PGlite and on PostgreSQL; the hub refuses what they would
 * reject, names them, and shows who runs what.
 */
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Hub } from '../../examples/hub/server.js';
import { fleetCountersOf } from '../../src/fleet/reporter.js';
import { ConfigClient, type ConfigError } from '../../src/index.js';
import { dropSchema, KEYS, STORE_KINDS, startHub, uniqueSchema, uniqueService, waitFor } from '../helpers/hub-fixtures.js';

const admin = { 'x-api-key': KEYS.admin.key };
/** Hub answers received by the tests: the liveness counter. */
let answered = 0;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

async function call(base: string, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown): Promise<Reply> {
  const res = await request(`${base}/api/v1/config${path}`, {
    method,
    headers: { ...admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const text = await res.body.text();
  answered++;
  return { status: res.statusCode, headers: res.headers, body: text.length > 0 ? JSON.parse(text) : undefined };
}

const schema = z.object({
  operational: z.object({
    batch_size: z.number().int().positive(),
    mode: z.enum(['fast', 'safe']),
    interval_s: z.number().positive(),
  }),
  database: z.object({ password: z.string() }),
});

interface FleetClientOptions {
  pollIntervalMs?: number;
  instanceId?: string;
  recoveryMinDelayMs?: number;
}

function fleetClient(hubUrl: string | string[], service: string, options: FleetClientOptions = {}) {
  return new ConfigClient({
    hubUrl,
    apiKey: KEYS.reader.key,
    snapshotDir: false,
    pollIntervalMs: options.pollIntervalMs ?? 60_000,
    ...(options.recoveryMinDelayMs === undefined
      ? {}
      : { recovery: { minDelayMs: options.recoveryMinDelayMs, maxDelayMs: options.recoveryMinDelayMs * 2 } }),
    ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId }),
    env: { FLEET_E2E_DB_PASSWORD: 'hunter2-env-only-value' },
    services: {
      [service]: {
        schema,
        // interval_s comes from the defaults: the hub need not send it.
        defaults: { operational: { interval_s: 5 } },
        env: { 'database.password': 'FLEET_E2E_DB_PASSWORD' },
      },
    },
  });
}

describe.each(STORE_KINDS)('safe changes end to end (%s)', (kind) => {
  let hub: Hub;
  let url: string;
  let pgSchema: string | undefined;
  const clients: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    const started = await startHub(kind, { schema: kind === 'postgres' ? uniqueSchema('fleete2e') : undefined });
    hub = started.hub;
    pgSchema = started.schema;
    url = await hub.listen({ host: '127.0.0.1', port: 0 });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await hub?.close();
    if (pgSchema !== undefined) await dropSchema(pgSchema);
    expect(answered).toBeGreaterThan(0);
  });

  /** A service with a good config and one running client whose schema the hub has learned. */
  async function runningConsumer(options: FleetClientOptions = {}) {
    const service = uniqueService('fleet');
    expect((await call(url, 'POST', `/${service}`, { operational: { batch_size: 10, mode: 'fast' } })).status).toBe(201);
    const client = fleetClient(url, service, options);
    clients.push(client);
    await client.get(service);
    // The first GET names a schema the hub does not know; the client uploads it; the next request of the
    // client (the view is read from the hub's registry) then lists the instance with its hash.
    await waitFor(async () => {
      const view = await call(url, 'GET', `/${service}/instances`);
      // The first GET reported the state before its answer (no revision yet); the report after the first
      // load (within 1 s) says which revision the instance runs.
      const [instance] = view.body?.instances ?? [];
      return view.body?.instances?.length === 1 && instance.schema_hash !== null && instance.revision === 1;
    }, 15_000);
    await waitFor(async () => (await call(url, 'POST', `/${service}/validate`, { operational: { batch_size: 1, mode: 'fast' } })).body?.consumers?.length === 1, 15_000);
    return { service, client };
  }

  it('a write the running consumers would reject is refused with 422, the consumers named, and nothing written', async () => {
    const { service, client } = await runningConsumer();
    const before = await call(url, 'GET', `/${service}`);
    let changes = 0;
    client.onChange(service as never, () => {
      changes++;
    });
    const refused = await call(url, 'POST', `/${service}`, { operational: { batch_size: -5, mode: 'fast' } });
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toEqual(expect.any(String));
    expect(refused.body.issues.map((i: { path: string }) => i.path)).toContain('operational.batch_size');
    expect(refused.body.consumers).toHaveLength(1);
    expect(refused.body.consumers[0]).toMatchObject({ schema_hash: expect.stringMatching(/^[0-9a-f]{64}$/), instances: 1 });
    const wrongType = await call(url, 'PATCH', `/${service}`, { operational: { mode: 'turbo' } });
    expect(wrongType.status).toBe(422);
    const after = await call(url, 'GET', `/${service}`);
    expect(after.body.revision).toBe(before.body.revision);
    expect(after.body.config).toEqual(before.body.config);
    const history = await call(url, 'GET', `/history/${service}`);
    expect(history.body.total).toBe(1);
    // A good write still goes through.
    expect((await call(url, 'PATCH', `/${service}`, { operational: { batch_size: 20 } })).status).toBe(200);
    await client.refresh(service as never);
    expect(changes).toBe(1);
  });

  it('a field the defaults supply and a critical (env) path are not required from the hub, and no env value reaches it', async () => {
    const { service } = await runningConsumer();
    // interval_s (defaults) and database.password (env) are absent: valid.
    const ok = await call(url, 'POST', `/${service}/validate`, { operational: { batch_size: 3, mode: 'safe' } });
    expect(ok.status).toBe(200);
    expect(ok.body.valid).toBe(true);
    const view = await call(url, 'GET', `/${service}/instances`);
    expect(JSON.stringify(view.body)).not.toContain('hunter2');
  });

  it('a dry run answers like a write and writes nothing', async () => {
    const { service } = await runningConsumer();
    const bad = await call(url, 'POST', `/${service}/validate`, { operational: { batch_size: 'abc', mode: 'fast' } });
    expect(bad.status).toBe(422);
    expect(bad.body.consumers[0].instances).toBe(1);
    const good = await call(url, 'POST', `/${service}/validate`, { operational: { batch_size: 7, mode: 'fast' } });
    expect(good.status).toBe(200);
    expect(good.body).toMatchObject({ valid: true });
    expect((await call(url, 'GET', `/history/${service}`)).body.total).toBe(1);
  });

  it('a forced write is committed, recorded in the audit row, and the rejection shows in the fleet view within 1 s', async () => {
    // No poll and a slow recovery: no GET of the client can carry the rejection before the immediate report does.
    const { service, client } = await runningConsumer({ pollIntervalMs: 60_000, recoveryMinDelayMs: 10_000 });
    const noReason = await call(url, 'POST', `/${service}?force=true`, { operational: { batch_size: -1, mode: 'fast' } });
    expect(noReason.status).toBe(400);
    let rejectedAt: number | undefined;
    client.onError((error: ConfigError) => {
      if (error.code === 'CONFIG_INVALID') rejectedAt ??= Date.now();
    });
    const forced = await call(url, 'POST', `/${service}?force=true&change_reason=${encodeURIComponent('incident 42: override')}`, {
      operational: { batch_size: -1, mode: 'fast' },
    });
    expect(forced.status).toBe(200);
    expect(forced.body.forced).toBe(true);
    const history = await call(url, 'GET', `/history/${service}?limit=1`);
    expect(history.body.history[0].change_reason).toBe('incident 42: override');
    expect(history.body.history[0].override).toMatchObject({ forced: true });
    const reportsBefore = fleetCountersOf(client)!.reports;
    // The client learns of the forced write (one GET) and rejects it.
    await expect(client.refresh(service as never)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await waitFor(() => rejectedAt !== undefined, 5000);
    let seenAt: number | undefined;
    await waitFor(async () => {
      const view = await call(url, 'GET', `/${service}/instances`);
      if (view.body.summary.rejected === 1) seenAt = Date.now();
      return seenAt !== undefined;
    }, 3000, 10);
    expect(seenAt! - rejectedAt!).toBeLessThanOrEqual(1000);
    // It was the report request that told the hub.
    expect(fleetCountersOf(client)!.reports).toBeGreaterThan(reportsBefore);
    const view = await call(url, 'GET', `/${service}/instances`);
    // It runs revision 1 (the last good one) and says it rejected the current one.
    expect(view.body.instances[0]).toMatchObject({ last_error: 'CONFIG_INVALID', revision: 1 });
    expect(view.body.summary).toMatchObject({ total: 1, rejected: 1, on_latest: 0 });
    // The client still serves the last good value.
    const served = await client.get(service as never) as { operational: { batch_size: number } };
    expect(served.operational.batch_size).toBe(10);
  });

  it('the fleet view shows who runs which revision, and the list route counts them', async () => {
    const { service, client } = await runningConsumer({ instanceId: 'fleet-e2e-a' });
    const view = await call(url, 'GET', `/${service}/instances`);
    expect(view.body).toMatchObject({ service_name: service, revision: 1, summary: { total: 1, on_latest: 1, behind: 0, rejected: 0 } });
    expect(view.body.instances[0]).toMatchObject({
      instance_id: 'fleet-e2e-a',
      pid: process.pid,
      revision: 1,
      source: 'hub',
      stale: false,
      last_error: null,
      client_version: expect.any(String),
      host: expect.any(String),
      last_seen: expect.any(Number),
    });
    const list = await call(url, 'GET', '');
    const row = list.body.services.find((s: { service_name: string }) => s.service_name === service);
    expect(row.instances).toEqual({ total: 1, on_latest: 1, behind: 0, rejected: 0 });
    // A change applied by the client is reported without waiting for its next poll.
    expect((await call(url, 'PATCH', `/${service}`, { operational: { batch_size: 11 } })).status).toBe(200);
    await client.refresh(service as never);
    await waitFor(async () => (await call(url, 'GET', `/${service}/instances`)).body.instances[0]?.revision === 2, 3000);
  });

  it('a client that sends nothing (the original client) keeps working and is not listed', async () => {
    const service = uniqueService('fleet-old');
    await call(url, 'POST', `/${service}`, { a: 1 });
    const plain = await request(`${url}/api/v1/config/${service}`, { headers: { 'x-api-key': KEYS.reader.key } });
    expect(plain.statusCode).toBe(200);
    await plain.body.dump();
    const view = await call(url, 'GET', `/${service}/instances`);
    expect(view.body.summary.total).toBe(0);
    expect(view.body.instances).toEqual([]);
  });

  it('a closed instance expires after 3 × its poll interval of silence', async () => {
    // poll_ms is the longer of the poll interval and the recovery backoff bound (here 2 × 500 ms).
    const { service, client } = await runningConsumer({ pollIntervalMs: 1000, recoveryMinDelayMs: 500 });
    await client.close();
    const closedAt = Date.now();
    await waitFor(async () => (await call(url, 'GET', `/${service}/instances`)).body.summary.total === 0, 8000, 100);
    // Not before 3 × 1 s (the hub's lower bound is 3 s).
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(2500);
  });
});

describe('two hub replicas on one PostgreSQL schema agree on the fleet view', () => {
  const pgSchema = uniqueSchema('fleetrep');
  let a: Hub;
  let b: Hub;
  let urlA: string;
  let urlB: string;
  let client: { close(): Promise<void>; get(name: never): Promise<unknown> } | undefined;

  beforeAll(async () => {
    [{ hub: a }, { hub: b }] = await Promise.all([startHub('postgres', { schema: pgSchema }), startHub('postgres', { schema: pgSchema })]);
    [urlA, urlB] = await Promise.all([a.listen({ host: '127.0.0.1', port: 0 }), b.listen({ host: '127.0.0.1', port: 0 })]);
  });
  afterAll(async () => {
    await client?.close();
    await Promise.all([a?.close(), b?.close()]);
    await dropSchema(pgSchema);
  });

  it('an instance reporting to replica A is in replica B’s view, and B refuses a write A’s consumers would reject', async () => {
    const service = uniqueService('fleet-rep');
    await call(urlA, 'POST', `/${service}`, { operational: { batch_size: 10, mode: 'fast' } });
    client = fleetClient(urlA, service);
    await client.get(service as never);
    // A holds the newest record in memory until its write-behind (≤ 1 s): the views agree once it ran.
    let views: [Reply, Reply] | undefined;
    await waitFor(async () => {
      views = await Promise.all([call(urlA, 'GET', `/${service}/instances`), call(urlB, 'GET', `/${service}/instances`)]);
      const [va, vb] = views;
      return (
        va.body.instances[0]?.revision === 1 &&
        va.body.instances[0]?.schema_hash !== null &&
        JSON.stringify(va.body) === JSON.stringify(vb.body)
      );
    }, 5000, 50);
    const [va, vb] = views!;
    expect(vb.body.instances).toEqual(va.body.instances);
    expect(vb.body.summary).toEqual({ total: 1, on_latest: 1, behind: 0, rejected: 0 });
    const refused = await call(urlB, 'POST', `/${service}`, { operational: { batch_size: 0, mode: 'fast' } });
    expect(refused.status).toBe(422);
    expect(refused.body.consumers[0].instances).toBe(1);
  });
});
