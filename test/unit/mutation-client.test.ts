/**
 * src/client.ts at its edges, found by mutation testing (`npm run test:mutation`): the refusals of each
 * method (closed client, bad or undeclared names), the safety-net poll (one per service, stopped by close),
 * hot reload through the real nats-server at 127.0.0.1:4222 (the watcher starts with the first use,
 * resyncs once subscribed, turns notices into refetches or — verified — into the value, reports bad
 * notices), error listeners, and explain() (layers, leaves, redaction above, at and below critical paths).
 * The hub is answered through msw (the undici bridge).
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { HttpResponse, http } from 'msw';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { signNotice } from '../../src/hub/notice-signature.js';
import { ConfigClient, type ConfigClientOptions, type ConfigError, type ServicesMap } from '../../src/index.js';
import { startTcpProxy } from '../helpers/lab/tcp-proxy.js';
import { useMswClients } from '../helpers/msw-clients.js';
import { sleep, waitFor } from '../helpers/settle.js';

const HUB = 'http://hub.test';
const SHARED_NATS = 'nats://127.0.0.1:4222';
const lab = useMswClients('chc-mut-client-');

/** The hub's document for `service`: `state.revision` and `state.config`, changed by the test. */
function hubServing(service: string, state: { revision: number; config: Record<string, unknown> }): void {
  lab.agent.use(
    http.get(`${HUB}/api/v1/config/:service`, ({ params }) =>
      params.service === service
        ? HttpResponse.json({ service_name: service, config: state.config, version: `v${state.revision}`, updated_at: 1_000 + state.revision, revision: state.revision })
        : HttpResponse.json({ detail: 'Config not found' }, { status: 404 }),
    ),
  );
}

const requestsFor = (service: string): number => lab.agent.requests.filter((r) => r.url.endsWith(`/config/${service}`)).length;

function makeClient<S extends ServicesMap>(options: Partial<ConfigClientOptions<S>> & { services?: S }): ConfigClient<S> {
  const client = new ConfigClient<S>({
    hubUrl: HUB,
    snapshotDir: false,
    pollIntervalMs: false,
    transport: { dispatcher: lab.agent, retries: 0, retryBaseDelayMs: 1, retryMaxDelayMs: 2 },
    recovery: { minDelayMs: 10_000, maxDelayMs: 10_000 },
    env: {},
    ...options,
  } as ConfigClientOptions<S>);
  lab.clients.push(client);
  return client;
}

describe('refusals', () => {
  it('a bad name is INVALID_SERVICE_NAME from every method, quoting the name (cut at 120 characters)', async () => {
    const client = makeClient({});
    const refusedWith = { code: 'INVALID_SERVICE_NAME', message: 'service name "Bad Name" must match ^[a-z0-9-]+$ (≤ 100 chars)' };
    await expect(client.get('Bad Name')).rejects.toMatchObject(refusedWith);
    await expect(client.refresh('Bad Name')).rejects.toMatchObject(refusedWith);
    expect(() => client.onChange('Bad Name', () => {})).toThrow(expect.objectContaining(refusedWith));
    expect(() => client.status('Bad Name')).toThrow(expect.objectContaining(refusedWith));
    const long = 'X'.repeat(300);
    const error = await client.get(long).catch((e: ConfigError) => e);
    expect(error.message).toBe(`service name ${JSON.stringify(long).slice(0, 120)} must match ^[a-z0-9-]+$ (≤ 100 chars)`);
    expect(lab.agent.requests).toHaveLength(0);
  });

  it('an undeclared name is SERVICE_NOT_DECLARED, listing the declared ones', async () => {
    const client = makeClient({ services: { 'svc-a': {}, 'svc-b': {} } });
    const refusedWith = {
      code: 'SERVICE_NOT_DECLARED',
      service: 'svc-c',
      message: 'service svc-c is not declared in `services` (declared: svc-a, svc-b)',
    };
    await expect(client.get('svc-c' as 'svc-a')).rejects.toMatchObject(refusedWith);
    await expect(client.refresh('svc-c' as 'svc-a')).rejects.toMatchObject(refusedWith);
    expect(() => client.status('svc-c' as 'svc-a')).toThrow(expect.objectContaining(refusedWith));
    expect(lab.agent.requests).toHaveLength(0);
  });

  it('after close(): get, refresh and onChange fail with CLIENT_CLOSED naming the service; status still answers', async () => {
    hubServing('svc-a', { revision: 1, config: { a: 1 } });
    const client = makeClient({});
    await client.get('svc-a');
    await client.close();
    const closed = { code: 'CLIENT_CLOSED', message: 'the client is closed', service: 'svc-a' };
    await expect(client.get('svc-a')).rejects.toMatchObject(closed);
    await expect(client.get('svc-new')).rejects.toMatchObject({ ...closed, service: 'svc-new' });
    await expect(client.refresh('svc-a')).rejects.toMatchObject(closed);
    expect(() => client.onChange('svc-a', () => {})).toThrow(expect.objectContaining(closed));
    expect(client.status('svc-a')).toMatchObject({ service: 'svc-a', nats: 'off', source: 'hub' });
  });

  it('the constructor refuses nats without declared services', () => {
    expect(() => makeClient({ nats: { servers: SHARED_NATS } })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'nats: hot reload needs the services to be declared in `services`' }),
    );
  });
});

