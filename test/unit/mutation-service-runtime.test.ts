/**
 * src/runtime/service-runtime.ts driven directly (a scripted transport, an in-memory snapshot store),
 * found by mutation testing (`npm run test:mutation`): what status() reports in each state, which
 * triggers fetch and with which change source, notices (stale, same revision, trusted payloads, the
 * fetch budget), snapshot reads and writes, listeners, and what close() stops.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ConfigError, HubHttpError } from '../../src/errors.js';
import type { FetchOptions, FetchResult, HubTransport } from '../../src/hub/transport.js';
import type { Notice } from '../../src/hub/wire.js';
import type { Logger } from '../../src/logger.js';
import { resolveOptions } from '../../src/options.js';
import { ServiceRuntime } from '../../src/runtime/service-runtime.js';
import type { ConfigChange } from '../../src/runtime/types.js';
import type { Snapshot, SnapshotReadResult, SnapshotStore } from '../../src/snapshot/file-store.js';

const NAME = 'svc-rt';

type Answer = FetchResult | ConfigError | Error | (() => Promise<FetchResult>);

function document(config: Record<string, unknown>, revision: number, etag?: string): FetchResult {
  return { kind: 'document', document: { service_name: NAME, config, version: `v${revision}`, updated_at: revision * 10, revision }, etag, hubUrl: 'http://hub.test/' };
}

interface Setup {
  answers?: Answer[];
  store?: Partial<SnapshotStore> | undefined;
  applyPayload?: boolean;
  schema?: z.ZodType;
  env?: Record<string, string>;
  envSource?: Record<string, string>;
}

function setup(opts: Setup = {}) {
  const answers = [...(opts.answers ?? [])];
  const requests: FetchOptions[] = [];
  let closed = false;
  const transport = {
    fetchConfig: async (_service: string, options: FetchOptions): Promise<FetchResult> => {
      requests.push(options);
      const next = answers.length > 1 ? answers.shift()! : answers[0];
      if (next === undefined) throw new Error('no answer scripted');
      if (typeof next === 'function') return next();
      if (next instanceof Error) throw next;
      return next;
    },
  } as unknown as HubTransport;
  const fresh = new Map<string, Promise<unknown>>();
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const logger: Logger = { debug: () => undefined, info: () => undefined, warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)), error: () => undefined } as unknown as Logger;
  const controller = new AbortController();
  const options = resolveOptions({
    hubUrl: 'http://hub.test',
    snapshotDir: false,
    logger,
    env: opts.envSource ?? {},
    recovery: { minDelayMs: 100, maxDelayMs: 1_000, unauthorizedDelayMs: 60_000 },
    ...(opts.applyPayload === undefined ? {} : { nats: { servers: 'nats://127.0.0.1:1', applyPayload: opts.applyPayload } }),
  });
  const runtime = new ServiceRuntime({
    name: NAME,
    definition: { defaults: { a: 0 }, schema: opts.schema, env: opts.env },
    options,
    transport,
    snapshots: opts.store as SnapshotStore | undefined,
    fresh: { set: (k, v) => void fresh.set(k, v), has: (k) => fresh.has(k) },
    reportError: (error) => void errors.push(error),
    isClosed: () => closed,
    signal: controller.signal,
  });
  return {
    runtime,
    requests,
    errors,
    warnings,
    fresh,
    signal: controller.signal,
    close: () => {
      closed = true;
      runtime.close();
    },
    script: (...next: Answer[]) => {
      answers.splice(0, answers.length, ...next);
    },
  };
}

function memoryStore(initial?: Snapshot, problem?: ConfigError) {
  const writes: Array<Omit<Snapshot, 'savedAt'>> = [];
  const removes: string[] = [];
  let failWrites = 0;
  const store: Partial<SnapshotStore> = {
    read: async (): Promise<SnapshotReadResult> => ({ snapshot: initial, ...(problem ? { problem } : {}) }),
    write: async (snapshot) => {
      writes.push(snapshot);
      if (failWrites > 0) {
        failWrites--;
        throw new Error('disk full');
      }
    },
    remove: async (service) => {
      removes.push(service);
    },
  };
  return { store, writes, removes, failNextWrites: (n: number) => (failWrites = n) };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('status()', () => {
  it('before the first get: no source, stale, nothing known', () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    expect(t.runtime.status()).toEqual({
      source: undefined,
      stale: true,
      revision: undefined,
      version: undefined,
      updatedAt: undefined,
      lastFetchAt: undefined,
      lastErrorCode: undefined,
      lastErrorMessage: undefined,
      droppedCriticalPaths: [],
    });
    expect(t.runtime.hasValue).toBe(false);
    expect(t.runtime.failing).toBe(false);
    expect(t.runtime.committedValue).toBeUndefined();
    expect(t.runtime.provenance).toBeUndefined();
  });

  it('after a hub answer: served from the hub, fresh, its metadata, the time of the answer', async () => {
    const t = setup({ answers: [document({ a: 1 }, 3, '"e3"')] });
    const before = Date.now();
    expect(await t.runtime.get()).toEqual({ a: 1 });
    const status = t.runtime.status();
    expect(status).toMatchObject({ source: 'hub', stale: false, revision: 3, version: 'v3', updatedAt: 30, lastErrorCode: undefined });
    expect(status.lastFetchAt).toBeGreaterThanOrEqual(before);
    expect(t.runtime.hasValue).toBe(true);
    expect(t.runtime.committedValue).toEqual({ a: 1 });
    expect(t.runtime.provenance?.get('a')).toBe('hub');
    // Past its TTL (the client's fresh index forgot it): stale.
    t.fresh.clear();
    expect(t.runtime.status().stale).toBe(true);
  });

  it('a fallback to defaults after a failure is stale and has no answer time', async () => {
    const t = setup({ answers: [new ConfigError('HUB_UNREACHABLE', 'down')] });
    expect(await t.runtime.get()).toEqual({ a: 0 });
    expect(t.runtime.status()).toMatchObject({ source: 'defaults', stale: true, lastFetchAt: undefined, lastErrorCode: 'HUB_UNREACHABLE', lastErrorMessage: 'down' });
    expect(t.runtime.failing).toBe(true);
  });

  it('a 404 serves defaults, fresh but stale (a fallback with an error), and removes the snapshot', async () => {
    const { store, removes } = memoryStore();
    const t = setup({ answers: [new HubHttpError('CONFIG_NOT_FOUND', 404, undefined)], store });
    expect(await t.runtime.get()).toEqual({ a: 0 });
    expect(t.runtime.status()).toMatchObject({ source: 'defaults', stale: true, lastErrorCode: 'CONFIG_NOT_FOUND' });
    expect(t.runtime.status().lastFetchAt).toBeTypeOf('number');
    expect(t.runtime.failing).toBe(false);
    expect(t.fresh.has(NAME)).toBe(true);
    await flush();
    expect(removes).toEqual([NAME]);
  });

  it('a failure after a hub answer serves the cache, stale, with the error', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    await t.runtime.get();
    t.script(new ConfigError('HUB_UNREACHABLE', 'down'));
    await expect(t.runtime.refresh()).rejects.toMatchObject({ code: 'HUB_UNREACHABLE' });
    expect(t.runtime.status()).toMatchObject({ source: 'cache', stale: true, revision: 1, lastErrorCode: 'HUB_UNREACHABLE' });
    expect(t.warnings).toContain('config refresh failed; serving last good value');
  });

  it('droppedCriticalPaths is a copy', async () => {
    const t = setup({ answers: [document({ a: 1, secret: 'x' }, 1)], env: { secret: 'SECRET' }, envSource: { SECRET: 'from-env' } });
    await t.runtime.get();
    const status = t.runtime.status();
    expect(status.droppedCriticalPaths).toEqual(['secret']);
    status.droppedCriticalPaths.push('mutated');
    expect(t.runtime.status().droppedCriticalPaths).toEqual(['secret']);
    expect(t.runtime.criticalPaths).toEqual(['secret']);
    expect(t.runtime.envVariableFor('secret')).toBe('SECRET');
    expect(t.runtime.envVariableFor('a')).toBeUndefined();
  });

  it('envVariableFor without an env mapping is undefined', () => {
    expect(setup().runtime.envVariableFor('a')).toBeUndefined();
  });
});

describe('triggers', () => {
  it('refresh: CLIENT_CLOSED once closed; the first load without a value; else a fetch with source refresh', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    expect(await t.runtime.refresh()).toEqual({ a: 1 });
    const changes: ConfigChange[] = [];
    t.runtime.onChange((_n, _p, change) => void changes.push(change));
    t.script(document({ a: 2 }, 2));
    expect(await t.runtime.refresh()).toEqual({ a: 2 });
    expect(changes).toEqual([{ service: NAME, changedPaths: ['a'], revision: 2, version: 'v2', updatedAt: 20, source: 'refresh' }]);
    t.close();
    await expect(t.runtime.refresh()).rejects.toMatchObject({ code: 'CLIENT_CLOSED', service: NAME, message: 'the client is closed' });
  });

  it('refresh runs after a fetch in flight, never joins it', async () => {
    let release!: () => void;
    const slow = () =>
      new Promise<FetchResult>((resolve) => {
        release = () => resolve(document({ a: 1 }, 1));
      });
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    await t.runtime.get();
    t.script(slow, document({ a: 5 }, 5));
    const poll = t.runtime.poll();
    const refresh = t.runtime.refresh();
    release();
    await poll;
    expect(await refresh).toEqual({ a: 5 });
    expect(t.requests).toHaveLength(3);
  });

  it('poll: a fetch with source poll; nothing while failing', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    await t.runtime.get();
    const changes: ConfigChange[] = [];
    t.runtime.onChange((_n, _p, change) => void changes.push(change));
    t.script(document({ a: 2 }, 2));
    await t.runtime.poll();
    expect(changes.map((c) => c.source)).toEqual(['poll']);
    t.script(new ConfigError('HUB_UNREACHABLE', 'down'));
    await expect(t.runtime.poll()).rejects.toMatchObject({ code: 'HUB_UNREACHABLE' });
    const count = t.requests.length;
    await expect(t.runtime.poll()).resolves.toBeUndefined();
    expect(t.requests).toHaveLength(count);
  });

  it('resync and notices fetch with source nats', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    await t.runtime.get();
    const changes: ConfigChange[] = [];
    t.runtime.onChange((_n, _p, change) => void changes.push(change));
    t.script(document({ a: 2 }, 2));
    t.runtime.resync();
    await vi.waitFor(() => expect(changes).toHaveLength(1));
    t.script(document({ a: 3 }, 3));
    t.runtime.handleNotice({ service_name: NAME, revision: 3 } as Notice);
    await vi.waitFor(() => expect(changes).toHaveLength(2));
    expect(changes.map((c) => c.source)).toEqual(['nats', 'nats']);
  });

  it('a get past the TTL revalidates in the background with source refresh; a fresh get does not fetch', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    await t.runtime.get();
    await t.runtime.get();
    expect(t.requests).toHaveLength(1);
    const changes: ConfigChange[] = [];
    t.runtime.onChange((_n, _p, change) => void changes.push(change));
    t.fresh.clear();
    t.script(document({ a: 2 }, 2));
    expect(await t.runtime.get()).toEqual({ a: 1 });
    await vi.waitFor(() => expect(changes).toHaveLength(1));
    expect(changes[0]?.source).toBe('refresh');
    expect(t.runtime.committedValue).toEqual({ a: 2 });
  });

  it('a conditional GET with the held ETag; the signal of the client', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1, '"e1"')] });
    await t.runtime.get();
    expect(t.requests[0]?.etag).toBeUndefined();
    expect(t.requests[0]?.signal).toBe(t.signal);
    t.script({ kind: 'not-modified', hubUrl: 'http://hub.test/' });
    await t.runtime.refresh();
    expect(t.requests[1]?.etag).toBe('"e1"');
    expect(t.runtime.status()).toMatchObject({ source: 'hub', revision: 1 });
  });

  it('a notice value (unconfirmed) is never revalidated with its ETag', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1, '"e1"')], applyPayload: true });
    await t.runtime.get();
    t.runtime.handleNotice({ service_name: NAME, revision: 2, updated_at: 20, version: 'v2', config: { a: 2 } } as Notice);
    expect(t.runtime.status().source).toBe('notice');
    t.script(document({ a: 2 }, 2, '"e2"'));
    await t.runtime.refresh();
    expect(t.requests[1]?.etag).toBeUndefined();
  });

  it('a transport that throws something else is HUB_UNREACHABLE with its message', async () => {
    const t = setup({ answers: [new TypeError('socket hang up')] });
    await t.runtime.get();
    expect(t.runtime.status()).toMatchObject({ lastErrorCode: 'HUB_UNREACHABLE', lastErrorMessage: 'socket hang up' });
    expect(t.errors[0]).toMatchObject({ code: 'HUB_UNREACHABLE', service: NAME });
  });

  it('CLIENT_CLOSED from the transport, or a close during the fetch: CLIENT_CLOSED, nothing committed or reported', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    await t.runtime.get();
    t.script(new ConfigError('CLIENT_CLOSED', 'transport closed'));
    await expect(t.runtime.refresh()).rejects.toMatchObject({ code: 'CLIENT_CLOSED', message: 'the client is closed' });
    expect(t.runtime.status()).toMatchObject({ source: 'hub', lastErrorCode: undefined });
    expect(t.errors).toEqual([]);
    const u = setup({ answers: [document({ a: 1 }, 1)] });
    await u.runtime.get();
    u.script(async () => {
      u.close();
      throw new ConfigError('HUB_UNREACHABLE', 'aborted');
    });
    await expect(u.runtime.refresh()).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(u.errors).toEqual([]);
    const v = setup({ answers: [document({ a: 1 }, 1)] });
    await v.runtime.get();
    v.script(async () => {
      v.close();
      return document({ a: 9 }, 9);
    });
    await expect(v.runtime.refresh()).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(v.runtime.committedValue).toEqual({ a: 1 });
  });
});

describe('notices', () => {
  async function confirmed(opts: Setup = {}) {
    const t = setup({ answers: [document({ a: 1 }, 5, '"e5"')], ...opts });
    await t.runtime.get();
    return t;
  }

  it('a notice not newer than the confirmed revision fetches nothing', async () => {
    const t = await confirmed();
    t.runtime.handleNotice({ service_name: NAME, revision: 5 } as Notice);
    t.runtime.handleNotice({ service_name: NAME, revision: 4 } as Notice);
    await flush();
    expect(t.requests).toHaveLength(1);
  });

  it('the confirmed revision with other content is checked with the hub once, not once per copy', async () => {
    const t = await confirmed();
    const restored = { service_name: NAME, revision: 5, updated_at: 50, config: { a: 7 } } as Notice;
    t.runtime.handleNotice(restored);
    t.runtime.handleNotice(restored);
    await flush();
    expect(t.requests).toHaveLength(2);
    // Asked without the held ETag: it may match the restored hub's and hide the other content.
    expect(t.requests[1]?.etag).toBeUndefined();
    // The same content as held: nothing to check.
    t.runtime.handleNotice({ service_name: NAME, revision: 5, updated_at: 50, config: { a: 1 } } as Notice);
    await flush();
    expect(t.requests).toHaveLength(2);
  });

  it('a verified notice payload is applied without a request, as the hub', async () => {
    const t = await confirmed();
    t.runtime.handleNotice({ service_name: NAME, revision: 6, updated_at: 60, version: 'v6', config: { a: 6 } } as Notice, true);
    expect(t.runtime.committedValue).toEqual({ a: 6 });
    expect(t.runtime.status()).toMatchObject({ source: 'hub', revision: 6 });
    await flush();
    expect(t.requests).toHaveLength(1);
  });

  it('an unverified payload: applied as notice with applyPayload, else only a hint to fetch', async () => {
    const payload = { service_name: NAME, revision: 6, updated_at: 60, version: 'v6', config: { a: 6 } } as Notice;
    const t = await confirmed({ applyPayload: true });
    t.runtime.handleNotice(payload);
    expect(t.runtime.status()).toMatchObject({ source: 'notice', revision: 6 });
    await flush();
    expect(t.requests).toHaveLength(1);
    const u = await confirmed({ applyPayload: false });
    u.script(document({ a: 6 }, 6));
    u.runtime.handleNotice(payload);
    expect(u.runtime.committedValue).toEqual({ a: 1 });
    await vi.waitFor(() => expect(u.runtime.committedValue).toEqual({ a: 6 }));
    expect(u.requests).toHaveLength(2);
    expect(u.runtime.status().source).toBe('hub');
  });

  it('an unverified payload not newer than the unconfirmed one served is never applied; an older one asks the hub', async () => {
    const t = await confirmed({ applyPayload: true });
    t.runtime.handleNotice({ service_name: NAME, revision: 7, updated_at: 70, config: { a: 7 } } as Notice);
    expect(t.runtime.committedValue).toEqual({ a: 7 });
    t.runtime.handleNotice({ service_name: NAME, revision: 7, updated_at: 70, config: { a: 77 } } as Notice);
    await flush();
    expect(t.runtime.committedValue).toEqual({ a: 7 });
    expect(t.requests).toHaveLength(1);
    t.script(document({ a: 7 }, 7));
    t.runtime.handleNotice({ service_name: NAME, revision: 6, updated_at: 60, config: { a: 6 } } as Notice);
    expect(t.runtime.committedValue).toEqual({ a: 7 });
    await vi.waitFor(() => expect(t.requests).toHaveLength(2));
    // A newer one is applied.
    t.runtime.handleNotice({ service_name: NAME, revision: 8, updated_at: 80, config: { a: 8 } } as Notice);
    expect(t.runtime.committedValue).toEqual({ a: 8 });
  });

  it('a notice without a payload is a hint, even when verified', async () => {
    const t = await confirmed();
    t.script(document({ a: 6 }, 6));
    t.runtime.handleNotice({ service_name: NAME, revision: 6 } as Notice, true);
    await vi.waitFor(() => expect(t.requests).toHaveLength(2));
  });

  it('an invalid trusted payload is reported; the last good value stays', async () => {
    const t = await confirmed({ schema: z.object({ a: z.number() }) });
    t.runtime.handleNotice({ service_name: NAME, revision: 6, updated_at: 60, config: { a: 'x' } } as Notice, true);
    expect(t.runtime.committedValue).toEqual({ a: 1 });
    expect(t.errors.map((e) => e.code)).toEqual(['CONFIG_INVALID']);
    expect(t.runtime.failing).toBe(false);
  });

  it('no payload is applied while the hub is failing or before a first value', async () => {
    const t = await confirmed();
    t.script(new ConfigError('HUB_UNREACHABLE', 'down'));
    await t.runtime.refresh().catch(() => undefined);
    t.runtime.handleNotice({ service_name: NAME, revision: 6, updated_at: 60, config: { a: 6 } } as Notice, true);
    expect(t.runtime.committedValue).toEqual({ a: 1 });
    const u = setup({ answers: [document({ a: 1 }, 1)] });
    u.runtime.handleNotice({ service_name: NAME, revision: 6, updated_at: 60, config: { a: 6 } } as Notice, true);
    expect(u.runtime.hasValue).toBe(false);
    expect(u.requests).toHaveLength(0);
  });

  it('after close, notices do nothing', async () => {
    const t = await confirmed();
    t.close();
    t.runtime.handleNotice({ service_name: NAME, revision: 9, updated_at: 90, config: { a: 9 } } as Notice, true);
    t.runtime.handleNotice({ service_name: NAME, revision: 9 } as Notice);
    await flush();
    expect(t.runtime.committedValue).toEqual({ a: 1 });
    expect(t.requests).toHaveLength(1);
  });

  describe('the notice fetch budget', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('hints that lead nowhere: three fetches at once, then one per second; the last hint is deferred, never lost', async () => {
      const t = await confirmed();
      // The hub has nothing newer than revision 5: every notice is a hint that leads nowhere.
      for (let revision = 6; revision <= 8; revision++) {
        t.runtime.handleNotice({ service_name: NAME, revision } as Notice);
        await vi.advanceTimersByTimeAsync(0);
      }
      expect(t.requests).toHaveLength(4);
      t.runtime.handleNotice({ service_name: NAME, revision: 9 } as Notice);
      t.runtime.handleNotice({ service_name: NAME, revision: 10 } as Notice);
      await vi.advanceTimersByTimeAsync(0);
      expect(t.requests).toHaveLength(4);
      await vi.advanceTimersByTimeAsync(999);
      expect(t.requests).toHaveLength(4);
      await vi.advanceTimersByTimeAsync(1);
      expect(t.requests).toHaveLength(5);
      await vi.advanceTimersByTimeAsync(5_000);
      expect(t.requests).toHaveLength(5);
    });

    it('a hint that brought a real change is refunded: real changes are never throttled', async () => {
      const t = await confirmed();
      let revision = 5;
      t.script(async () => document({ a: revision }, revision));
      for (let i = 0; i < 6; i++) {
        revision++;
        t.runtime.handleNotice({ service_name: NAME, revision } as Notice);
        await vi.advanceTimersByTimeAsync(0);
      }
      expect(t.requests).toHaveLength(7);
      expect(t.runtime.committedValue).toEqual({ a: 11 });
    });
  });
});

describe('snapshots', () => {
  const snapshot: Snapshot = { service: NAME, config: { a: 4 }, version: 'v4', updatedAt: 40, revision: 4, etag: '"e4"', savedAt: 1 };

  it('a hub that fails its first round: the snapshot is served at once', async () => {
    const { store } = memoryStore(snapshot);
    const t = setup({ answers: [new ConfigError('HUB_UNREACHABLE', 'down')], store });
    expect(await t.runtime.get()).toEqual({ a: 4 });
    expect(t.runtime.status()).toMatchObject({ source: 'snapshot', revision: 4, stale: true, lastFetchAt: undefined });
  });

  it('a snapshot problem is logged and reported; defaults are served', async () => {
    const problem = new ConfigError('SNAPSHOT_INVALID', 'bad file');
    const { store } = memoryStore(undefined, problem);
    const t = setup({ answers: [new ConfigError('HUB_UNREACHABLE', 'down')], store });
    expect(await t.runtime.get()).toEqual({ a: 0 });
    expect(t.errors).toContain(problem);
    expect(t.warnings).toContain('snapshot ignored');
  });

  it('a snapshot that fails the schema is not served', async () => {
    const { store } = memoryStore({ ...snapshot, config: { a: 'x' } });
    const t = setup({ answers: [new ConfigError('HUB_UNREACHABLE', 'down')], store, schema: z.object({ a: z.number() }) });
    expect(await t.runtime.get()).toEqual({ a: 0 });
    expect(t.runtime.status().source).toBe('defaults');
  });

  it('each new hub layer is written with its metadata; the same layer again is not', async () => {
    const { store, writes } = memoryStore();
    const t = setup({ answers: [document({ a: 1, secret: 'hub' }, 1, '"e1"')], store, env: { secret: 'SECRET' }, envSource: { SECRET: 's' } });
    await t.runtime.get();
    await flush();
    expect(writes).toEqual([{ service: NAME, config: { a: 1 }, version: 'v1', updatedAt: 10, revision: 1, etag: '"e1"', droppedCriticalPaths: ['secret'] }]);
    await t.runtime.refresh();
    await flush();
    expect(writes).toHaveLength(1);
  });

  it('a failed write is reported once until a write succeeds again; never after close', async () => {
    const { store, writes, failNextWrites } = memoryStore();
    const t = setup({ answers: [document({ a: 1 }, 1)], store });
    failNextWrites(2);
    await t.runtime.get();
    t.script(document({ a: 2 }, 2));
    await t.runtime.refresh();
    await flush();
    expect(writes).toHaveLength(2);
    expect(t.errors.map((e) => e.code)).toEqual(['SNAPSHOT_WRITE_FAILED']);
    expect(t.errors[0]?.message).toBe(`could not write the last-known-good snapshot of ${NAME}: disk full`);
    expect(t.errors[0]?.service).toBe(NAME);
    expect(t.warnings).toContain('could not write last-known-good snapshot');
    t.script(document({ a: 3 }, 3));
    await t.runtime.refresh();
    await flush();
    failNextWrites(1);
    t.script(document({ a: 4 }, 4));
    await t.runtime.refresh();
    await flush();
    expect(t.errors.map((e) => e.code)).toEqual(['SNAPSHOT_WRITE_FAILED', 'SNAPSHOT_WRITE_FAILED']);
    failNextWrites(1);
    t.script(async () => document({ a: 5 }, 5));
    const last = t.runtime.refresh();
    await last;
    t.close();
    await flush();
    expect(t.errors).toHaveLength(2);
  });
});

describe('commits and listeners', () => {
  it('an equal value keeps its identity and announces nothing', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    const first = await t.runtime.get();
    const changes: unknown[] = [];
    t.runtime.onChange(() => void changes.push(1));
    t.script(document({ a: 1 }, 2));
    expect(await t.runtime.refresh()).toBe(first);
    expect(changes).toEqual([]);
    expect(t.runtime.status().revision).toBe(2);
  });

  it('listeners get next, prev and the change; one that throws or rejects is reported and the others still run', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    await t.runtime.get();
    const seen: unknown[] = [];
    t.runtime.onChange(() => {
      throw new Error('sync boom');
    });
    t.runtime.onChange(async () => {
      throw new Error('async boom');
    });
    t.runtime.onChange(() => 'a plain value');
    t.runtime.onChange((next, prev) => void seen.push([next, prev]));
    t.script(document({ a: 2 }, 2));
    await t.runtime.refresh();
    await flush();
    expect(seen).toEqual([[{ a: 2 }, { a: 1 }]]);
    expect(t.errors.map((e) => [e.code, e.message, (e.cause as Error).message])).toEqual([
      ['LISTENER_FAILED', `an onChange listener of ${NAME} failed`, 'sync boom'],
      ['LISTENER_FAILED', `an onChange listener of ${NAME} failed`, 'async boom'],
    ]);
    expect(t.errors[0]?.service).toBe(NAME);
  });

  it('an unsubscribed listener is not called; close() drops them all and stops the recovery', async () => {
    vi.useFakeTimers();
    try {
      const t = setup({ answers: [document({ a: 1 }, 1)] });
      await t.runtime.get();
      const calls: string[] = [];
      const off = t.runtime.onChange(() => void calls.push('off'));
      t.runtime.onChange(() => void calls.push('on'));
      off();
      t.script(document({ a: 2 }, 2));
      await t.runtime.refresh();
      expect(calls).toEqual(['on']);
      t.script(new ConfigError('HUB_UNREACHABLE', 'down'));
      await t.runtime.refresh().catch(() => undefined);
      const count = t.requests.length;
      t.runtime.close();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(t.requests).toHaveLength(count);
      t.script(document({ a: 3 }, 3));
      await t.runtime.refresh();
      expect(calls).toEqual(['on']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('failures are reported once per state: again after a recovery', async () => {
    const t = setup({ answers: [document({ a: 1 }, 1)] });
    await t.runtime.get();
    t.script(new ConfigError('HUB_UNREACHABLE', 'down'));
    await t.runtime.refresh().catch(() => undefined);
    await t.runtime.refresh().catch(() => undefined);
    expect(t.errors).toHaveLength(1);
    t.script(document({ a: 2 }, 2));
    await t.runtime.refresh();
    t.script(new ConfigError('HUB_UNREACHABLE', 'down'));
    await t.runtime.refresh().catch(() => undefined);
    expect(t.errors).toHaveLength(2);
  });

  it('failures schedule the recovery (the hard delay after a 401); success resets it', async () => {
    vi.useFakeTimers();
    try {
      const t = setup({ answers: [document({ a: 1 }, 1)] });
      await t.runtime.get();
      t.script(new ConfigError('HUB_UNREACHABLE', 'down'), document({ a: 2 }, 2));
      await t.runtime.refresh().catch(() => undefined);
      expect(t.requests).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(250);
      expect(t.requests).toHaveLength(3);
      expect(t.runtime.committedValue).toEqual({ a: 2 });
      await vi.advanceTimersByTimeAsync(5_000);
      expect(t.requests).toHaveLength(3);
      t.script(new HubHttpError('UNAUTHORIZED', 401, undefined));
      await t.runtime.refresh().catch(() => undefined);
      await vi.advanceTimersByTimeAsync(40_000);
      expect(t.requests).toHaveLength(4);
      await vi.advanceTimersByTimeAsync(40_000);
      expect(t.requests).toHaveLength(5);
    } finally {
      vi.useRealTimers();
    }
  });
});
