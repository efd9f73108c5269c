/**
 * The client runtime's README promises that the issue-9 probes found broken, each proven through the msw
 * bridge (the hub mocked at the HTTP layer, the real client and a real snapshot directory).
 */
import { readdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ConfigClientOptions, type ConfigError, ConfigClient } from '../../src/index.js';
import { useMswClients } from '../helpers/msw-clients.js';

const HUB = 'http://hub.test';
const SERVICE = 'svc-promises';
const lab = useMswClients('chc-promises-');

const schema = z.object({
  operational: z.object({ batch_size: z.number().int().positive(), starts: z.coerce.date().optional() }),
  database: z.object({ host: z.string(), password: z.string() }),
});
const services = {
  [SERVICE]: {
    schema,
    defaults: { operational: { batch_size: 100 } },
    env: { 'database.host': 'DB_HOST', 'database.password': 'DB_PASSWORD' },
  },
};

function doc(config: unknown, revision: number, extra: Record<string, unknown> = {}) {
  return { service_name: SERVICE, config, version: '1.0.0', updated_at: 1_760_000_000_000 + revision, revision, ...extra };
}

function makeClient(overrides: Partial<ConfigClientOptions<typeof services>> = {}) {
  const client = new ConfigClient({
    hubUrl: HUB,
    apiKey: 'k',
    snapshotDir: lab.snapshotDir,
    pollIntervalMs: false,
    transport: { dispatcher: lab.agent, retries: 0, retryBaseDelayMs: 1, retryMaxDelayMs: 2 },
    recovery: { minDelayMs: 20, maxDelayMs: 40, unauthorizedDelayMs: 60_000 },
    env: { DB_HOST: 'db.internal', DB_PASSWORD: 'canary-secret-123' },
    services,
    ...overrides,
  });
  lab.clients.push(client);
  const errors: ConfigError[] = [];
  client.onError((e) => errors.push(e));
  return { client, errors };
}

const route = (resolver: Parameters<typeof http.get>[1]) => http.get(`${HUB}/api/v1/config/:service`, resolver);
const snapshotFile = () => join(lab.snapshotDir, `${SERVICE}.json`);

describe('onChange: it fires after the new value is committed', () => {
  it('a get() inside an onChange listener returns the new value, and status() agrees with it', async () => {
    let rev = 1;
    lab.agent.use(route(() => HttpResponse.json(doc({ operational: { batch_size: rev } }, rev))));
    const { client } = makeClient();
    await client.get(SERVICE);
    const seen: Array<{ inside: number; next: number; revision: number | undefined }> = [];
    client.onChange(SERVICE, async (next) => {
      const inside = await client.get(SERVICE);
      seen.push({ inside: inside.operational.batch_size, next: next.operational.batch_size, revision: client.status(SERVICE).revision });
    });
    rev = 2;
    await client.refresh(SERVICE);
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual([{ inside: 2, next: 2, revision: 2 }]);
  });

  it('a change of a field the schema transforms (z.coerce.date()) is detected on the plain JSON and fires onChange', async () => {
    let starts = '2026-01-01T00:00:00.000Z';
    let rev = 1;
    lab.agent.use(route(() => HttpResponse.json(doc({ operational: { batch_size: 1, starts } }, rev))));
    const { client } = makeClient();
    const first = await client.get(SERVICE);
    expect(first.operational.starts?.toISOString()).toBe(starts);
    const changes: string[][] = [];
    client.onChange(SERVICE, (_n, _p, change) => changes.push(change.changedPaths));
    starts = '2026-06-01T00:00:00.000Z';
    rev = 2;
    const next = await client.refresh(SERVICE);
    expect(next.operational.starts?.toISOString()).toBe(starts);
    expect(changes).toEqual([['operational.starts']]);
  });
});

describe('explain: values at critical paths are shown as [redacted]', () => {
  it.each(['', '.', 'database', 'database.password'])('explain(service, %j) never returns an env secret', async (path) => {
    lab.agent.use(route(() => HttpResponse.json(doc({ operational: { batch_size: 7 } }, 1))));
    const { client } = makeClient();
    await client.get(SERVICE);
    const shown = client.explain(SERVICE, path);
    expect(JSON.stringify(shown)).not.toContain('canary-secret-123');
    expect(JSON.stringify(shown)).not.toContain('db.internal');
    expect(shown.layer).not.toBe('absent');
  });
});

