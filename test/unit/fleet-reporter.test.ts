/**
 * Fleet reporting of the client (docs/fleet.md §1–3): the `x-config-report` header on every hub request,
 * schema uploads on `x-config-schema-unknown`, report requests after a change or a rejection, and
 * `fleetReport: false`. Through the msw ↔ undici bridge; the pure parts (the report, the scheduler) directly.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpResponse, http } from 'msw';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { FleetReporter, fleetCountersOf } from '../../src/fleet/reporter.js';
import { encodeBounded, isNews, reportIdentity, sameReport, serviceReport } from '../../src/fleet/report.js';
import { ReportScheduler } from '../../src/fleet/report-scheduler.js';
import { exportSchema } from '../../src/fleet/schema-export.js';
import { unknownHashes } from '../../src/fleet/schema-uploader.js';
import { type InstanceReport, instanceReportSchema, MAX_REPORT_BYTES, type ServiceReport } from '../../src/fleet/wire.js';
import { ConfigClient, type ConfigClientOptions, type ConfigError } from '../../src/index.js';
import { resolveOptions } from '../../src/options.js';
import type { RuntimeStatus } from '../../src/runtime/types.js';
import type { SendRequest } from '../../src/hub/transport.js';
import { silentLogger } from '../../src/logger.js';
import { CLIENT_VERSION } from '../../src/version.js';
import { useMswClients } from '../helpers/msw-clients.js';

const HUB = 'http://hub.test';
const HUB2 = 'http://hub2.test';
const SERVICE = 'svc';
const schema = z.object({ operational: z.object({ batch_size: z.number().int().positive() }), database: z.object({ password: z.string() }) });
const definition = { schema, defaults: { operational: { batch_size: 1 } }, env: { 'database.password': 'DB_PASSWORD' } };
const HASH = exportSchema(schema, definition.defaults, ['database.password']).hash;
const OTHER_HASH = 'f'.repeat(64);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const lab = useMswClients('chc-fleet-');

afterEach(() => {
  vi.restoreAllMocks();
});

/** The hub: serves `hub.revision` (invalid when `hub.invalid`), 304 for the ETag it holds, the extra headers on each GET. */
function useHub(base = HUB) {
  const hub = { revision: 1, invalid: false, headers: {} as Record<string, string>, put: 201, post: 202 };
  lab.agent.use(
    http.get(`${base}/api/v1/config/:service`, ({ request, params }) => {
      const etag = `"${hub.revision}"`;
      if (request.headers.get('if-none-match') === etag) return new HttpResponse(null, { status: 304, headers: hub.headers });
      const config = { operational: { batch_size: hub.invalid ? -1 : hub.revision } };
      return HttpResponse.json(
        { service_name: params.service, config, version: '1', updated_at: 1_000 + hub.revision, revision: hub.revision },
        { headers: { etag, ...hub.headers } },
      );
    }),
    http.put(`${base}/api/v1/schemas/:hash`, () => (hub.put === 0 ? HttpResponse.error() : HttpResponse.json({}, { status: hub.put }))),
    http.post(`${base}/api/v1/config/:service/instances`, () => (hub.post === 0 ? HttpResponse.error() : HttpResponse.json({ accepted: 1 }, { status: hub.post }))),
  );
  return hub;
}

function makeClient(overrides: Partial<ConfigClientOptions> = {}, services: ConfigClientOptions['services'] = { [SERVICE]: definition }) {
  const client = new ConfigClient({
    hubUrl: HUB,
    apiKey: 'test-key',
    snapshotDir: false,
    pollIntervalMs: false,
    transport: { dispatcher: lab.agent, retryBaseDelayMs: 1, retryMaxDelayMs: 2 },
    recovery: { minDelayMs: 60_000, maxDelayMs: 60_000 },
    env: { DB_PASSWORD: 'pw' },
    ...overrides,
    services,
  });
  lab.clients.push(client);
  return client;
}

/** Math.random as the reporter will see it (it keeps the function it was given): set before the client is made. */
function stubRandom(value: number) {
  return vi.spyOn(Math, 'random').mockReturnValue(value);
}

const requestsOf = (method: string) => lab.agent.requests.filter((r) => r.method === method);
const reportOf = (request: Request): InstanceReport => instanceReportSchema.parse(JSON.parse(request.headers.get('x-config-report')!));
const state = (over: Partial<ServiceReport> = {}): ServiceReport => ({ revision: 1, source: 'hub', stale: false, error: null, schema: HASH, ...over });

/** The time each report request reached the hub. */
function timePosts(): number[] {
  const times: number[] = [];
  lab.agent.use(
    http.post(`${HUB}/api/v1/config/:service/instances`, () => {
      times.push(performance.now());
      return undefined;
    }),
  );
  return times;
}

