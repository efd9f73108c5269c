import { mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { delay, HttpResponse, http } from 'msw';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ConfigClient, type ConfigClientOptions, isConfigError } from '../../src/index.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';

const HUB = 'http://hub.test';
const SERVICE = 'polygon-historical-downloader';

const schema = z.object({
  operational: z.object({ batch_size: z.number().int().positive(), gap_check_interval_hours: z.number() }),
  database: z.object({ host: z.string(), password: z.string() }),
});

function doc(config: unknown, extra: Record<string, unknown> = {}) {
  return { service_name: SERVICE, config, version: '1.0.0', updated_at: 1760864166034, ...extra };
}

let agent: MswAgent;
let clients: Array<{ close(): Promise<void> }> = [];
let snapshotDir: string;

beforeEach(async () => {
  agent = createMswAgent([]);
  clients = [];
  snapshotDir = await mkdtemp(join(tmpdir(), 'chc-snap-'));
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await agent.close();
});

const services = {
  'polygon-historical-downloader': {
    schema,
    defaults: { operational: { batch_size: 100, gap_check_interval_hours: 1 } },
    env: { 'database.host': 'DB_HOST', 'database.password': 'DB_PASSWORD' },
  },
};

function makeClient(overrides: Partial<Omit<ConfigClientOptions, 'services'>> = {}) {
  const client = new ConfigClient({
    hubUrl: HUB,
    apiKey: 'test-key',
    snapshotDir,
    pollIntervalMs: false,
    transport: { dispatcher: agent, retryBaseDelayMs: 1, retryMaxDelayMs: 5 },
    recovery: { minDelayMs: 20, maxDelayMs: 50 },
    env: { DB_HOST: 'db.internal', DB_PASSWORD: 'canary-secret-123' },
    ...overrides,
    services,
  });
  clients.push(client as unknown as ConfigClient);
  return client;
}

// Config fetches only: the fleet report (POST …/instances, up to 1 s after an applied change) is not one.
const configGets = (): Request[] => agent.requests.filter((r) => r.method === 'GET');
const hubRoute = (resolver: Parameters<typeof http.get>[1]) => http.get(`${HUB}/api/v1/config/:service`, resolver);