describe('refresh, status and error listeners', () => {
  it('refresh() of a service without a value is its first get; with one, a new fetch', async () => {
    const state = { revision: 1, config: { a: 1 } };
    hubServing('svc-a', state);
    const client = makeClient({});
    await expect(client.refresh('svc-a')).resolves.toEqual({ a: 1 });
    expect(requestsFor('svc-a')).toBe(1);
    state.revision = 2;
    state.config = { a: 2 };
    await expect(client.refresh('svc-a')).resolves.toEqual({ a: 2 });
    expect(requestsFor('svc-a')).toBe(2);
    // Fresh again: a get is served from the cache.
    await expect(client.get('svc-a')).resolves.toEqual({ a: 2 });
    expect(requestsFor('svc-a')).toBe(2);
    expect(client.status('svc-a')).toMatchObject({ service: 'svc-a', revision: 2, version: 'v2', nats: 'off', stale: false });
  });

  it('a value is fresh for cacheTtlMs from its fetch, however often it is read in between', async () => {
    hubServing('svc-a', { revision: 1, config: { a: 1 } });
    const client = makeClient({ cacheTtlMs: 80 });
    await client.get('svc-a');
    await sleep(50);
    await client.get('svc-a');
    expect(requestsFor('svc-a')).toBe(1);
    await sleep(50);
    // 100 ms after the fetch: stale, served at once and refreshed in the background.
    await expect(client.get('svc-a')).resolves.toEqual({ a: 1 });
    await waitFor(() => requestsFor('svc-a') === 2, 'the background refresh');
  });

  it('every error listener gets the reports, a throwing one does not stop the others, and unsubscribing works', async () => {
    lab.agent.use(http.get(`${HUB}/api/v1/config/:service`, () => HttpResponse.json({ detail: 'nope' }, { status: 404 })));
    const client = makeClient({});
    const seen: string[] = [];
    client.onError(() => {
      throw new Error('listener bug');
    });
    const off = client.onError((e) => seen.push(`first ${e.code}`));
    client.onError((e) => seen.push(`second ${e.code} ${e.service}`));
    await client.get('svc-a');
    expect(seen).toEqual(['first CONFIG_NOT_FOUND', 'second CONFIG_NOT_FOUND svc-a']);
    off();
    await client.get('svc-b');
    expect(seen.slice(2)).toEqual(['second CONFIG_NOT_FOUND svc-b']);
  });

  it('reports go to the logger at debug with the service and the code', async () => {
    lab.agent.use(http.get(`${HUB}/api/v1/config/:service`, () => HttpResponse.json({ detail: 'nope' }, { status: 404 })));
    const logged: Array<{ obj: object; msg: string | undefined }> = [];
    const client = makeClient({ logger: { debug: (obj, msg) => logged.push({ obj, msg }) } });
    await client.get('svc-a');
    expect(logged).toContainEqual({ obj: { service: 'svc-a', code: 'CONFIG_NOT_FOUND' }, msg: 'hub answered 404: nope' });
  });
});

describe('the safety-net poll', () => {
  it('polls each service once per interval, however often it is used, and close() stops every poll', async () => {
    hubServing('svc-a', { revision: 1, config: { a: 1 } });
    const client = makeClient({ pollIntervalMs: 20 });
    await client.get('svc-a');
    await client.refresh('svc-a');
    await client.refresh('svc-a');
    const before = requestsFor('svc-a');
    await waitFor(() => requestsFor('svc-a') >= before + 3, 'three polls');
    await client.close();
    const atClose = requestsFor('svc-a');
    await sleep(80);
    expect(requestsFor('svc-a')).toBe(atClose);
  });
});