describe('the x-config-report header', () => {
  it('is on every GET, the conditional one answered 304 too, with the state before the answer', async () => {
    useHub();
    const client = makeClient({ instanceId: 'pod-1' });
    await client.get(SERVICE);
    await client.refresh(SERVICE);
    const gets = requestsOf('GET');
    expect(gets).toHaveLength(2);
    expect(gets[1]!.headers.get('if-none-match')).toBe('"1"');
    const identity = { v: 1, id: 'pod-1', host: hostname(), pid: process.pid, client: CLIENT_VERSION, poll_ms: 60_000 };
    expect(reportOf(gets[0]!)).toEqual({ ...identity, services: { [SERVICE]: { revision: null, source: null, stale: true, error: null, schema: HASH } } });
    expect(reportOf(gets[1]!)).toEqual({ ...identity, services: { [SERVICE]: state() } });
  });

  it('is one line of ASCII of at most 8 192 bytes', async () => {
    useHub();
    await makeClient().get(SERVICE);
    const header = requestsOf('GET')[0]!.headers.get('x-config-report')!;
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    expect(Buffer.byteLength(header)).toBeLessThanOrEqual(MAX_REPORT_BYTES);
    expect(instanceReportSchema.safeParse(JSON.parse(header)).success).toBe(true);
  });

  it('sends the instanceId option as id; without it every client of the process sends one random id', async () => {
    useHub();
    await makeClient().get(SERVICE);
    await makeClient().get(SERVICE);
    await makeClient({ instanceId: 'web-7.eu_1:a-b' }).get(SERVICE);
    const ids = requestsOf('GET').map((r) => reportOf(r).id);
    expect(ids[0]).toMatch(UUID);
    expect(ids).toEqual([ids[0], ids[0], 'web-7.eu_1:a-b']);
  });

  it('refuses an instanceId outside ^[A-Za-z0-9._:-]{1,64}$ and a fleetReport that is not a boolean (INVALID_OPTIONS)', () => {
    const base = { hubUrl: HUB };
    for (const instanceId of ['', 'a b', 'ü', 'x'.repeat(65), 5]) {
      expect(() => resolveOptions({ ...base, instanceId } as unknown as ConfigClientOptions)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'instanceId must match /^[A-Za-z0-9._:-]{1,64}$/' }),
      );
    }
    expect(resolveOptions({ ...base, instanceId: 'x'.repeat(64) }).instanceId).toBe('x'.repeat(64));
    expect(() => resolveOptions({ ...base, fleetReport: 'no' } as unknown as ConfigClientOptions)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'fleetReport must be a boolean' }),
    );
    expect(resolveOptions(base).fleetReport).toBe(true);
    expect(resolveOptions({ ...base, fleetReport: false }).fleetReport).toBe(false);
  });

  it('says poll_ms: the longer of the poll interval (rounded) and the recovery backoff bound; the heartbeat interval without polling', async () => {
    useHub();
    await makeClient({ pollIntervalMs: 45_000.4, recovery: { maxDelayMs: 30_000 } }).get(SERVICE);
    expect(reportOf(requestsOf('GET')[0]!).poll_ms).toBe(45_000);
    // A failing (e.g. rejecting) instance retries on the recovery backoff, not the poll: it must not expire.
    await makeClient({ pollIntervalMs: 10_000, recovery: { maxDelayMs: 30_000 } }).get(SERVICE);
    expect(reportOf(requestsOf('GET')[1]!).poll_ms).toBe(30_000);
    expect(reportIdentity('i', 10_000, 30_000).poll_ms).toBe(30_000);
    expect(reportIdentity('i', false).poll_ms).toBe(60_000);
    expect(reportIdentity('i', false, 600_000).poll_ms).toBe(60_000);
    expect(reportIdentity('i', 2 ** 40).poll_ms).toBe(2 ** 31);
  });

  it('says schema: null for a service without a schema, and for one that cannot be exported (warned once)', async () => {
    useHub();
    const warn = vi.fn();
    const broken = z.object({ operational: z.object({ batch_size: z.number().default(() => { throw new Error('no'); }) }) });
    const client = makeClient({ logger: { warn } }, { plain: {}, broken: { schema: broken } });
    await client.get('plain');
    await client.get('broken');
    await client.refresh('broken');
    expect(requestsOf('GET').map((r) => Object.values(reportOf(r).services)[0]!.schema)).toEqual([null, null, null]);
    expect(warn.mock.calls.filter(([, msg]) => String(msg).startsWith('schema not exported'))).toHaveLength(1);
  });

  it('follows the state: rebuilt when the service went stale, the same text while nothing changed', async () => {
    useHub();
    const client = makeClient({ cacheTtlMs: 40 });
    await client.get(SERVICE);
    await client.refresh(SERVICE);
    await client.refresh(SERVICE);
    await sleep(60);
    await client.refresh(SERVICE);
    const headers = requestsOf('GET').map((r) => r.headers.get('x-config-report'));
    expect(headers[1]).toBe(headers[2]);
    expect(reportOf(requestsOf('GET')[3]!).services[SERVICE]).toEqual(state({ stale: true }));
  });

  it('a hub that cannot read it says x-config-report-error: logged once per hub, as a warning', async () => {
    const hub = useHub();
    const hub2 = useHub(HUB2);
    hub.headers = { 'x-config-report-error': 'not JSON' };
    hub2.headers = { 'x-config-report-error': 'too deep' };
    const warn = vi.fn();
    const client = makeClient({ logger: { warn } });
    await client.get(SERVICE);
    await client.refresh(SERVICE);
    await client.refresh(SERVICE);
    const other = makeClient({ logger: { warn }, hubUrl: HUB2 });
    await other.get(SERVICE);
    const reportErrors = warn.mock.calls.filter(([, msg]) => String(msg).startsWith('the hub could not read the fleet report header'));
    expect(reportErrors.map(([obj]) => obj)).toEqual([
      { hubUrl: 'http://hub.test/', reason: 'not JSON' },
      { hubUrl: 'http://hub2.test/', reason: 'too deep' },
    ]);
  });
});