describe('ConfigClient.get', () => {
  it('merges env > hub > defaults, validates, and sends the API key', async () => {
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: 150 } }))));
    const client = makeClient();
    const cfg = await client.get(SERVICE);
    expect(cfg).toEqual({
      operational: { batch_size: 150, gap_check_interval_hours: 1 },
      database: { host: 'db.internal', password: 'canary-secret-123' },
    });
    expect(configGets()[0]!.headers.get('x-api-key')).toBe('test-key');
    expect(client.status(SERVICE)).toMatchObject({ source: 'hub', stale: false, version: '1.0.0', lastErrorCode: undefined });
  });

  it('accepts config as a JSON-encoded string (older hubs)', async () => {
    agent.use(hubRoute(() => HttpResponse.json(doc(JSON.stringify({ operational: { batch_size: 7 } })))));
    const cfg = await makeClient().get(SERVICE);
    expect(cfg.operational.batch_size).toBe(7);
  });

  it('drops hub values at critical paths, reports them, never writes them to disk', async () => {
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: 5 }, database: { host: 'evil', password: 'hub-pw' } }))));
    const client = makeClient();
    const cfg = await client.get(SERVICE);
    expect(cfg.database).toEqual({ host: 'db.internal', password: 'canary-secret-123' });
    expect(client.status(SERVICE).droppedCriticalPaths).toEqual(['database.host', 'database.password']);
    await vi.waitFor(async () => expect(await readdir(snapshotDir)).toContain(`${SERVICE}.json`));
    const file = await readFile(join(snapshotDir, `${SERVICE}.json`), 'utf8');
    expect(file).not.toContain('evil');
    expect(file).not.toContain('hub-pw');
    expect(file).not.toContain('canary-secret-123');
    expect(file).not.toContain('db.internal');
    expect((await stat(join(snapshotDir, `${SERVICE}.json`))).mode & 0o777).toBe(0o600);
  });

  it('1 000 concurrent cold gets make exactly one HTTP request', async () => {
    agent.use(
      hubRoute(async () => {
        await delay(20);
        return HttpResponse.json(doc({ operational: { batch_size: 1 } }));
      }),
    );
    const client = makeClient();
    const results = await Promise.all(Array.from({ length: 1000 }, () => client.get(SERVICE)));
    expect(configGets()).toHaveLength(1);
    expect(new Set(results).size).toBe(1);
  });

  it('a name without a schema returns the merged JSON object', async () => {
    agent.use(hubRoute(({ params }) => HttpResponse.json({ ...doc({ anything: [1, 2] }), service_name: params.service })));
    const client = new ConfigClient({ hubUrl: HUB, snapshotDir: false, pollIntervalMs: false, transport: { dispatcher: agent }, services: { 'other-service': {} } });
    clients.push(client);
    const cfg = await client.get('other-service');
    expect(cfg).toEqual({ anything: [1, 2] });
  });

  it('with services declared, an undeclared name is refused (SERVICE_NOT_DECLARED) without a request or a runtime', async () => {
    const client = makeClient();
    // @ts-expect-error -- only declared names type-check
    await expect(client.get('other-service')).rejects.toMatchObject({ code: 'SERVICE_NOT_DECLARED' });
    // @ts-expect-error -- only declared names type-check
    expect(() => client.status('other-service')).toThrow(expect.objectContaining({ code: 'SERVICE_NOT_DECLARED' }));
    expect(configGets()).toHaveLength(0);
  });

  it('rejects invalid service names without a request', async () => {
    const client = makeClient();
    const open = new ConfigClient({ hubUrl: HUB, snapshotDir: false, pollIntervalMs: false, transport: { dispatcher: agent } });
    clients.push(open);
    await expect(open.get('Bad Name')).rejects.toMatchObject({ code: 'INVALID_SERVICE_NAME' });
    await expect(open.get('a.b')).rejects.toMatchObject({ code: 'INVALID_SERVICE_NAME' });
    // @ts-expect-error -- only declared names type-check
    await expect(client.get('Bad Name')).rejects.toMatchObject({ code: 'INVALID_SERVICE_NAME' });
    expect(configGets()).toHaveLength(0);
  });
});

