/** Per-test HubTransports answered through the msw ↔ undici bridge, closed after each test. */
import { afterEach, beforeEach } from 'vitest';
import type { ConfigError } from '../../src/errors.js';
import { HubTransport, type TransportSettings } from '../../src/hub/transport.js';
import { silentLogger } from '../../src/logger.js';
import { createMswAgent, type MswAgent } from './lab/msw-undici.js';

export const TRANSPORT_HUB = 'http://hub.test';
export const TRANSPORT_SERVICE = 'tick-aggregator';

/** A hub document of `service` at revision 1. */
export function transportDoc(config: unknown, service = TRANSPORT_SERVICE) {
  return { service_name: service, config, version: '1.0.0', updated_at: 1760864166034, revision: 1 };
}

/** The error a fetch failed with (the test fails if it succeeded). */
export async function failure(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error('expected the fetch to fail');
}

export interface TransportLab {
  /** This test's msw agent (no handlers until the test adds them). */
  readonly agent: MswAgent;
  /** A transport with small test delays, closed after the test. */
  makeTransport(overrides?: Partial<TransportSettings>): HubTransport;
}

export function useTransportLab(): TransportLab {
  let agent: MswAgent | undefined;
  let transports: HubTransport[] = [];
  beforeEach(() => {
    agent = createMswAgent([]);
    transports = [];
  });
  afterEach(async () => {
    await Promise.all(transports.map((t) => t.close()));
    await agent?.close();
  });
  return {
    get agent(): MswAgent {
      return agent!;
    },
    makeTransport(overrides = {}) {
      const transport = new HubTransport({
        hubUrls: [TRANSPORT_HUB],
        apiKey: 'test-key',
        connectTimeoutMs: 1_000,
        requestTimeoutMs: 2_000,
        retries: 2,
        retryBaseDelayMs: 1,
        retryMaxDelayMs: 5,
        maxRetryAfterMs: 10_000,
        keepAliveTimeoutMs: 1_000,
        maxResponseBytes: 4 * 1024 * 1024,
        dispatcher: agent!,
        logger: silentLogger,
        random: () => 0.5,
        ...overrides,
      });
      transports.push(transport);
      return transport;
    },
  };
}
