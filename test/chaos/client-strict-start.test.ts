/** C3: strict startup with the hub down rejects with a typed error after the retry budget; no silent downgrade. */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigClient, isConfigError } from '../../src/index.js';
import { freePort } from '../helpers/lab/index.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const clients: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

describe('C3: strict start', () => {
  it('C3: strict start with the hub refusing connections rejects with CONFIG_UNAVAILABLE (cause HUB_UNREACHABLE), never defaults', async () => {
    const port = await freePort(); // nothing listens: connections are refused
    const client = new ConfigClient({
      hubUrl: `http://127.0.0.1:${port}`,
      snapshotDir: false,
      pollIntervalMs: false,
      strictStartup: true,
      transport: { retries: 2, retryBaseDelayMs: 50, retryMaxDelayMs: 200 },
      services: { 'strict-svc': { defaults: { a: 1 } } },
    });
    clients.push(client);
    const started = performance.now();
    const error = await client.get('strict-svc').catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(isConfigError(error) && error.code).toBe('CONFIG_UNAVAILABLE');
    expect((error as Error).cause).toMatchObject({ code: 'HUB_UNREACHABLE' });
    expect(client.status('strict-svc').source).toBeUndefined();
    expectLive('C3', 'strict first gets rejected (hub refusing)', isConfigError(error) ? 1 : 0, 1);
    recordFigure({ row: 'C3', name: 'time to reject (hub refusing, 3 attempts)', value: Math.round(elapsed), unit: 'ms' });
  });

  it('C3: strict start with the hub hung rejects at the startup budget, bounded by our deadline', async () => {
    // A listener that accepts and never answers: a hung hub.
    const sockets: import('node:net').Socket[] = [];
    const hung = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const { port } = hung.address() as import('node:net').AddressInfo;
    try {
      const client = new ConfigClient({
        hubUrl: `http://127.0.0.1:${port}`,
        snapshotDir: false,
        pollIntervalMs: false,
        strictStartup: true,
        startupTimeoutMs: 400,
        transport: { requestTimeoutMs: 5_000 },
        services: { 'strict-hung': { defaults: { a: 1 } } },
      });
      clients.push(client);
      const started = performance.now();
      await expect(client.get('strict-hung')).rejects.toMatchObject({ code: 'CONFIG_UNAVAILABLE' });
      const elapsed = performance.now() - started;
      expect(elapsed).toBeLessThan(2_000);
      expectLive('C3', 'connections the hung hub accepted and never answered', sockets.length);
      recordFigure({ row: 'C3', name: 'time to reject (hub hung, 400 ms startup budget)', value: Math.round(elapsed), unit: 'ms' });
      await client.close();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => hung.close(resolve));
    }
  });
});