describe('schema uploads', () => {
  it('uploads a schema the hub does not know, once per hash and hub, with the report header and the API key', async () => {
    const hub = useHub();
    hub.headers = { 'x-config-schema-unknown': `${HASH}, ${OTHER_HASH}` };
    const client = makeClient();
    await client.get(SERVICE);
    for (let i = 0; i < 3; i++) await client.refresh(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.uploads).toBe(1));
    await sleep(20);
    const puts = requestsOf('PUT');
    expect(puts.map((r) => r.url)).toEqual([`${HUB}/api/v1/schemas/${HASH}`]);
    expect(puts[0]!.headers.get('content-type')).toBe('application/json');
    expect(puts[0]!.headers.get('x-api-key')).toBe('test-key');
    // Sent when the answer came, before it was applied: the state the GET reported.
    expect(reportOf(puts[0]!).services).toEqual({ [SERVICE]: { revision: null, source: null, stale: true, error: null, schema: HASH } });
    expect(await puts[0]!.text()).toBe(exportSchema(schema, definition.defaults, ['database.password']).body);
    // Uploads only: the change report the first answer scheduled goes after a random delay below 1 s, which
    // a slow run (a mutation sandbox) can reach before this line.
    expect(fleetCountersOf(client)).toMatchObject({ uploads: 1, uploadFailures: 0 });
  });

  it('clients of one process starting at once upload a schema the hub does not know once, not once per client', async () => {
    const hub = useHub();
    hub.headers = { 'x-config-schema-unknown': HASH };
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    lab.agent.use(
      http.put(`${HUB}/api/v1/schemas/:hash`, async () => {
        await held;
        return HttpResponse.json({}, { status: 201 });
      }),
    );
    const clients = Array.from({ length: 5 }, () => makeClient());
    await Promise.all(clients.map((c) => c.get(SERVICE)));
    await vi.waitFor(() => expect(requestsOf('PUT')).toHaveLength(1));
    await sleep(20);
    expect(requestsOf('PUT')).toHaveLength(1);
    release();
    await vi.waitFor(() => expect(clients.reduce((n, c) => n + (fleetCountersOf(c)?.uploads ?? 0), 0)).toBe(1));
  });

  it('uploads to the hub that asked: another hub is asked separately', async () => {
    const hub = useHub();
    const hub2 = useHub(HUB2);
    hub.headers = { 'x-config-schema-unknown': HASH };
    hub2.headers = { 'x-config-schema-unknown': HASH };
    await makeClient().get(SERVICE);
    const client2 = makeClient({ hubUrl: HUB2 });
    await client2.get(SERVICE);
    await client2.refresh(SERVICE);
    await vi.waitFor(() => expect(requestsOf('PUT').map((r) => r.url).sort()).toEqual([`${HUB}/api/v1/schemas/${HASH}`, `${HUB2}/api/v1/schemas/${HASH}`]));
    await sleep(20);
    expect(requestsOf('PUT')).toHaveLength(2);
  });

  it('an upload whose answer names the schema again (it came after the change was applied) neither uploads twice nor swallows the report', async () => {
    const hub = useHub();
    hub.headers = { 'x-config-schema-unknown': HASH };
    lab.agent.use(
      http.put(`${HUB}/api/v1/schemas/:hash`, async () => {
        await sleep(50);
        return HttpResponse.json({}, { status: 201, headers: { 'x-config-schema-unknown': HASH } });
      }),
    );
    stubRandom(0.2);
    const client = makeClient();
    await client.get(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)).toEqual({ uploads: 1, uploadFailures: 0, reports: 1, reportFailures: 0 }), { timeout: 2_000 });
    expect(requestsOf('PUT')).toHaveLength(1);
    expect(((await requestsOf('POST')[0]!.json()) as InstanceReport).services).toEqual({ [SERVICE]: state() });
  });

  it('uploads nothing for a hash this client does not hold', async () => {
    const hub = useHub();
    hub.headers = { 'x-config-schema-unknown': `${OTHER_HASH}, not-a-hash` };
    const client = makeClient();
    await client.get(SERVICE);
    await sleep(30);
    expect(requestsOf('PUT')).toHaveLength(0);
  });

  it('retries a failed upload at the next such answer, at most every 30 s', async () => {
    const hub = useHub();
    hub.headers = { 'x-config-schema-unknown': HASH };
    hub.put = 500;
    const realNow = Date.now.bind(Date);
    let offset = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    const client = makeClient();
    await client.get(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.uploadFailures).toBe(1));
    hub.put = 0; // a network error next
    await client.refresh(SERVICE);
    offset = 29_000;
    await client.refresh(SERVICE);
    await sleep(20);
    expect(requestsOf('PUT')).toHaveLength(1);
    offset = 30_500;
    await client.refresh(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.uploadFailures).toBe(2));
    hub.put = 201;
    offset = 61_000;
    await client.refresh(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.uploads).toBe(1));
    offset = 75_000;
    await client.refresh(SERVICE);
    await sleep(20);
    expect(requestsOf('PUT')).toHaveLength(3);
    // Upload counters only: the change report the first answer schedules goes after a random delay below 1 s,
    // which a slow run (a Stryker dry run under load) reaches before this line.
    expect(fleetCountersOf(client)).toMatchObject({ uploads: 1, uploadFailures: 2 });
  });

  it('uploads again a schema it uploaded when the hub names it unknown again, at most every 30 s (the hub lost it)', async () => {
    const hub = useHub();
    hub.headers = { 'x-config-schema-unknown': HASH };
    const realNow = Date.now.bind(Date);
    let offset = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    const client = makeClient();
    await client.get(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.uploads).toBe(1));
    offset = 20_000;
    await client.refresh(SERVICE);
    await sleep(20);
    expect(requestsOf('PUT')).toHaveLength(1);
    offset = 31_000;
    await client.refresh(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.uploads).toBe(2));
    hub.headers = {};
    offset = 120_000;
    await client.refresh(SERVICE);
    await sleep(20);
    expect(requestsOf('PUT')).toHaveLength(2);
  });

  it('stops uploading to a hub that answers 404 (or 405): a hub without the route', async () => {
    for (const status of [404, 405]) {
      lab.agent.resetHandlers();
      lab.agent.clearRequests();
      const hub = useHub();
      hub.headers = { 'x-config-schema-unknown': HASH };
      hub.put = status;
      const realNow = Date.now.bind(Date);
      let offset = 0;
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
      const client = makeClient();
      await client.get(SERVICE);
      await vi.waitFor(() => expect(fleetCountersOf(client)?.uploadFailures).toBe(1));
      offset = 60_000;
      await client.refresh(SERVICE);
      await sleep(20);
      expect(requestsOf('PUT')).toHaveLength(1);
      // Ten minutes later the route is asked again (the hub may have been upgraded).
      hub.put = 201;
      offset = 10 * 60_000 + 1;
      await client.refresh(SERVICE);
      await vi.waitFor(() => expect(fleetCountersOf(client)?.uploads).toBe(1));
      expect(requestsOf('PUT')).toHaveLength(2);
      vi.restoreAllMocks();
    }
  });
});

