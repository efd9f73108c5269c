/**
 * The background recovery of one service (ServiceRuntime), driven with fake timers and a scripted
 * transport: retries back off while the hub fails, a notice brings a distant retry forward (bounded),
 * and a revoked key is never hammered.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, HubHttpError } from '../../src/errors.js';
import type { FetchResult, HubTransport } from '../../src/hub/transport.js';
import { resolveOptions } from '../../src/options.js';
import { ServiceRuntime } from '../../src/runtime/service-runtime.js';

const NAME = 'svc-recovery';

function setup(fail: () => ConfigError | undefined) {
  let calls = 0;
  const transport = {
    fetchConfig: async (): Promise<FetchResult> => {
      calls++;
      const error = fail();
      if (error) throw error;
      return {
        kind: 'document',
        document: { service_name: NAME, config: { a: 2 }, version: '1', updated_at: 10, revision: 2 },
        etag: undefined,
        hubUrl: 'http://hub.test/',
      };
    },
  } as unknown as HubTransport;
  const fresh = new Map<string, Promise<unknown>>();
  const runtime = new ServiceRuntime({
    name: NAME,
    definition: { defaults: { a: 1 } },
    options: resolveOptions({ hubUrl: 'http://hub.test', snapshotDir: false, recovery: { minDelayMs: 100, maxDelayMs: 60_000, unauthorizedDelayMs: 60_000 } }),
    transport,
    snapshots: undefined,
    fresh: { set: (k, v) => void fresh.set(k, v), has: (k) => fresh.has(k) },
    reportError: () => undefined,
    isClosed: () => false,
  });
  return { runtime, calls: () => calls };
}

const notice = { service_name: NAME, version: '1', updated_at: 10, revision: 2 };

beforeEach(() => {
  vi.useFakeTimers();
  // The top of every jitter range: the recovery delay grows as fast as the backoff allows.
  vi.spyOn(Math, 'random').mockReturnValue(0.999);
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('ServiceRuntime recovery', () => {
  it('backs off while the hub fails; a notice brings a distant retry forward, at most one request per minDelayMs', async () => {
    let down = true;
    const { runtime, calls } = setup(() => (down ? new ConfigError('HUB_UNREACHABLE', 'down') : undefined));
    await runtime.get();
    expect(runtime.status()).toMatchObject({ source: 'defaults', lastErrorCode: 'HUB_UNREACHABLE' });
    // Let the backoff grow: delays ≈ 200, 300, 500, 900, 1 700, 3 300, 6 500 ms.
    await vi.advanceTimersByTimeAsync(13_500);
    const before = calls();
    expect(before).toBe(8);
    // The next retry is now ~12.9 s away. A notice storm while failing must not become a request per notice…
    for (let i = 0; i < 1000; i++) runtime.handleNotice(notice, false);
    expect(calls()).toBe(before);
    // …but the hub may be back: one retry comes within minDelayMs instead of seconds later.
    down = false;
    await vi.advanceTimersByTimeAsync(100);
    expect(calls()).toBe(before + 1);
    expect(runtime.status()).toMatchObject({ source: 'hub', revision: 2, lastErrorCode: undefined });
  });

  it('never hammers a hub that answers 401: notices do not expedite, retries wait unauthorizedDelayMs', async () => {
    const { runtime, calls } = setup(() => new HubHttpError('UNAUTHORIZED', 401, 'bad key'));
    await runtime.get();
    expect(calls()).toBe(1);
    for (let i = 0; i < 1000; i++) runtime.handleNotice(notice, false);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(45_000);
    expect(calls()).toBe(2);
  });
});