describe('cache and revalidation', () => {
  it('serves a stale entry at once and refreshes once in the background (SWR)', async () => {
    let batch = 1;
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: batch } }, { updated_at: 1000 + batch }))));
    const client = makeClient({ cacheTtlMs: 100 });
    expect((await client.get(SERVICE)).operational.batch_size).toBe(1);
    batch = 2;
    await delay(150);
    expect(client.status(SERVICE).stale).toBe(true);
    const stale = await Promise.all([client.get(SERVICE), client.get(SERVICE), client.get(SERVICE)]);
    expect(stale.map((c) => c.operational.batch_size)).toEqual([1, 1, 1]);
    await vi.waitFor(async () => expect((await client.get(SERVICE)).operational.batch_size).toBe(2), { interval: 2 });
    expect(configGets()).toHaveLength(2);
  });

  it('uses ETag / If-None-Match and reuses the cached document on 304', async () => {
    agent.use(
      hubRoute(({ request }) => {
        if (request.headers.get('if-none-match') === '"7"') return new HttpResponse(null, { status: 304 });
        return HttpResponse.json(doc({ operational: { batch_size: 3 } }, { revision: 7 }), { headers: { etag: '"7"' } });
      }),
    );
    const client = makeClient();
    const first = await client.get(SERVICE);
    const second = await client.refresh(SERVICE);
    expect(second).toBe(first);
    expect(configGets()[1]!.headers.get('if-none-match')).toBe('"7"');
    expect(client.status(SERVICE)).toMatchObject({ source: 'hub', revision: 7 });
  });

  it('detects a change without ETag and with an unchanged version (updated_at, then content)', async () => {
    let n = 1;
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: n } }, { updated_at: 5000 + n }))));
    const client = makeClient();
    const seen: string[][] = [];
    client.onChange(SERVICE, (_next, _prev, change) => seen.push(change.changedPaths));
    await client.get(SERVICE);
    n = 2;
    expect((await client.refresh(SERVICE)).operational.batch_size).toBe(2);
    expect(seen).toEqual([['operational.batch_size']]);
  });

  it('the hub is authoritative: the answer to a request made after the last commit wins, even with a lower revision, and the regression is reported once', async () => {
    let rev = 5;
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: rev } }, { revision: rev }))));
    const client = makeClient();
    const errors: string[] = [];
    client.onError((e) => errors.push(e.code));
    await client.get(SERVICE);
    rev = 4; // the hub was restored from a backup
    const after = await client.refresh(SERVICE);
    expect(after.operational.batch_size).toBe(4);
    expect(client.status(SERVICE)).toMatchObject({ source: 'hub', stale: false, revision: 4 });
    await client.refresh(SERVICE);
    expect(errors.filter((c) => c === 'HUB_REVISION_REGRESSED')).toHaveLength(1);
    rev = 5; // and the client follows the restored hub forward again
    expect((await client.refresh(SERVICE)).operational.batch_size).toBe(5);
  });
});

describe('transport', () => {
  it('retries 503 honouring Retry-After, then stops after success', async () => {
    const statuses = [503, 503];
    agent.use(
      hubRoute(() => {
        const status = statuses.shift();
        if (status) return HttpResponse.json({ detail: 'db down' }, { status, headers: { 'retry-after': '0' } });
        return HttpResponse.json(doc({ operational: { batch_size: 9 } }));
      }),
    );
    const cfg = await makeClient().get(SERVICE);
    expect(cfg.operational.batch_size).toBe(9);
    expect(configGets()).toHaveLength(3);
  });

  it('does not retry other 4xx; 401/403 are UNAUTHORIZED and the client falls back', async () => {
    agent.use(hubRoute(() => HttpResponse.json({ detail: 'bad key' }, { status: 401 })));
    const client = makeClient({ recovery: { unauthorizedDelayMs: 60_000 } });
    const cfg = await client.get(SERVICE);
    expect(cfg.operational.batch_size).toBe(100);
    expect(configGets()).toHaveLength(1);
    expect(client.status(SERVICE)).toMatchObject({ source: 'defaults', lastErrorCode: 'UNAUTHORIZED', stale: true });
  });

  it('fails over to the next hub in order on network errors', async () => {
    agent.use(
      http.get('http://hub-a.test/api/v1/config/:service', () => HttpResponse.error()),
      http.get('http://hub-b.test/api/v1/config/:service', () => HttpResponse.json(doc({ operational: { batch_size: 42 } }))),
    );
    const client = makeClient({ hubUrl: ['http://hub-a.test', 'http://hub-b.test'] });
    expect((await client.get(SERVICE)).operational.batch_size).toBe(42);
    expect(configGets().map((r) => new URL(r.url).host)).toEqual(['hub-a.test', 'hub-b.test']);
    // The hub that answered is tried first next time.
    await client.refresh(SERVICE);
    expect(new URL(configGets()[2]!.url).host).toBe('hub-b.test');
  });
});