describe('report requests', () => {
  it('reports an applied change after a random delay below 1 s, as body and header, with the API key', async () => {
    useHub();
    stubRandom(0.5);
    const times = timePosts();
    const client = makeClient();
    await client.get(SERVICE);
    const committed = performance.now();
    await vi.waitFor(() => expect(times).toHaveLength(1), { timeout: 2_000 });
    expect(times[0]! - committed).toBeGreaterThanOrEqual(450);
    expect(times[0]! - committed).toBeLessThan(1_000);
    const post = requestsOf('POST')[0]!;
    expect(post.url).toBe(`${HUB}/api/v1/config/${SERVICE}/instances`);
    expect(post.headers.get('content-type')).toBe('application/json');
    expect(post.headers.get('x-api-key')).toBe('test-key');
    const body = instanceReportSchema.parse(await post.json());
    expect(body).toEqual(reportOf(post));
    expect(body.services).toEqual({ [SERVICE]: state() });
    await vi.waitFor(() => expect(fleetCountersOf(client)?.reports).toBe(1));
  });

  it('reports a rejected update at once', async () => {
    const hub = useHub();
    const random = stubRandom(0);
    const times = timePosts();
    const errors: ConfigError[] = [];
    const client = makeClient();
    client.onError((e) => errors.push(e));
    await client.get(SERVICE);
    await vi.waitFor(() => expect(times).toHaveLength(1));
    random.mockReturnValue(0.999);
    await sleep(1_050);
    hub.revision = 2;
    hub.invalid = true;
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const rejected = performance.now();
    await vi.waitFor(() => expect(times).toHaveLength(2), { timeout: 2_000 });
    expect(times[1]! - rejected).toBeLessThan(400);
    const body = instanceReportSchema.parse(await requestsOf('POST')[1]!.json());
    expect(body.services).toEqual({ [SERVICE]: state({ source: 'cache', stale: true, error: 'CONFIG_INVALID' }) });
    expect(errors.map((e) => e.code)).toEqual(['CONFIG_INVALID']);
  });

  it('sends at most one report request per second: what falls due sooner waits and goes in one request', async () => {
    const hub = useHub();
    stubRandom(0);
    const times = timePosts();
    const client = makeClient();
    await client.get(SERVICE);
    await vi.waitFor(() => expect(times).toHaveLength(1));
    for (const revision of [2, 3, 4]) {
      hub.revision = revision;
      await client.refresh(SERVICE);
      await sleep(100);
    }
    await sleep(1_300);
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
    const bodies = await Promise.all(requestsOf('POST').map((r) => r.json() as Promise<InstanceReport>));
    expect(bodies.map((b) => b.services[SERVICE]!.revision)).toEqual([1, 4]);
  });

  it('reports the services that changed together in one request', async () => {
    useHub();
    stubRandom(0.3);
    const client = makeClient({}, { 'svc-a': definition, 'svc-b': definition });
    await Promise.all([client.get('svc-a'), client.get('svc-b')]);
    await sleep(1_200);
    const posts = requestsOf('POST');
    expect(posts).toHaveLength(1);
    expect(posts[0]!.url).toBe(`${HUB}/api/v1/config/svc-a/instances`);
    const body = (await posts[0]!.json()) as InstanceReport;
    expect(body.services).toEqual({ 'svc-a': state(), 'svc-b': state() });
    expect(reportOf(posts[0]!).services).toEqual(body.services);
  });

  it('sends no report when the hub heard the new state already (a later GET carried it), nor for an unchanged answer', async () => {
    useHub();
    stubRandom(0.9);
    const client = makeClient();
    await client.get(SERVICE);
    await client.refresh(SERVICE); // 304: its header told the hub revision 1
    await sleep(1_100);
    lab.agent.use(http.get(`${HUB}/api/v1/config/:service`, () => HttpResponse.json({ service_name: SERVICE, config: {}, version: '1', updated_at: 1_001, revision: 1 })));
    await client.refresh(SERVICE); // a 200 of the same revision
    await sleep(1_100);
    expect(requestsOf('POST')).toHaveLength(0);
    expect(requestsOf('GET')).toHaveLength(3);
  });

  it('close() cancels a pending report', async () => {
    useHub();
    stubRandom(0.5);
    const client = makeClient();
    await client.get(SERVICE);
    await client.close();
    await sleep(700);
    expect(requestsOf('POST')).toHaveLength(0);
  });

  it('stops sending reports to a hub that answers 404 (or 405), while the GETs keep their header', async () => {
    for (const status of [404, 405]) {
      lab.agent.resetHandlers();
      lab.agent.clearRequests();
      const hub = useHub();
      hub.post = status;
      stubRandom(0);
      const client = makeClient();
      await client.get(SERVICE);
      await vi.waitFor(() => expect(fleetCountersOf(client)?.reportFailures).toBe(1));
      await sleep(1_000);
      hub.revision = 2;
      await client.refresh(SERVICE);
      await sleep(100);
      expect(requestsOf('POST')).toHaveLength(1);
      expect(reportOf(requestsOf('GET')[1]!).services[SERVICE]!.revision).toBe(1);
      vi.restoreAllMocks();
    }
  });

  it('keeps fleet failures out of onError: they are counted and logged at debug', async () => {
    const hub = useHub();
    hub.headers = { 'x-config-schema-unknown': HASH };
    hub.put = 0;
    hub.post = 500;
    stubRandom(0);
    const debug = vi.fn();
    const errors: ConfigError[] = [];
    const client = makeClient({ logger: { debug } });
    client.onError((e) => errors.push(e));
    await client.get(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)).toEqual({ uploads: 0, uploadFailures: 1, reports: 0, reportFailures: 1 }));
    expect(errors).toEqual([]);
    expect(debug).toHaveBeenCalledWith(expect.objectContaining({ hubUrl: 'http://hub.test/', service: SERVICE }), 'fleet upload failed');
    expect(debug).toHaveBeenCalledWith({ hubUrl: 'http://hub.test/', service: SERVICE, status: 500 }, 'fleet report refused');
  });
});

