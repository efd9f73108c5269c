/**
 * Helpers of the hot-reload integration suite (issue 4 §4): an in-process reference hub that counts the
 * GETs it serves per service, HTTP writes against it, tracked clients, NATS publishing and small stats.
 * Everything started here is registered in a `Lab` and torn down by `lab.cleanup()` (call it in
 * afterEach/afterAll), newest first, even when the test failed half way.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { type Hub, type HubOptions, buildHub } from '../../../examples/hub/server.js';
import { dropSchema, PG_URL, uniqueSchema } from '../hub-fixtures.js';
import { ConfigClient } from '../../../src/client.js';
import type { ConfigError } from '../../../src/errors.js';
import type { ConfigClientOptions, ServicesMap } from '../../../src/options.js';
import type { ConfigChange } from '../../../src/runtime/types.js';

export const SHARED_NATS = process.env.HUB_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
export const API = '/api/v1/config';

/** `hr-<8 hex>`: unique per test, so tests sharing the NATS server never see each other's notices. */
export const uniqueService = (prefix = 'hr'): string => `${prefix}-${randomBytes(4).toString('hex')}`;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `stepMs` until truthy; throws a clear error after `timeoutMs`. */
type Falsy = undefined | null | false | 0 | '';

export async function waitUntil<T>(
  what: string,
  check: () => T | Falsy | Promise<T | Falsy>,
  timeoutMs = 10_000,
  stepMs = 5,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as T;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(stepMs);
  }
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const ms = (value: number): string => `${value.toFixed(1)} ms`;

/** A teardown stack: everything a test starts goes on it; `cleanup()` runs it newest first and never throws. */
export class Lab {
  readonly #stack: Array<{ name: string; fn: () => Promise<unknown> }> = [];

  defer(name: string, fn: () => Promise<unknown>): void {
    this.#stack.push({ name, fn });
  }