describe('fallback chain', () => {
  it('404 → CONFIG_NOT_FOUND, served from defaults + env with source defaults', async () => {
    agent.use(hubRoute(() => HttpResponse.json({ detail: 'Config not found' }, { status: 404 })));
    const client = makeClient();
    const cfg = await client.get(SERVICE);
    expect(cfg.operational.batch_size).toBe(100);
    expect(client.status(SERVICE)).toMatchObject({ source: 'defaults', lastErrorCode: 'CONFIG_NOT_FOUND' });
  });

  it('hub down → snapshot (last-known-good) → converges when the hub returns', async () => {
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: 77 } }, { revision: 3 }))));
    const first = makeClient();
    await first.get(SERVICE);
    await vi.waitFor(async () => expect(await readdir(snapshotDir)).toContain(`${SERVICE}.json`));
    await first.close();

    let up = false;
    agent.resetHandlers(hubRoute(() => (up ? HttpResponse.json(doc({ operational: { batch_size: 78 } }, { revision: 4 })) : HttpResponse.error())));
    const second = makeClient();
    const changes: unknown[] = [];
    second.onChange(SERVICE, (_n, _p, change) => changes.push(change.source));
    const cfg = await second.get(SERVICE);
    expect(cfg.operational.batch_size).toBe(77);
    expect(second.status(SERVICE)).toMatchObject({ source: 'snapshot', stale: true, revision: 3 });
    up = true;
    await vi.waitFor(async () => expect((await second.get(SERVICE)).operational.batch_size).toBe(78), { timeout: 3000 });
    expect(second.status(SERVICE)).toMatchObject({ source: 'hub', revision: 4 });
    expect(changes).toEqual(['recovery']);
  });

  it('with a snapshot present, a hub that fails its first round is not waited for: the snapshot is served at once', async () => {
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: 55 } }, { revision: 9 }))));
    const first = makeClient();
    await first.get(SERVICE);
    await vi.waitFor(async () => expect(await readdir(snapshotDir)).toContain(`${SERVICE}.json`));
    await first.close();

    let up = false;
    agent.resetHandlers(hubRoute(() => (up ? HttpResponse.json(doc({ operational: { batch_size: 56 } }, { revision: 10 })) : HttpResponse.error())));
    // Long backoff between rounds: without the early snapshot the first get would wait ≥ 1 s.
    const second = makeClient({ transport: { dispatcher: agent, retries: 2, retryBaseDelayMs: 2_000, retryMaxDelayMs: 2_000 } });
    const sources: string[] = [];
    second.onChange(SERVICE, (_n, _p, change) => sources.push(change.source));
    vi.spyOn(Math, 'random').mockReturnValue(0.9);
    const started = performance.now();
    const cfg = await second.get(SERVICE);
    const elapsed = performance.now() - started;
    vi.restoreAllMocks();
    expect(cfg.operational.batch_size).toBe(55);
    expect(elapsed).toBeLessThan(500);
    expect(second.status(SERVICE)).toMatchObject({ source: 'snapshot', revision: 9 });
    // The fetch goes on behind the snapshot: when the hub answers, the client converges.
    up = true;
    await vi.waitFor(async () => expect((await second.get(SERVICE)).operational.batch_size).toBe(56), { timeout: 6_000 });
    expect(second.status(SERVICE)).toMatchObject({ source: 'hub', revision: 10 });
    // The first load's own fetch brought it, but it replaced a fallback: a recovery.
    expect(sources).toEqual(['recovery']);
  });

  it('a corrupt, truncated or foreign snapshot is ignored with a warning and defaults are used', async () => {
    agent.use(hubRoute(() => HttpResponse.error()));
    const warnings: string[] = [];
    for (const content of ['{', '', '[]', JSON.stringify({ format: 1, service: 'tick-aggregator', config: {}, version: '1', updated_at: 1, saved_at: 1 })]) {
      await writeFile(join(snapshotDir, `${SERVICE}.json`), content);
      const client = makeClient({ logger: { warn: (_o, msg) => warnings.push(String(msg)) } });
      const errors: string[] = [];
      client.onError((e) => errors.push(e.code));
      const cfg = await client.get(SERVICE);
      expect(cfg.operational.batch_size).toBe(100);
      expect(client.status(SERVICE).source).toBe('defaults');
      expect(errors).toContain('SNAPSHOT_INVALID');
      await client.close();
    }
    expect(warnings.filter((w) => w === 'snapshot ignored')).toHaveLength(4);
  });

  it('the first get waits at most the startup budget, then falls back; the hub answer still lands', async () => {
    agent.use(
      hubRoute(async () => {
        await delay(300);
        return HttpResponse.json(doc({ operational: { batch_size: 5 } }));
      }),
    );
    const client = makeClient({ startupTimeoutMs: 50 });
    const started = performance.now();
    const cfg = await client.get(SERVICE);
    const elapsed = performance.now() - started;
    expect(cfg.operational.batch_size).toBe(100);
    expect(elapsed).toBeLessThan(250);
    await vi.waitFor(async () => expect((await client.get(SERVICE)).operational.batch_size).toBe(5), { timeout: 2000 });
  });

  it('rejects with CONFIG_UNAVAILABLE only when no layer validates; a later get can still succeed', async () => {
    let up = false;
    agent.use(hubRoute(() => (up ? HttpResponse.json(doc({ operational: { batch_size: 1 } })) : HttpResponse.error())));
    const client = makeClient({ env: {} });
    const error = await client.get(SERVICE).catch((e: unknown) => e);
    expect(isConfigError(error) && error.code).toBe('CONFIG_UNAVAILABLE');
    expect((error as Error).cause).toMatchObject({ code: 'HUB_UNREACHABLE' });
    up = true;
    // Without env the database block is missing, so even the hub document fails the schema.
    await expect(client.get(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_UNAVAILABLE' });
  });

  it('a hub document that fails the schema is rejected; the last good value stays', async () => {
    let batch: unknown = 10;
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: batch } }, { updated_at: Date.now() }))));
    const client = makeClient();
    const errors: Array<{ code: string; issues?: unknown }> = [];
    client.onError((e) => errors.push(e as never));
    const changes: unknown[] = [];
    client.onChange(SERVICE, () => changes.push(1));
    await client.get(SERVICE);
    batch = 'not-a-number';
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect((await client.get(SERVICE)).operational.batch_size).toBe(10);
    expect(errors[0]).toMatchObject({ code: 'CONFIG_INVALID', issues: [expect.objectContaining({ path: 'operational.batch_size' })] });
    expect(changes).toHaveLength(0);
  });
});