describe('hot reload through the shared nats-server', () => {
  let pub: NatsConnection;
  beforeAll(async () => {
    pub = await connect({ servers: SHARED_NATS });
  });
  afterAll(async () => {
    await pub?.close();
  });
  const publish = async (subject: string, data: unknown): Promise<void> => {
    pub.publish(subject, new TextEncoder().encode(typeof data === 'string' ? data : JSON.stringify(data)));
    await pub.flush();
  };
  const unique = (): { prefix: string; service: string } => {
    const id = randomUUID().slice(0, 8);
    return { prefix: `mc${id}.config.update`, service: `svc-${id}` };
  };

  it('the watcher starts with the first get and resyncs once subscribed; a notice makes the client refetch; close() closes it', async () => {
    const { prefix, service } = unique();
    const state = { revision: 1, config: { v: 1 } };
    hubServing(service, state);
    const unused = `${service}-unused`;
    const logged: string[] = [];
    const client = makeClient({
      services: { [service]: {}, [unused]: {} },
      nats: { servers: SHARED_NATS, subjectPrefix: prefix },
      logger: { error: (_obj, msg) => logged.push(msg ?? ''), warn: (_obj, msg) => logged.push(msg ?? '') },
    });
    expect(client.status(service).nats).toBe('off');
    const changes: Array<{ next: unknown; source: string }> = [];
    client.onChange(service, (next, _prev, change) => changes.push({ next, source: change.source }));
    await expect(client.get(service)).resolves.toEqual({ v: 1 });
    await waitFor(() => client.status(service).nats === 'connected', 'the watcher connected');
    // Anything committed between the first fetch and the subscription was published to nobody.
    await waitFor(() => requestsFor(service) === 2, 'the resync after subscribing');
    // A notice for a declared service nobody asked for yet: nothing to do, nothing to report.
    await publish(`${prefix}.${unused}`, { service_name: unused, revision: 1 });
    state.revision = 2;
    state.config = { v: 2 };
    // Unsigned (no verifyKeys, applyPayload off): its payload is only a hint; the hub's answer is what counts.
    await publish(`${prefix}.${service}`, { service_name: service, revision: 2, version: 'v2', updated_at: 1_002, config: { v: 'forged' } });
    await waitFor(() => changes.length === 1, 'the change after the notice');
    expect(changes[0]).toEqual({ next: { v: 2 }, source: 'nats' });
    expect(requestsFor(service)).toBe(3);
    expect(requestsFor(unused)).toBe(0);
    expect(logged).toEqual([]);
    await client.close();
    expect(client.status(service).nats).toBe('closed');
  });

  it('a notice that fails to parse is reported through onError; with verifyKeys an unsigned one too, and a signed one is applied without a fetch', async () => {
    const { prefix, service } = unique();
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const state = { revision: 1, config: { v: 1 } };
    hubServing(service, state);
    const client = makeClient({
      services: { [service]: { schema: z.object({ v: z.number() }) } },
      nats: { servers: SHARED_NATS, subjectPrefix: prefix, verifyKeys: { hub: publicKey } },
    });
    const errors: ConfigError[] = [];
    client.onError((e) => errors.push(e));
    const changes: unknown[] = [];
    client.onChange(service, (next) => changes.push(next));
    await client.get(service);
    await waitFor(() => client.status(service).nats === 'connected' && requestsFor(service) === 2, 'subscribed and resynced');
    await publish(`${prefix}.${service}`, 'not json');
    await waitFor(() => errors.length === 1, 'the invalid notice report');
    expect(errors[0]).toMatchObject({ code: 'NOTICE_INVALID', service });
    const signed = signNotice({ service_name: service, config: { v: 3 }, version: 'v3', updated_at: 1_003, revision: 3 }, privateKey, 'hub');
    await publish(`${prefix}.${service}`, signed);
    await waitFor(() => changes.length === 1, 'the signed notice applied');
    expect(changes[0]).toEqual({ v: 3 });
    expect(requestsFor(service)).toBe(2);
    expect(client.status(service)).toMatchObject({ revision: 3, version: 'v3' });
    // An unsigned notice: reported, and only a hint to refetch.
    state.revision = 4;
    state.config = { v: 4 };
    await publish(`${prefix}.${service}`, { service_name: service, revision: 4 });
    await waitFor(() => changes.length === 2, 'the refetch after the unsigned notice');
    expect(changes[1]).toEqual({ v: 4 });
    expect(requestsFor(service)).toBe(3);
    expect(errors.map((e) => [e.code, e.service])).toEqual([
      ['NOTICE_INVALID', service],
      ['NOTICE_UNVERIFIED', service],
    ]);
  });

  it('after a reconnect every service with a value is refetched', async () => {
    const { prefix, service } = unique();
    hubServing(service, { revision: 1, config: { v: 1 } });
    const proxy = await startTcpProxy({ target: { port: 4222 } });
    try {
      const client = makeClient({
        services: { [service]: {} },
        nats: { servers: proxy.url('nats'), subjectPrefix: prefix, connectOptions: { reconnectTimeWait: 10, reconnectJitter: 0 } },
      });
      await client.get(service);
      await waitFor(() => client.status(service).nats === 'connected' && requestsFor(service) === 2, 'subscribed and resynced');
      proxy.dropConnections();
      await waitFor(() => requestsFor(service) === 3, 'the resync after the reconnect');
      expect(client.status(service).nats).toBe('connected');
      await client.close();
    } finally {
      await proxy.close();
    }
  });

  it('a watcher that could not connect yet does not resync: one fetch only', async () => {
    const { prefix, service } = unique();
    hubServing(service, { revision: 1, config: { v: 1 } });
    const proxy = await startTcpProxy({ target: { port: 4222 } });
    try {
      await proxy.break('reset');
      const client = makeClient({
        services: { [service]: {} },
        nats: { servers: proxy.url('nats'), subjectPrefix: prefix, connectOptions: { reconnectTimeWait: 5_000 } },
      });
      await client.get(service);
      await waitFor(() => proxy.totalConnections >= 1, 'the failed connect');
      await sleep(50);
      expect(client.status(service).nats).toBe('connecting');
      expect(requestsFor(service)).toBe(1);
      await client.close();
    } finally {
      await proxy.close();
    }
  });

  it('one watcher for all services, subscribed to the declared ones only', async () => {
    const { prefix, service } = unique();
    const other = `${service}-b`;
    hubServing(service, { revision: 1, config: { v: 1 } });
    const client = makeClient({ services: { [service]: {}, [other]: {} }, nats: { servers: SHARED_NATS, subjectPrefix: prefix } });
    await client.get(service);
    await client.get(other).catch(() => undefined);
    await waitFor(() => client.status(service).nats === 'connected', 'connected');
    expect(client.status(other).nats).toBe('connected');
    const errors: ConfigError[] = [];
    client.onError((e) => errors.push(e));
    await publish(`${prefix}.${other}`, 'not json');
    await waitFor(() => errors.length === 1, 'the report for the second service');
    expect(errors.map((e) => e.service)).toEqual([other]);
  });
});