describe('what the hub has heard, and where report requests go', () => {
  it('a report request the hub did not accept is sent again with the next one (its state was not heard)', async () => {
    const hub = useHub();
    hub.post = 500;
    stubRandom(0);
    const client = makeClient({}, { 'svc-a': definition, 'svc-b': definition });
    await client.get('svc-a');
    await vi.waitFor(() => expect(fleetCountersOf(client)?.reportFailures).toBe(1));
    hub.post = 202;
    await client.get('svc-b');
    await vi.waitFor(() => expect(fleetCountersOf(client)?.reports).toBe(1), { timeout: 2_500 });
    const posts = requestsOf('POST');
    expect(posts).toHaveLength(2);
    // The second went at least a second after the first (one per second).
    const bodies = (await Promise.all(posts.map((r) => r.json()))) as InstanceReport[];
    expect(Object.keys(bodies[0]!.services)).toEqual(['svc-a']);
    expect(bodies[1]!.services).toEqual({ 'svc-b': state(), 'svc-a': state() });
  });

  it('a report request goes to the other hubs, in order, when the one that answered last does not answer', async () => {
    const hub = useHub();
    useHub(HUB2);
    hub.post = 0;
    stubRandom(0);
    const client = makeClient({ hubUrl: [HUB, HUB2] });
    await client.get(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.reports).toBe(1));
    expect(requestsOf('POST').map((r) => r.url)).toEqual([`${HUB}/api/v1/config/svc/instances`, `${HUB2}/api/v1/config/svc/instances`]);
    expect(fleetCountersOf(client)).toMatchObject({ reports: 1, reportFailures: 1 });
  });

  it('a refusal (400, 403) is not tried at another hub: it would say the same', async () => {
    const hub = useHub();
    useHub(HUB2);
    hub.post = 403;
    stubRandom(0);
    const client = makeClient({ hubUrl: [HUB, HUB2] });
    await client.get(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.reportFailures).toBe(1));
    await sleep(50);
    expect(requestsOf('POST').map((r) => r.url)).toEqual([`${HUB}/api/v1/config/svc/instances`]);
  });

  it('asks a hub that answered 404 to a report request again 10 minutes later', async () => {
    const hub = useHub();
    hub.post = 404;
    stubRandom(0);
    const realNow = Date.now.bind(Date);
    let offset = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    const client = makeClient();
    await client.get(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.reportFailures).toBe(1));
    offset = 5 * 60_000;
    hub.revision = 2;
    await client.refresh(SERVICE);
    await sleep(100);
    expect(requestsOf('POST')).toHaveLength(1);
    offset = 10 * 60_000 + 1;
    hub.post = 202;
    hub.revision = 3;
    await client.refresh(SERVICE);
    await vi.waitFor(() => expect(fleetCountersOf(client)?.reports).toBe(1));
    expect(requestsOf('POST')).toHaveLength(2);
  });

  it('never sends a report request to the history or rollback routes: another listed service names the path, or none goes', async () => {
    useHub();
    stubRandom(0);
    const client = makeClient({}, { rollback: definition, history: definition, svc: definition });
    await client.get('rollback');
    await client.get('history');
    await sleep(1_200);
    // POST /api/v1/config/rollback/instances would be the rollback of a service named `instances`.
    expect(requestsOf('POST')).toHaveLength(0);
    await client.get('svc');
    await vi.waitFor(() => expect(requestsOf('POST')).toHaveLength(1), { timeout: 2_000 });
    const post = requestsOf('POST')[0]!;
    expect(post.url).toBe(`${HUB}/api/v1/config/svc/instances`);
    expect(Object.keys(((await post.json()) as InstanceReport).services).sort()).toEqual(['history', 'rollback', 'svc']);
  });

  it('a GET answered with an error does not count as heard: the change is reported', () => {
    const sent: SendRequest[] = [];
    const reporter = new FleetReporter({
      instanceId: 'i',
      pollIntervalMs: 60_000,
      logger: silentLogger,
      random: () => 0,
      send: async (_hubUrl, request) => {
        sent.push(request);
        return { status: 202, headers: {} };
      },
      preferredHubUrl: () => 'http://hub.test/',
    });
    const status = { source: 'hub', stale: false, revision: 4, droppedCriticalPaths: [] } as unknown as RuntimeStatus;
    reporter.track('a', definition, () => status);
    reporter.track('b', definition, () => status);
    reporter.headerFor('a');
    reporter.onAnswer('http://hub.test/', 'a', 200, {});
    reporter.headerFor('b');
    reporter.onAnswer('http://hub.test/', 'b', 503, {});
    vi.useFakeTimers();
    try {
      reporter.transitioned('a', 'applied');
      reporter.transitioned('b', 'applied');
      vi.advanceTimersByTime(1_000);
    } finally {
      vi.useRealTimers();
      reporter.close();
    }
    expect(sent.map((r) => r.path)).toEqual(['api/v1/config/b/instances']);
  });
});

