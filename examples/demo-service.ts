/**
 * The demo service: what a real service of the fleet writes to get its config from the Central Hub.
 * A zod schema, safe defaults in code, and one critical value read from the environment only.
 * Used in-process by `examples/demo.ts` (`npm run demo`).
 */
import { z } from 'zod';
import { ConfigClient, type ServiceDefinition } from '../src/index.js';

export const SERVICE = 'polygon-historical-downloader';

/** The critical (env-only) value: never taken from the hub, never written to disk or logs. */
export const DB_PASSWORD_ENV = 'DEMO_DB_PASSWORD';

export const downloaderSchema = z.object({
  operational: z.object({
    batch_size: z.number().int().positive(),
    gap_check_interval_hours: z.number().positive(),
    max_retries: z.number().int().min(0),
    retry_delay_seconds: z.number().min(0),
    verification_enabled: z.boolean(),
    /** Not in the hub's seed: comes from the defaults below. */
    request_timeout_seconds: z.number().positive(),
  }),
  features: z.object({
    enable_gap_verification: z.boolean(),
    enable_period_tracker: z.boolean(),
    enable_auto_backfill: z.boolean(),
  }),
  database: z.object({
    host: z.string().min(1),
    password: z.string().min(1),
  }),
});

// `satisfies` (not `defineService`, whose return type makes `schema` optional and so loses the typed `get`).
export const downloader = {
  schema: downloaderSchema,
  defaults: {
    operational: { batch_size: 50, gap_check_interval_hours: 1, max_retries: 3, retry_delay_seconds: 5, verification_enabled: true, request_timeout_seconds: 30 },
    features: { enable_gap_verification: true, enable_period_tracker: false, enable_auto_backfill: false },
    database: { host: '127.0.0.1' },
  },
  env: { 'database.password': DB_PASSWORD_ENV },
} satisfies ServiceDefinition<typeof downloaderSchema>;

export interface DemoServiceOptions {
  hubUrl: string;
  apiKey: string;
  /** NATS server for hot reload; without it the poll is the hot-reload path. */
  natsUrl?: string | undefined;
  snapshotDir: string;
  pollIntervalMs: number;
}

export function createDemoClient(options: DemoServiceOptions) {
  return new ConfigClient({
    hubUrl: options.hubUrl,
    apiKey: options.apiKey,
    services: { [SERVICE]: downloader },
    nats: options.natsUrl ? { servers: options.natsUrl } : undefined,
    pollIntervalMs: options.pollIntervalMs,
    snapshotDir: options.snapshotDir,
    // A demo wants quick answers: no long retries against a stopped hub, a fast background recovery.
    startupTimeoutMs: 3_000,
    transport: { connectTimeoutMs: 500, requestTimeoutMs: 2_000, retries: 1, retryBaseDelayMs: 50, retryMaxDelayMs: 200 },
    recovery: { minDelayMs: 200, maxDelayMs: 1_000 },
  });
}

export type DemoClient = ReturnType<typeof createDemoClient>;