describe('explain', () => {
  const schema = z.object({
    db: z.object({ host: z.string(), password: z.string().optional(), pool: z.number() }),
    tuning: z.object({ batch: z.number(), ratio: z.number() }),
    feature: z.object({ on: z.boolean().default(true) }).default({ on: true }),
  });
  const services = {
    'svc-x': {
      schema,
      defaults: { db: { pool: 5 }, tuning: { ratio: 0.5 } },
      env: { 'db.host': 'DB_HOST', 'db.password': 'DB_PASSWORD' },
    },
  };
  async function explained(env: Record<string, string> = { DB_HOST: 'db.internal', DB_PASSWORD: 'canary-secret' }) {
    hubServing('svc-x', { revision: 1, config: { tuning: { batch: 10, ratio: 0.25 }, db: { pool: 9 } } });
    const client = makeClient({ services, env });
    const value = await client.get('svc-x');
    return { client, value };
  }

  it('before any value: absent, the path normalized', () => {
    const client = makeClient({ services });
    expect(client.explain('svc-x', '.db..host.')).toEqual({ service: 'svc-x', path: 'db.host', layer: 'absent', value: undefined });
  });

  it('while the first load is still waiting for the hub: absent, for any path, the root included', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    lab.agent.use(
      http.get(`${HUB}/api/v1/config/:service`, async () => {
        await held;
        return HttpResponse.json({ service_name: 'svc-x', config: {}, version: 'v1', updated_at: 1, revision: 1 });
      }),
    );
    const client = makeClient({ services, env: { DB_HOST: 'h', DB_PASSWORD: 'p' } });
    const loading = client.get('svc-x').catch(() => undefined);
    await waitFor(() => requestsFor('svc-x') === 1, 'the first fetch in flight');
    expect(client.explain('svc-x', 'db.host')).toEqual({ service: 'svc-x', path: 'db.host', layer: 'absent', value: undefined });
    expect(client.explain('svc-x', '')).toEqual({ service: 'svc-x', path: '', layer: 'absent', value: undefined });
    release();
    await loading;
  });

  it('a leaf: its layer and value; a critical one redacted, with its variable', async () => {
    const { client } = await explained();
    expect(client.explain('svc-x', 'tuning.batch')).toEqual({ service: 'svc-x', path: 'tuning.batch', layer: 'hub', value: 10, envVariable: undefined });
    expect(client.explain('svc-x', 'db.host')).toEqual({ service: 'svc-x', path: 'db.host', layer: 'env', value: '[redacted]', envVariable: 'DB_HOST' });
    expect(client.explain('svc-x', 'nope.deeper')).toEqual({ service: 'svc-x', path: 'nope.deeper', layer: 'absent', value: undefined, envVariable: undefined });
  });

  it('a critical path whose variable is unset: absent, still naming the variable', async () => {
    const { client } = await explained({ DB_HOST: 'db.internal' });
    expect(client.explain('svc-x', 'db.password')).toEqual({
      service: 'svc-x',
      path: 'db.password',
      layer: 'absent',
      value: undefined,
      envVariable: 'DB_PASSWORD',
    });
    // Nothing is invented for it above either.
    expect(client.explain('svc-x', 'db').value).toEqual({ host: '[redacted]', pool: 9 });
  });

  it('an object: its leaves with their layers, mixed when they differ, critical leaves redacted in a copy', async () => {
    const { client, value } = await explained();
    const db = client.explain('svc-x', 'db');
    expect(db).toEqual({
      service: 'svc-x',
      path: 'db',
      layer: 'mixed',
      value: { host: '[redacted]', password: '[redacted]', pool: 9 },
      envVariable: undefined,
      leaves: { 'db.host': 'env', 'db.password': 'env', 'db.pool': 'hub' },
    });
    const tuning = client.explain('svc-x', 'tuning');
    expect(tuning).toMatchObject({ layer: 'hub', value: { batch: 10, ratio: 0.25 }, leaves: { 'tuning.batch': 'hub', 'tuning.ratio': 'hub' } });
    // The served value itself is untouched.
    expect(value).toMatchObject({ db: { host: 'db.internal', password: 'canary-secret', pool: 9 } });
    await expect(client.get('svc-x')).resolves.toMatchObject({ db: { host: 'db.internal', password: 'canary-secret' } });
  });

  it('the root: every leaf, every critical value redacted, never in the output', async () => {
    const { client } = await explained();
    const root = client.explain('svc-x', '');
    expect(root.path).toBe('');
    expect(root.layer).toBe('mixed');
    expect(root.value).toEqual({ db: { host: '[redacted]', password: '[redacted]', pool: 9 }, tuning: { batch: 10, ratio: 0.25 }, feature: { on: true } });
    expect(root.leaves).toEqual({ 'db.host': 'env', 'db.password': 'env', 'db.pool': 'hub', 'tuning.batch': 'hub', 'tuning.ratio': 'hub' });
    expect(JSON.stringify(root)).not.toContain('canary-secret');
    expect(JSON.stringify(root)).not.toContain('db.internal');
  });

  it('values only the schema supplies: layer schema', async () => {
    const { client } = await explained();
    expect(client.explain('svc-x', 'feature')).toEqual({ service: 'svc-x', path: 'feature', layer: 'schema', value: { on: true }, envVariable: undefined, leaves: {} });
    expect(client.explain('svc-x', 'feature.on')).toMatchObject({ layer: 'schema', value: true, leaves: {} });
  });

  it('below a critical object path the value is redacted too', async () => {
    hubServing('svc-y', { revision: 1, config: { public: 1 } });
    const schema = z.object({ public: z.number(), secret: z.object({ inner: z.object({ k: z.string() }) }) });
    const client = makeClient({ services: { 'svc-y': { schema, env: { secret: 'SECRET' } } }, env: { SECRET: '{"inner":{"k":"canary"}}' } });
    await client.get('svc-y');
    expect(client.explain('svc-y', 'secret.inner.k')).toMatchObject({ value: '[redacted]' });
    expect(client.explain('svc-y', 'secret.inner')).toMatchObject({ value: '[redacted]' });
    expect(client.explain('svc-y', 'secret')).toMatchObject({ layer: 'env', value: '[redacted]', envVariable: 'SECRET' });
    expect(client.explain('svc-y', '').value).toEqual({ public: 1, secret: '[redacted]' });
    expect(client.explain('svc-y', 'public')).toMatchObject({ layer: 'hub', value: 1 });
  });
});
