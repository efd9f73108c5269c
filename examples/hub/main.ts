/**
 * `npm run hub`: the reference Central Hub. Prints exactly one line to stdout
 * (`hub listening on <url> (store: pglite|postgres, nats: on|off)`); logs go to stderr.
 */
import { z } from 'zod';
import { apiKeysSchema } from './auth.js';
import { natsAuthFromEnv } from './nats-auth.js';
import { noticeSignerFromEnv } from './notice-signer.js';
import { parseSecretKeyWords } from './secrets.js';
import { buildHub } from './server.js';

const envSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65_535).default(7000),
  DATABASE_URL: z.string().min(1).optional(),
  HUB_DATA_DIR: z.string().min(1).optional(),
  HUB_PGLITE_TEMPLATE_DIR: z.string().min(1).optional(),
  HUB_PG_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a plain lower-case identifier').optional(),
  NATS_URL: z.string().min(1).optional(),
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().min(1).optional(),
  NATS_TOKEN: z.string().min(1).optional(),
  NATS_CREDS: z.string().min(1).optional(),
  NATS_NKEY_SEED: z.string().min(1).optional(),
  HUB_NOTICE_SIGNING_KEY: z.string().min(1).optional(),
  HUB_NOTICE_KEY_ID: z.string().min(1).optional(),
  HUB_API_KEYS: z.string().min(1).optional(),
  DISABLE_AUTH: z.enum(['true', 'false', '1', '0', '']).optional(),
  HUB_SKIP_MIGRATIONS: z.enum(['true', 'false', '1', '0']).optional(),
  HUB_OUTBOX_RETENTION_MS: z.coerce.number().int().min(0).optional(),
  HUB_TRUST_PROXY: z.string().min(1).optional(),
  HUB_SECRET_KEY_WORDS: z.string().min(1).optional(),
  HUB_REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  HUB_HEADERS_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  HUB_SOCKET_IDLE_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  HUB_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  HUB_SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().optional(),
  HUB_METRICS_KEY: z.string().min(1).optional(),
  HUB_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/**
 * `HUB_TRUST_PROXY`: `true`/`false`, a hop count (`1`), or comma-separated proxy addresses/CIDRs
 * (`10.0.0.0/8,127.0.0.1`); Fastify's `trustProxy` (README).
 */
function parseTrustProxy(text: string | undefined): boolean | number | string[] | undefined {
  if (text === undefined) return undefined;
  const t = text.trim().toLowerCase();
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (/^\d+$/.test(t)) return Number(t);
  return t.split(',').map((a) => a.trim()).filter((a) => a.length > 0);
}

function fail(message: string): never {
  process.stderr.write(`hub: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const envParsed = envSchema.safeParse(
    Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== '')),
  );
  if (!envParsed.success) fail(`bad environment: ${envParsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const env = envParsed.data;
  let apiKeys: z.output<typeof apiKeysSchema> = [];
  if (env.HUB_API_KEYS !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(env.HUB_API_KEYS);
    } catch {
      fail('HUB_API_KEYS is not valid JSON');
    }
    const parsed = apiKeysSchema.safeParse(json);
    // Never echo the value: it holds keys.
    if (!parsed.success) fail(`HUB_API_KEYS is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    apiKeys = parsed.data;
  }
  const disableAuth = env.DISABLE_AUTH === 'true' || env.DISABLE_AUTH === '1';
  if (!disableAuth && apiKeys.length === 0) {
    process.stderr.write('hub: no HUB_API_KEYS and DISABLE_AUTH is not true: every API request will get 401\n');
  }

  let natsOptions: ReturnType<typeof natsAuthFromEnv>;
  try {
    natsOptions = natsAuthFromEnv(env);
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  let noticeSigner: ReturnType<typeof noticeSignerFromEnv>;
  try {
    noticeSigner = noticeSignerFromEnv(env);
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }

  const hub = await buildHub({
    databaseUrl: env.DATABASE_URL,
    dataDir: env.HUB_DATA_DIR,
    pgliteTemplateDir: env.HUB_PGLITE_TEMPLATE_DIR === 'off' ? false : env.HUB_PGLITE_TEMPLATE_DIR,
    pgSchema: env.HUB_PG_SCHEMA,
    natsUrl: env.NATS_URL,
    natsOptions,
    noticeSigningKey: env.HUB_NOTICE_SIGNING_KEY,
    noticeKeyId: noticeSigner?.keyId,
    apiKeys,
    disableAuth,
    migrate: !(env.HUB_SKIP_MIGRATIONS === 'true' || env.HUB_SKIP_MIGRATIONS === '1'),
    outboxRetentionMs: env.HUB_OUTBOX_RETENTION_MS,
    trustProxy: parseTrustProxy(env.HUB_TRUST_PROXY),
    secretKeyPatterns: env.HUB_SECRET_KEY_WORDS === undefined ? undefined : parseSecretKeyWords(env.HUB_SECRET_KEY_WORDS),
    requestTimeoutMs: env.HUB_REQUEST_TIMEOUT_MS,
    headersTimeoutMs: env.HUB_HEADERS_TIMEOUT_MS,
    socketIdleTimeoutMs: env.HUB_SOCKET_IDLE_TIMEOUT_MS,
    keepAliveTimeoutMs: env.HUB_KEEP_ALIVE_TIMEOUT_MS,
    shutdownGraceMs: env.HUB_SHUTDOWN_GRACE_MS,
    metricsApiKey: env.HUB_METRICS_KEY,
    logger: { level: env.HUB_LOG_LEVEL, stream: process.stderr },
  });
  if (noticeSigner) hub.app.log.info({ kid: noticeSigner.keyId }, 'signing NATS notices (Ed25519)');
  const url = await hub.listen({ host: env.HOST, port: env.PORT });
  process.stdout.write(`hub listening on ${url} (store: ${hub.storeKind}, nats: ${hub.natsEnabled ? 'on' : 'off'})\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    hub.app.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      process.stderr.write('hub: shutdown took too long\n');
      process.exit(1);
    }, 10_000);
    force.unref();
    hub.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`hub: shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGHUP', () => stop('SIGHUP'));
  // Under `npm run hub` the hub is npm's child (the script `exec`s node): a SIGKILLed npm cannot forward a
  // signal, and the hub was left running, port held (issue 12). Its parent changing means npm is gone. Only
  // under npm: a hub started by hand with `nohup … &` must outlive its shell.
  if (process.env.npm_lifecycle_event === 'hub') {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) stop('parent exited');
    }, 500).unref();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`hub: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
