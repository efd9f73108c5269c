import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { type Hub, type HubOptions, buildHub } from '../../examples/hub/server.js';

export const PG_URL = process.env.HUB_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const SHARED_NATS_URL = process.env.HUB_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

export type StoreKind = 'pglite' | 'postgres';
export const STORE_KINDS: StoreKind[] = ['pglite', 'postgres'];

const suffix = () => randomBytes(4).toString('hex');

/** A unique service name per test, so that tests sharing NATS never see each other's notices. */
export const uniqueService = (prefix = 'svc'): string => `${prefix}-${suffix()}`;

/** A unique PostgreSQL schema name (created by the store, dropped by `dropSchema`). */
export const uniqueSchema = (prefix = 'hubtest'): string => `${prefix}_${Date.now().toString(36)}_${suffix()}`;

export async function withPg<T>(fn: (client: pg.Client) => Promise<T>, schema?: string): Promise<T> {
  const client = new pg.Client({
    connectionString: PG_URL,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await withPg((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

export const KEYS = {
  admin: { name: 'admin', key: 'admin-key-0123456789', scopes: ['read:*', 'write:*'] },
  reader: { name: 'reader', key: 'reader-key-0123456789', scopes: ['read:*'] },
  polygon: { name: 'polygon-rw', key: 'polygon-key-0123456789', scopes: ['read:polygon-*', 'write:polygon-*'] },
};

/** A hub on PGlite (in memory) or on the shared PostgreSQL in a schema of its own. */
export async function startHub(
  kind: StoreKind,
  options: HubOptions & { schema?: string } = {},
): Promise<{ hub: Hub; schema: string | undefined; stop: () => Promise<void> }> {
  const schema = kind === 'postgres' ? (options.schema ?? uniqueSchema()) : undefined;
  const hub = await buildHub({
    apiKeys: Object.values(KEYS),
    ...options,
    ...(kind === 'postgres' ? { databaseUrl: PG_URL, pgSchema: schema } : {}),
  });
  return {
    hub,
    schema,
    stop: async () => {
      await hub.close();
    },
  };
}

/**
 * Starts a hub on `kind` before the suite's tests and stops it (dropping its schema) after them; `use`
 * receives it (and its PostgreSQL schema), for the suite's own `let hub`.
 */
export function useSuiteHub(
  kind: StoreKind,
  options: HubOptions & { schema?: string },
  use: (hub: Hub, schema: string | undefined) => void,
): void {
  let started: Awaited<ReturnType<typeof startHub>> | undefined;
  beforeAll(async () => {
    started = await startHub(kind, options);
    use(started.hub, started.schema);
  });
  afterAll(async () => {
    await started?.hub.close();
    if (started?.schema !== undefined) await dropSchema(started.schema);
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** A private nats-server (never the shared one on 4222), with JetStream in a temp dir. Stopped by PID. */
export class PrivateNats {
  readonly port: number;
  readonly dir: string;
  #proc: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'hub-nats-'));
  }

  static async start(): Promise<PrivateNats> {
    const n = new PrivateNats(await freePort());
    await n.start();
    return n;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const proc = spawn(NATS_SERVER_BIN, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir], {
      stdio: 'ignore',
    });
    this.#proc = proc;
    await waitFor(() => canConnect(this.port), 10_000, 25);
  }

  async stop(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A TCP proxy owned by the test: `cut()` drops every connection and refuses new ones until `restore()`. */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #up = true;
  #hung = false;
  port = 0;

  constructor(targetPort: number, targetHost = '127.0.0.1') {
    this.#server = net.createServer((client) => {
      if (!this.#up) {
        client.destroy();
        return;
      }
      if (this.#hung) {
        // Accept and never answer: the nastiest failure (like a SIGSTOPped server).
        this.#sockets.add(client);
        client.on('error', () => {});
        client.on('close', () => this.#sockets.delete(client));
        return;
      }
      const upstream = net.connect({ host: targetHost, port: targetPort });
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this.port;
  }

  cut(): void {
    this.#up = false;
    for (const s of this.#sockets) s.destroy();
  }

  /** Existing connections stop moving bytes; new ones are accepted and never answered. */
  hang(): void {
    this.#hung = true;
    for (const s of this.#sockets) {
      s.unpipe();
      s.pause();
    }
  }

  restore(): void {
    if (this.#hung) {
      this.#hung = false;
      for (const s of this.#sockets) s.destroy();
    }
    this.#up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export const json = (body: unknown) => ({
  headers: { 'content-type': 'application/json' },
  payload: JSON.stringify(body),
});