describe('telemetry never blocks delivery', () => {
  it('a report header builder that throws (and an answer hook that throws) still lets get() succeed, without the header', async () => {
    useHub();
    vi.spyOn(FleetReporter.prototype, 'headerFor').mockImplementation(() => {
      throw new Error('a bug of the reporter');
    });
    vi.spyOn(FleetReporter.prototype, 'onAnswer').mockImplementation(() => {
      throw new Error('another bug of the reporter');
    });
    const client = makeClient();
    await expect(client.get(SERVICE)).resolves.toMatchObject({ operational: { batch_size: 1 } });
    await expect(client.refresh(SERVICE)).resolves.toMatchObject({ operational: { batch_size: 1 } });
    expect(requestsOf('GET').map((r) => r.headers.get('x-config-report'))).toEqual([null, null]);
  });

  it('the reporter itself turns a failing status read into no header (logged at debug)', () => {
    const debug = vi.fn();
    const reporter = new FleetReporter({
      instanceId: 'i',
      pollIntervalMs: 60_000,
      logger: { ...silentLogger, debug },
      random: () => 0,
      send: async () => ({ status: 202, headers: {} }),
      preferredHubUrl: () => 'http://hub.test/',
    });
    reporter.track('a', definition, () => {
      throw new Error('status broke');
    });
    expect(reporter.headerFor('a')).toBeUndefined();
    expect(() => reporter.onAnswer('http://hub.test/', 'a', 200, { 'x-config-schema-unknown': HASH })).not.toThrow();
    expect(debug).toHaveBeenCalledWith({ service: 'a', err: 'Error: status broke' }, 'fleet report header not built');
    reporter.close();
  });
});