describe('fallback chain and the hub as the authority', () => {
  it('a snapshot with an inflated revision does not freeze the client: the hub answer replaces it and the regression is reported', async () => {
    await writeFile(
      snapshotFile(),
      JSON.stringify({ format: 1, service: SERVICE, config: { operational: { batch_size: 9 } }, version: 'x', updated_at: 1, revision: 1_000_000, saved_at: 1 }),
      { mode: 0o600 },
    );
    let requests = 0;
    // The hub is down at boot (the snapshot is served), then back with revision 3.
    lab.agent.use(route(() => (++requests === 1 ? HttpResponse.error() : HttpResponse.json(doc({ operational: { batch_size: 3 } }, 3)))));
    const { client, errors } = makeClient();
    expect((await client.get(SERVICE)).operational.batch_size).toBe(9);
    expect(client.status(SERVICE)).toMatchObject({ source: 'snapshot', revision: 1_000_000 });
    await vi_waitFor(() => client.status(SERVICE).source === 'hub');
    expect((await client.get(SERVICE)).operational.batch_size).toBe(3);
    expect(client.status(SERVICE)).toMatchObject({ source: 'hub', revision: 3, stale: false });
    expect(errors.map((e) => e.code)).toContain('HUB_REVISION_REGRESSED');
  });

  it('a 404 removes the snapshot, so a later restart during an outage does not boot a deleted config', async () => {
    let deleted = false;
    lab.agent.use(route(() => (deleted ? HttpResponse.json({ detail: 'not found' }, { status: 404 }) : HttpResponse.json(doc({ operational: { batch_size: 5 } }, 1)))));
    const { client } = makeClient();
    await client.get(SERVICE);
    await vi_waitFor(async () => (await readdir(lab.snapshotDir)).includes(`${SERVICE}.json`));
    deleted = true;
    const after = await client.refresh(SERVICE);
    expect(after.operational.batch_size).toBe(100);
    expect(client.status(SERVICE)).toMatchObject({ source: 'defaults', lastErrorCode: 'CONFIG_NOT_FOUND' });
    await vi_waitFor(async () => !(await readdir(lab.snapshotDir)).includes(`${SERVICE}.json`));
  });

  it('close() racing a completing fetch commits nothing and writes no snapshot', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    lab.agent.use(
      route(async () => {
        await gate;
        return HttpResponse.json(doc({ operational: { batch_size: 5 } }, 1));
      }),
    );
    const { client } = makeClient({ startupTimeoutMs: 5_000 });
    const pending = client.get(SERVICE).catch((e: ConfigError) => e.code);
    await new Promise((r) => setTimeout(r, 20));
    const closing = client.close();
    release();
    await closing;
    expect(await pending).toBe('CLIENT_CLOSED');
    await new Promise((r) => setTimeout(r, 30));
    expect(await readdir(lab.snapshotDir)).toEqual([]);
  });

  it('droppedCriticalPaths survives a restart from the snapshot', async () => {
    lab.agent.use(route(() => HttpResponse.json(doc({ operational: { batch_size: 5 }, database: { password: 'from-hub' } }, 1))));
    const first = makeClient();
    await first.client.get(SERVICE);
    expect(first.client.status(SERVICE).droppedCriticalPaths).toEqual(['database.password']);
    await first.client.close();
    const text = await readFile(snapshotFile(), 'utf8');
    expect(text).not.toContain('from-hub');
    lab.agent.resetHandlers(route(() => HttpResponse.error()));
    const second = makeClient();
    await second.client.get(SERVICE);
    expect(second.client.status(SERVICE)).toMatchObject({ source: 'snapshot', droppedCriticalPaths: ['database.password'] });
  });
});

describe('onError: silent misconfiguration is heard once per change of state', () => {
  it('a wrong API key (401) is reported once, not once per retry, and the status says UNAUTHORIZED', async () => {
    let requests = 0;
    lab.agent.use(
      route(() => {
        requests++;
        return new HttpResponse('<html>denied</html>', { status: 401, headers: { 'content-type': 'text/html' } });
      }),
    );
    const { client, errors } = makeClient({ recovery: { minDelayMs: 5, maxDelayMs: 10, unauthorizedDelayMs: 10 } });
    await client.get(SERVICE);
    await vi_waitFor(() => requests >= 4);
    expect(errors.filter((e) => e.code === 'UNAUTHORIZED')).toHaveLength(1);
    expect(client.status(SERVICE)).toMatchObject({ source: 'defaults', stale: true, lastErrorCode: 'UNAUTHORIZED' });
  });

  it('an unreachable hub and a missing service are each reported once', async () => {
    let mode: 'down' | 'missing' = 'down';
    let requests = 0;
    lab.agent.use(
      route(() => {
        requests++;
        return mode === 'down' ? HttpResponse.error() : HttpResponse.json({ detail: 'no such service' }, { status: 404 });
      }),
    );
    const { client, errors } = makeClient();
    await client.get(SERVICE);
    await vi_waitFor(() => requests >= 3);
    expect(errors.filter((e) => e.code === 'HUB_UNREACHABLE')).toHaveLength(1);
    mode = 'missing';
    await vi_waitFor(() => client.status(SERVICE).lastErrorCode === 'CONFIG_NOT_FOUND');
    await client.refresh(SERVICE);
    await client.refresh(SERVICE);
    expect(errors.filter((e) => e.code === 'CONFIG_NOT_FOUND')).toHaveLength(1);
  });

  it('a failed snapshot write is reported (SNAPSHOT_WRITE_FAILED)', async () => {
    let rev = 1;
    lab.agent.use(route(() => HttpResponse.json(doc({ operational: { batch_size: rev } }, rev))));
    await chmod(lab.snapshotDir, 0o500);
    const { client, errors } = makeClient();
    try {
      await client.get(SERVICE);
      rev = 2;
      await client.refresh(SERVICE);
      await vi_waitFor(() => errors.some((e) => e.code === 'SNAPSHOT_WRITE_FAILED') || process.getuid?.() === 0);
    } finally {
      await chmod(lab.snapshotDir, 0o700);
    }
    // root ignores directory permissions: the write then succeeds, which is no failure to report.
    if (process.getuid?.() !== 0) expect(errors.filter((e) => e.code === 'SNAPSHOT_WRITE_FAILED')).toHaveLength(1);
  });

  it('a missing critical env variable is named in the error', async () => {
    lab.agent.use(route(() => HttpResponse.json(doc({ operational: { batch_size: 1 } }, 1))));
    const { client } = makeClient({ env: { DB_HOST: 'db.internal' } });
    const error = (await client.get(SERVICE).catch((e: unknown) => e)) as ConfigError;
    expect(error.code).toBe('CONFIG_UNAVAILABLE');
    expect(`${error.message} ${String((error.cause as Error | undefined)?.message)}`).toContain('DB_PASSWORD');
  });
});

async function vi_waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