describe('listeners, explain, lifecycle', () => {
  it('a throwing or rejecting listener is reported; the others still run', async () => {
    let n = 1;
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: n } }, { updated_at: n }))));
    const client = makeClient();
    const errors: string[] = [];
    client.onError((e) => errors.push(e.code));
    const seen: number[] = [];
    client.onChange(SERVICE, () => {
      throw new Error('boom');
    });
    client.onChange(SERVICE, async () => Promise.reject(new Error('async boom')));
    client.onChange(SERVICE, (next) => {
      seen.push(next.operational.batch_size);
    });
    await client.get(SERVICE);
    n = 2;
    await client.refresh(SERVICE);
    await vi.waitFor(() => expect(errors).toEqual(['LISTENER_FAILED', 'LISTENER_FAILED']));
    expect(seen).toEqual([2]);
  });

  it('changes() yields every change in order as an async iterator; ends on break, abort and close', async () => {
    let n = 1;
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: n } }, { updated_at: n }))));
    const client = makeClient();
    await client.get(SERVICE);
    const stream = client.changes(SERVICE);
    // Two changes before anyone reads: both are queued, in order.
    n = 2;
    await client.refresh(SERVICE);
    n = 3;
    await client.refresh(SERVICE);
    const seen: Array<[number, number, string[]]> = [];
    for await (const { next, prev, change } of stream) {
      seen.push([prev.operational.batch_size, next.operational.batch_size, change.changedPaths]);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([
      [1, 2, ['operational.batch_size']],
      [2, 3, ['operational.batch_size']],
    ]);

    const controller = new AbortController();
    const aborted = client.changes(SERVICE, { signal: controller.signal });
    const pending = aborted.next();
    controller.abort();
    await expect(pending).resolves.toEqual({ value: undefined, done: true });

    const open = client.changes(SERVICE);
    const waiting = open.next();
    await client.close();
    await expect(waiting).resolves.toEqual({ value: undefined, done: true });
  });

  it('explain says which layer each value came from and redacts critical values', async () => {
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: 150 } }))));
    const client = makeClient();
    await client.get(SERVICE);
    expect(client.explain(SERVICE, 'operational.batch_size')).toMatchObject({ layer: 'hub', value: 150 });
    expect(client.explain(SERVICE, 'operational.gap_check_interval_hours')).toMatchObject({ layer: 'defaults', value: 1 });
    expect(client.explain(SERVICE, 'database.password')).toMatchObject({ layer: 'env', value: '[redacted]', envVariable: 'DB_PASSWORD' });
    const db = client.explain(SERVICE, 'database');
    expect(db).toMatchObject({ layer: 'env', value: { host: '[redacted]', password: '[redacted]' } });
    expect(JSON.stringify(db)).not.toContain('canary-secret-123');
    expect(client.explain(SERVICE, 'operational')).toMatchObject({ layer: 'mixed' });
    expect(client.explain(SERVICE, 'nope')).toMatchObject({ layer: 'absent' });
  });

  it('explain does not list hub paths the schema strips (they are not served)', async () => {
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: 150 }, download: { start_date: 'x' } }))));
    const client = makeClient();
    await client.get(SERVICE);
    expect(client.explain(SERVICE, 'download.start_date')).toMatchObject({ layer: 'absent', value: undefined });
    expect(Object.keys(client.explain(SERVICE, '').leaves ?? {})).not.toContain('download.start_date');
  });

  it('close is idempotent and later calls fail with CLIENT_CLOSED', async () => {
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: 1 } }))));
    const client = makeClient();
    await client.get(SERVICE);
    const a = client.close();
    expect(client.close()).toBe(a);
    await a;
    await expect(client.get(SERVICE)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(() => client.onChange(SERVICE, () => {})).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }));
  });

  it('close waits for the snapshot write in progress: no temp file left behind', async () => {
    agent.use(hubRoute(() => HttpResponse.json(doc({ operational: { batch_size: 4 } }))));
    const client = makeClient();
    await client.get(SERVICE);
    await client.close();
    expect(await readdir(snapshotDir)).toEqual([`${SERVICE}.json`]);
  });

  it('Symbol.asyncDispose closes the client', async () => {
    const client = makeClient();
    await client[Symbol.asyncDispose]();
    await expect(client.get(SERVICE)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
  });

  it('hot reload without declared services is refused (INVALID_OPTIONS) instead of silently subscribing to nothing', () => {
    expect(() => new ConfigClient({ hubUrl: HUB, nats: { servers: 'nats://127.0.0.1:4222' } })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining('services') }),
    );
  });

  it('bad options throw INVALID_OPTIONS at construction, without I/O', () => {
    expect(() => new ConfigClient({ hubUrl: 'not a url' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    expect(() => new ConfigClient({ hubUrl: [] })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    expect(() => new ConfigClient({ hubUrl: HUB, cacheTtlMs: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    expect(() => new ConfigClient({ hubUrl: HUB, services: { 'Bad Name': {} } })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    expect(() => new ConfigClient({ hubUrl: HUB, nats: {} })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    expect(configGets()).toHaveLength(0);
  });

  it('never mutates the caller options', () => {
    const options = Object.freeze({ hubUrl: HUB, services: Object.freeze({ a: Object.freeze({}) }) });
    expect(() => new ConfigClient(options)).not.toThrow();
  });
});