describe('the heartbeat of a client that does not poll (NATS only)', () => {
  const status = { source: 'notice', stale: false, revision: 7, droppedCriticalPaths: [] } as unknown as RuntimeStatus;

  function reporter(pollIntervalMs: number | false) {
    const sent: SendRequest[] = [];
    const r = new FleetReporter({
      instanceId: 'i',
      pollIntervalMs,
      recoveryMaxDelayMs: 30_000,
      logger: silentLogger,
      random: () => 0,
      send: async (_hubUrl, request) => {
        sent.push(request);
        return { status: 202, headers: {} };
      },
      preferredHubUrl: () => 'http://hub.test/',
      hubUrls: ['http://hub.test/'],
    });
    return { r, sent };
  }

  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a report of every service each 60 s, news or not, saying poll_ms 60 000; only once it has runtimes; none after close()', async () => {
    vi.useFakeTimers({ now: 0 });
    const { r, sent } = reporter(false);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sent).toEqual([]);
    r.track('a', definition, () => status);
    r.track('b', definition, () => status);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(sent).toEqual([]);
    // The tick at 60 s makes the report due at once: its (0 ms) timer runs on the next advance.
    await vi.advanceTimersByTimeAsync(2);
    expect(sent).toHaveLength(1);
    const body = JSON.parse(sent[0]!.body) as InstanceReport;
    expect(body.poll_ms).toBe(60_000);
    expect(Object.keys(body.services)).toEqual(['a', 'b']);
    expect(body.services.a).toEqual({ revision: 7, source: 'notice', stale: false, error: null, schema: HASH });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sent).toHaveLength(2);
    expect(Object.keys((JSON.parse(sent[1]!.body) as InstanceReport).services)).toEqual(['a', 'b']);
    r.close();
    await vi.advanceTimersByTimeAsync(300_000);
    expect(sent).toHaveLength(2);
  });

  it('sends none while polling (each poll carries the header)', async () => {
    vi.useFakeTimers({ now: 0 });
    const { r, sent } = reporter(60_000);
    r.track('a', definition, () => status);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sent).toEqual([]);
    r.close();
  });

  it('its timer does not hold the process (unref)', () => {
    const intervals: NodeJS.Timeout[] = [];
    const real = globalThis.setInterval;
    vi.spyOn(globalThis, 'setInterval').mockImplementation(((fn: () => void, ms: number) => {
      const timer = real(fn, ms);
      intervals.push(timer);
      return timer;
    }) as typeof setInterval);
    const { r } = reporter(false);
    r.track('a', definition, () => status);
    r.track('b', definition, () => status);
    expect(intervals).toHaveLength(1);
    expect(intervals[0]!.hasRef()).toBe(false);
    r.close();
  });
});

describe('fleetReport: false', () => {
  it('sends no report header, uploads no schema and sends no report request', async () => {
    const hub = useHub();
    hub.headers = { 'x-config-schema-unknown': HASH };
    stubRandom(0);
    const client = makeClient({ fleetReport: false });
    await client.get(SERVICE);
    hub.revision = 2;
    await client.refresh(SERVICE);
    await sleep(300);
    expect(lab.agent.requests.map((r) => r.method)).toEqual(['GET', 'GET']);
    expect(lab.agent.requests.map((r) => r.headers.get('x-config-report'))).toEqual([null, null]);
    expect(fleetCountersOf(client)).toBeUndefined();
  });
});

describe('the report (pure)', () => {
  const status = (over: Partial<RuntimeStatus> = {}): RuntimeStatus => ({
    source: 'hub',
    stale: false,
    revision: 3,
    version: '1',
    updatedAt: 1,
    lastFetchAt: 1,
    lastErrorCode: undefined,
    lastErrorMessage: undefined,
    droppedCriticalPaths: [],
    ...over,
  });

  it('maps a status to its entry: no value is null, a code outside ^[A-Z_]{1,40}$ or an odd revision is none', () => {
    expect(serviceReport(status(), HASH)).toEqual({ revision: 3, source: 'hub', stale: false, error: null, schema: HASH });
    expect(serviceReport(status({ source: undefined, revision: undefined, stale: true }), undefined)).toEqual({ revision: null, source: null, stale: true, error: null, schema: null });
    expect(serviceReport(status({ lastErrorCode: 'CONFIG_INVALID' }), HASH).error).toBe('CONFIG_INVALID');
    expect(serviceReport(status({ lastErrorCode: 'bad code' }), HASH).error).toBeNull();
    expect(serviceReport(status({ lastErrorCode: 'A'.repeat(41) }), HASH).error).toBeNull();
    expect(serviceReport(status({ revision: -1 }), HASH).revision).toBeNull();
    expect(serviceReport(status({ revision: 1.5 }), HASH).revision).toBeNull();
    expect(serviceReport(status({ revision: 0 }), HASH).revision).toBe(0);
  });

  it('sameReport compares every field; isNews ignores staleness alone', () => {
    const a = state();
    expect(sameReport(a, { ...a })).toBe(true);
    for (const change of [{ revision: 2 }, { source: 'cache' as const }, { stale: true }, { error: 'X' }, { schema: null }]) {
      expect(sameReport(a, { ...a, ...change })).toBe(false);
      expect(isNews({ ...a, ...change }, a)).toBe(!('stale' in change));
    }
    expect(isNews(a, undefined)).toBe(true);
  });

  it('escapes non-ASCII characters and keeps the header within 8 192 bytes, the first service always', () => {
    const identity = { ...reportIdentity('id', 60_000), host: 'hôte-日本' };
    const one = encodeBounded(identity, [['svc', state()]])!;
    expect(one).toContain('"host":"h\\u00f4te-\\u65e5\\u672c"');
    expect(JSON.parse(one).host).toBe('hôte-日本');
    const many = Array.from({ length: 100 }, (_, i) => [`${'s'.repeat(90)}-${String(i).padStart(3, '0')}`, state()] as const);
    const header = encodeBounded(identity, many)!;
    expect(Buffer.byteLength(header)).toBeLessThanOrEqual(MAX_REPORT_BYTES);
    const kept = Object.keys(JSON.parse(header).services);
    expect(kept[0]).toBe(many[0]![0]);
    expect(kept.length).toBe(25);
    expect(encodeBounded({ ...identity, host: 'x'.repeat(9_000) }, [['svc', state()]])).toBeUndefined();
  });

  it('identity: the host name (at most 255 chars), the pid and the package version', () => {
    const identity = reportIdentity('abc', 60_000);
    expect(identity).toEqual({ v: 1, id: 'abc', host: hostname().slice(0, 255), pid: process.pid, client: CLIENT_VERSION, poll_ms: 60_000 });
  });

  it('reads the hashes of x-config-schema-unknown: comma-separated, repeated, anything else ignored', () => {
    expect(unknownHashes(undefined)).toEqual([]);
    expect(unknownHashes(` ${HASH} ,${OTHER_HASH}`)).toEqual([HASH, OTHER_HASH]);
    expect(unknownHashes([HASH, `x, ${OTHER_HASH.toUpperCase()}, ${OTHER_HASH}`])).toEqual([HASH, OTHER_HASH]);
  });
});

