/** resolveOptions(): unknown keys are refused with INVALID_OPTIONS, naming the key and the option meant. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigClient, type ConfigClientOptions } from '../../src/index.js';
import { resolveOptions } from '../../src/options.js';

const BASE = { hubUrl: 'http://127.0.0.1:7000', snapshotDir: false } as const;

/** The INVALID_OPTIONS message `options` are refused with (deliberately untyped: these are mistakes). */
function refusal(options: Record<string, unknown>): string {
  try {
    resolveOptions(options as unknown as ConfigClientOptions);
  } catch (error) {
    expect(error).toMatchObject({ code: 'INVALID_OPTIONS' });
    return (error as Error).message;
  }
  throw new Error(`options were accepted: ${JSON.stringify(options)}`);
}

describe('options: unknown keys are refused, not silently ignored', () => {
  it('refuses an unknown top-level option (snapshot: false) and suggests the option meant', () => {
    expect(refusal({ hubUrl: BASE.hubUrl, snapshot: false })).toBe('unknown option "snapshot" (did you mean "snapshotDir"?)');
  });

  it('refuses a mis-cased option (pollIntervalMS) and suggests pollIntervalMs', () => {
    expect(refusal({ ...BASE, pollIntervalMS: 5_000 })).toBe('unknown option "pollIntervalMS" (did you mean "pollIntervalMs"?)');
  });

  it('refuses an unknown key inside transport, naming its path', () => {
    expect(refusal({ ...BASE, transport: { requestTimeoutMS: 100 } })).toBe(
      'unknown option "transport.requestTimeoutMS" (did you mean "transport.requestTimeoutMs"?)',
    );
  });

  it('refuses an unknown key inside recovery, naming its path', () => {
    expect(refusal({ ...BASE, recovery: { minDelay: 100 } })).toBe(
      'unknown option "recovery.minDelay" (did you mean "recovery.minDelayMs"?)',
    );
  });

  it('refuses an unknown key inside nats, naming its path', () => {
    expect(refusal({ ...BASE, nats: { server: 'nats://127.0.0.1:4222' } })).toBe(
      'unknown option "nats.server" (did you mean "nats.servers"?)',
    );
  });

  it('refuses an unknown key inside a service definition, naming the service', () => {
    expect(refusal({ ...BASE, services: { 'tick-aggregator': { schemas: z.object({}) } } })).toBe(
      'unknown option "services.tick-aggregator.schemas" (did you mean "services.tick-aggregator.schema"?)',
    );
  });

  it('names an unknown key with no close match without a suggestion', () => {
    expect(refusal({ ...BASE, zzzqqq: 1 })).toBe('unknown option "zzzqqq"');
  });

  it('refuses a section that is not an object', () => {
    expect(refusal({ ...BASE, transport: 5 })).toBe('transport must be an object');
  });

  it('the ConfigClient constructor throws INVALID_OPTIONS for an unknown option', () => {
    expect(() => new ConfigClient({ ...BASE, pollIntervalMS: 5 } as unknown as ConfigClientOptions)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS' }),
    );
  });

  it('still accepts every documented option, and nats.connectOptions as nats takes them', () => {
    expect(() =>
      resolveOptions({
        hubUrl: ['http://127.0.0.1:7000', 'http://127.0.0.1:7001'],
        apiKey: 'k',
        services: { 'tick-aggregator': { schema: z.object({ a: z.number() }), defaults: { a: 1 }, env: { a: 'A' } } },
        cacheTtlMs: 1,
        startupTimeoutMs: 0,
        strictStartup: true,
        snapshotDir: false,
        transport: {
          connectTimeoutMs: 1,
          requestTimeoutMs: 1,
          retries: 0,
          retryBaseDelayMs: 0,
          retryMaxDelayMs: 0,
          maxRetryAfterMs: 0,
          keepAliveTimeoutMs: 1,
          maxResponseBytes: 1,
          dispatcher: undefined,
        },
        recovery: { minDelayMs: 1, maxDelayMs: 1, unauthorizedDelayMs: 1 },
        nats: { servers: 'nats://127.0.0.1:4222', subjectPrefix: 'x.y', applyPayload: true, connectOptions: { name: 'n', pingInterval: 1 } },
        pollIntervalMs: false,
        env: {},
        logger: {},
      }),
    ).not.toThrow();
  });
});
