/**
 * The admin page's lab: the real reference hub (PGlite in memory, port 0) with the admin page, real ConfigClients
 * reporting to it, an HTTP helper for "someone else", and a count of the requests the hub answered.
 */
import type { Page } from 'playwright-core';
import { request } from 'undici';
import { z } from 'zod';
import { buildHub, type Hub } from '../../examples/hub/server.js';
import { ConfigClient } from '../../src/index.js';

/**
 * The keys of a lab started without a hub of its own making (scripts/admin-screenshot.ts, outside vitest:
 * hub-fixtures.ts imports vitest). The tests start the lab on `startHub('pglite')` with hub-fixtures' KEYS.
 */
export const SCRIPT_KEYS = {
  admin: { name: 'admin', key: 'admin-screenshot-key-0123456789', scopes: ['read:*', 'write:*'] },
  reader: { name: 'reader', key: 'reader-screenshot-key-0123456789', scopes: ['read:*'] },
};

export interface LabKeys {
  /** read:* and write:* */
  admin: string;
  /** read:* (the consumers') */
  reader: string;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** What the consumers of the lab's services accept. */
export const consumerSchema = z.object({
  operational: z.object({ batch_size: z.number().int().positive(), mode: z.enum(['fast', 'safe']) }),
});

export class AdminLab {
  readonly hub: Hub;
  readonly url: string;
  readonly clients: ConfigClient<any>[] = [];
  /** Responses the hub finished sending (liveness). */
  answered = 0;

  readonly keys: LabKeys;

  private constructor(hub: Hub, url: string, keys: LabKeys) {
    this.hub = hub;
    this.url = url;
    this.keys = keys;
    hub.app.server.on('request', (_req, res) => res.once('finish', () => this.answered++));
  }

  /** On `startHub` (the tests) or, by default, a PGlite hub with SCRIPT_KEYS; listening on port 0. */
  static async start(options: { hub?: () => Promise<Hub>; keys?: LabKeys } = {}): Promise<AdminLab> {
    const hub = await (options.hub ?? (() => buildHub({ apiKeys: Object.values(SCRIPT_KEYS) })))();
    const keys = options.keys ?? { admin: SCRIPT_KEYS.admin.key, reader: SCRIPT_KEYS.reader.key };
    return new AdminLab(hub, await hub.listen({ host: '127.0.0.1', port: 0 }), keys);
  }

  /** One API call (with the admin key unless told); `path` is below /api/v1/config. */
  async api(method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, key: string = this.keys.admin): Promise<Reply> {
    const res = await request(`${this.url}/api/v1/config${path}`, {
      method,
      headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: text.length > 0 ? JSON.parse(text) : undefined };
  }

  /** A running client of `service` with the consumer schema (or another), polling every `pollIntervalMs`. */
  async consumer(
    service: string,
    options: { schema?: z.ZodType; pollIntervalMs?: number; instanceId?: string } = {},
  ): Promise<ConfigClient<any>> {
    const client = new ConfigClient({
      hubUrl: this.url,
      apiKey: this.keys.reader,
      snapshotDir: false,
      pollIntervalMs: options.pollIntervalMs ?? 250,
      ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId }),
      services: { [service]: { schema: options.schema ?? consumerSchema } },
    });
    this.clients.push(client);
    await client.get(service).catch(() => {});
    return client;
  }

  /**
   * Waits until the fleet view lists `count` instances of `service` with their schemas, and the dry run
   * checks against them (the client uploads its schema when the hub asks for it).
   */
  async fleetKnows(service: string, count = 1, candidate: unknown = { operational: { batch_size: 1, mode: 'fast' } }): Promise<void> {
    await waitFor(async () => {
      const view = await this.api('GET', `/${service}/instances`);
      const listed: { schema_hash: string | null }[] = view.body?.instances ?? [];
      return listed.length === count && listed.every((i) => i.schema_hash !== null);
    }, 10_000, 50);
    await waitFor(async () => {
      const r = await this.api('POST', `/${service}/validate`, candidate);
      return (r.body?.consumers?.length ?? 0) > 0;
    }, 10_000, 50);
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((c) => c.close()));
    await this.hub.close();
  }
}

/** Opens the admin page, enters the key in its form and waits for the services list. */
export async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(`${url}/admin`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Use key' }).click();
  await page.getByRole('heading', { level: 1, name: 'Services' }).waitFor();
}

/** Opens a service's view (by its link in the list) and waits for its config in the editor. */
export async function openService(page: Page, service: string): Promise<void> {
  await page.getByRole('link', { name: service, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: service }).waitFor();
  await page.waitForFunction(() => ((document.getElementById('editor') as HTMLTextAreaElement | null)?.value ?? '').length > 0);
}