  async cleanup(): Promise<void> {
    for (const { name, fn } of this.#stack.splice(0).reverse()) {
      try {
        await withTimeout(fn(), 10_000, `cleanup of ${name}`);
      } catch (error) {
        console.warn(`hot-reload lab: cleanup of ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  /** A temp dir removed at cleanup. */
  tempDir(prefix = 'hot-reload-'): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.defer(`temp dir ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** A fresh PostgreSQL schema on the shared server, dropped at cleanup. */
  pgSchema(): string {
    const schema = uniqueSchema('hotreload');
    this.defer(`schema ${schema}`, () => dropSchema(schema));
    return schema;
  }

  /**
   * A reference hub (auth disabled, no seed) listening on 127.0.0.1 (`port` 0: any free port). The store is
   * the shared PostgreSQL in `pgSchema` (default: a fresh schema) — it starts in ~0.5 s where PGlite's
   * migrations take seconds on a loaded machine — or PGlite with `store: 'pglite'` (and `dataDir`).
   */
  async hub(options: HubOptions & { port?: number; store?: 'postgres' | 'pglite' } = {}): Promise<TestHub> {
    const { port = 0, store = 'postgres', ...rest } = options;
    const storeOptions: HubOptions =
      store === 'postgres' ? { databaseUrl: PG_URL, pgSchema: rest.pgSchema ?? this.pgSchema() } : {};
    const hub = await buildHub({ disableAuth: true, seed: false, relayIntervalMs: 200, ...storeOptions, ...rest });
    const testHub = new TestHub(hub);
    this.defer('hub', () => testHub.close());
    try {
      await testHub.listen(port);
    } catch (error) {
      await testHub.close();
      throw error;
    }
    return testHub;
  }

  /** A ConfigClient closed at cleanup; snapshots off, silent. */
  client<S extends ServicesMap>(options: ConfigClientOptions<S>): ConfigClient<S> {
    const client = new ConfigClient<S>({ snapshotDir: false, ...options });
    this.defer('config client', () => client.close());
    return client;
  }

  /** A NATS connection (default: the shared server) closed at cleanup. */
  async nats(servers: string | string[] = SHARED_NATS): Promise<NatsConnection> {
    const nc = await connect({ servers, name: 'hot-reload-test-publisher' });
    this.defer('nats publisher', () => nc.close());
    return nc;
  }
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took more than ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface WriteAnswer {
  status: number;
  body: {
    revision?: number;
    updated_at?: number;
    broadcast?: 'sent' | 'unavailable' | 'failed';
    config?: Record<string, unknown>;
    [key: string]: unknown;
  };
}

/** The in-process hub plus a per-service count of `GET /api/v1/config/<service>` it answered. */
export class TestHub {
  readonly hub: Hub;
  url = '';
  port = 0;
  readonly #gets = new Map<string, number>();
  #closed: Promise<void> | undefined;

  constructor(hub: Hub) {
    this.hub = hub;
    // Fastify's hooks cannot be added after ready(); the node server's 'request' event sees every request too.
    hub.app.server.on('request', (request: { method?: string; url?: string }) => {
      const match = request.method === 'GET' ? /^\/api\/v1\/config\/([a-z0-9-]+)(?:\?|$)/.exec(request.url ?? '') : null;
      if (match) this.#gets.set(match[1]!, (this.#gets.get(match[1]!) ?? 0) + 1);
    });
  }

  async listen(port: number): Promise<void> {
    this.url = await this.hub.listen({ host: '127.0.0.1', port });
    this.port = Number(new URL(this.url).port);
  }

  /** GETs of one service's config answered so far (200 or 304). */
  gets(service: string): number {
    return this.#gets.get(service) ?? 0;
  }

  /** Waits until no GET of `service` arrived for `quietMs` (e.g. the client's startup resync is done). */
  async settle(service: string, quietMs = 200, timeoutMs = 5_000): Promise<number> {
    return waitUntil(`GETs of ${service} to settle`, async () => {
      const before = this.gets(service);
      await sleep(quietMs);
      return this.gets(service) === before ? before + 1 : 0;
    }, timeoutMs, 0).then((n) => n - 1);
  }

  /** Waits until the hub's broadcaster is connected to NATS (it connects in the background). */
  async natsReady(timeoutMs = 10_000): Promise<void> {
    await waitUntil('the hub to connect to NATS', () => this.hub.broadcaster.connected, timeoutMs);
  }

  post(service: string, config: Record<string, unknown>, query = ''): Promise<WriteAnswer> {
    return this.#write('POST', service, 'application/json', config, query);
  }

  patch(service: string, patch: Record<string, unknown>): Promise<WriteAnswer> {
    return this.#write('PATCH', service, 'application/merge-patch+json', patch, '');
  }

  async #write(method: string, service: string, contentType: string, body: unknown, query: string): Promise<WriteAnswer> {
    const response = await fetch(`${this.url.replace(/\/$/, '')}${API}/${service}${query}`, {
      method,
      headers: { 'content-type': contentType },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const answer = { status: response.status, body: (await response.json()) as WriteAnswer['body'] };
    if (response.status >= 300) throw new Error(`${method} ${service}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer;
  }

  close(): Promise<void> {
    this.#closed ??= this.hub.close();
    return this.#closed;
  }
}

/** Everything one client told us about one service. */
export interface Recorded<T = Record<string, unknown>> {
  changes: Array<{ at: number; next: T; prev: T; change: ConfigChange }>;
  errors: ConfigError[];
  stop(): void;
}

export function record<T = Record<string, unknown>, S extends ServicesMap = ServicesMap>(client: ConfigClient<S>, service: keyof S & string): Recorded<T> {
  const changes: Recorded<T>['changes'] = [];
  const errors: ConfigError[] = [];
  const offChange = client.onChange(service, (next, prev, change) => {
    changes.push({ at: performance.now(), next: next as T, prev: prev as T, change });
  });
  const offError = client.onError((error) => errors.push(error));
  return {
    changes,
    errors,
    stop: () => {
      offChange();
      offError();
    },
  };
}

/** The subject the hub publishes a service's notices on. */
export const subject = (service: string): string => `config.update.${service}`;

export function publishJson(nc: NatsConnection, service: string, payload: unknown): void {
  nc.publish(subject(service), new TextEncoder().encode(JSON.stringify(payload)));
}

/** Tracks unhandled rejections and uncaught exceptions while a test runs. */
export function watchProcessFaults(): { faults: unknown[]; stop(): void } {
  const faults: unknown[] = [];
  const onFault = (error: unknown): void => {
    faults.push(error);
  };
  process.on('unhandledRejection', onFault);
  process.on('uncaughtException', onFault);
  return {
    faults,
    stop: () => {
      process.off('unhandledRejection', onFault);
      process.off('uncaughtException', onFault);
    },
  };
}