describe('the report scheduler (pure, fake timers)', () => {
  function scheduler() {
    const flushes: Array<{ at: number; services: string[] }> = [];
    let release: (() => void) | undefined;
    let hold = false;
    const s = new ReportScheduler({
      now: () => Date.now(),
      flush: (services) => {
        flushes.push({ at: Date.now(), services });
        return hold ? new Promise<void>((r) => (release = r)) : Promise.resolve();
      },
    });
    return { s, flushes, holdNext: () => (hold = true), release: () => release?.() };
  }

  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a service due at once at once, and one due later when it is due', async () => {
    vi.useFakeTimers({ now: 10_000 });
    const { s, flushes } = scheduler();
    s.due('a', 0);
    await vi.advanceTimersByTimeAsync(0);
    expect(flushes).toEqual([{ at: 10_000, services: ['a'] }]);
    await vi.advanceTimersByTimeAsync(2_000);
    s.due('b', 300);
    await vi.advanceTimersByTimeAsync(299);
    expect(flushes).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(flushes[1]).toEqual({ at: 12_300, services: ['b'] });
  });

  it('holds what falls due within a second of the last request until the second ends, and coalesces it', async () => {
    vi.useFakeTimers({ now: 0 });
    const { s, flushes } = scheduler();
    s.due('a', 0);
    await vi.advanceTimersByTimeAsync(0);
    s.due('b', 100);
    s.due('a', 0);
    await vi.advanceTimersByTimeAsync(500);
    s.due('c', 900);
    await vi.advanceTimersByTimeAsync(499);
    expect(flushes).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(flushes).toEqual([
      { at: 0, services: ['a'] },
      { at: 1_000, services: ['b', 'a', 'c'] },
    ]);
  });

  it('an earlier due time moves a later timer forward, a later one does not move it back', async () => {
    vi.useFakeTimers({ now: 0 });
    const { s, flushes } = scheduler();
    s.due('a', 800);
    s.due('b', 200);
    s.due('c', 900);
    await vi.advanceTimersByTimeAsync(200);
    expect(flushes).toEqual([{ at: 200, services: ['a', 'b', 'c'] }]);
  });

  it('sends at most 100 services per request; the rest go a second later', async () => {
    vi.useFakeTimers({ now: 0 });
    const { s, flushes } = scheduler();
    for (let i = 0; i < 150; i++) s.due(`s-${i}`, 0);
    await vi.advanceTimersByTimeAsync(999);
    expect(flushes.map((f) => f.services.length)).toEqual([100]);
    await vi.advanceTimersByTimeAsync(1);
    expect(flushes.map((f) => [f.at, f.services.length])).toEqual([
      [0, 100],
      [1_000, 50],
    ]);
    expect(flushes[1]!.services[0]).toBe('s-100');
  });

  it('starts no request while one is in flight; what came meanwhile goes when it ended and the second is over', async () => {
    vi.useFakeTimers({ now: 0 });
    const { s, flushes, holdNext, release } = scheduler();
    holdNext();
    s.due('a', 0);
    await vi.advanceTimersByTimeAsync(0);
    s.due('b', 0);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(flushes).toHaveLength(1);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(flushes.map((f) => [f.at, f.services])).toEqual([
      [0, ['a']],
      [3_000, ['b']],
    ]);
  });

  it('close() cancels what is pending and refuses what comes after', async () => {
    vi.useFakeTimers({ now: 0 });
    const { s, flushes } = scheduler();
    s.due('a', 500);
    s.close();
    s.due('b', 0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(flushes).toEqual([]);
  });
});
