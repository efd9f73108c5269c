import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import type { KeyObject } from 'node:crypto';
import type { ConnectionOptions, NatsConnection } from 'nats';
import { type ApiKeyConfig, Authenticator } from './auth.js';
import { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_MAX_DEPTH, parseJsonBody, secretKeyMatcher } from './body.js';
import { Broadcaster } from './broadcaster.js';
import { NoticeSigner } from './notice-signer.js';
import { HubError, isDbUnavailable } from './errors.js';
import { configRoutes } from './routes/config.js';
import type { RouteContext } from './routes/context.js';
import { healthRoutes } from './routes/health.js';
import { historyRoutes } from './routes/history.js';
import { loadSeed } from './seed.js';
import { createPgliteStore } from './store/pglite.js';
import { createPostgresStore } from './store/postgres.js';
import type { SqlStore } from './store/sql-store.js';

export const API_PREFIX = '/api/v1/config';

export interface HubOptions {
  /** PostgreSQL through `pg` when set; embedded PGlite otherwise. */
  databaseUrl?: string | undefined;
  /** PGlite only: a directory for a persistent database. @default in memory */
  dataDir?: string | undefined;
  /** Run everything in this schema via `search_path` (created if absent); tests use one per file. */
  pgSchema?: string | undefined;
  /** NATS servers to publish to (the hub owns and drains this connection). */
  natsUrl?: string | undefined;
  /** Or an existing NATS connection (not closed by the hub). */
  natsConnection?: NatsConnection | undefined;
  /** Extra nats options for the `natsUrl` connection: credentials (see `natsAuthFromEnv` in nats-auth.ts), TLS. */
  natsOptions?: Partial<ConnectionOptions> | undefined;
  /**
   * Ed25519 private key that signs every notice (`kid` + `sig`, README "Signed notices"): PEM, base64
   * PKCS#8 DER or a KeyObject. Unset: notices go unsigned, as the original hub's.
   */
  noticeSigningKey?: string | KeyObject | undefined;
  /** The `kid` of that key (rotation: clients list old and new ids). @default derived from the public key */
  noticeKeyId?: string | undefined;
  /** API keys; ignored when `disableAuth`. With neither, every API request is 401. */
  apiKeys?: readonly ApiKeyConfig[] | undefined;
  /** @default false */
  disableAuth?: boolean | undefined;
  /** Key fragments rejected with 422. @default DEFAULT_SECRET_KEY_PATTERNS */
  secretKeyPatterns?: readonly string[] | undefined;
  /** A pino-compatible logger, or Fastify logger options / `true`. @default false (silent) */
  logger?: FastifyBaseLogger | FastifyServerOptions['logger'] | undefined;
  /** @default 1000 */
  relayIntervalMs?: number | undefined;
  /**
   * Apply `migrations/*.sql` at boot (needs a role that owns the schema and its tables). `false`: only
   * check that `hub_schema_migrations` lists every migration file (boot fails with a
   * `SchemaNotMigratedError` otherwise) and do not create `pgSchema`; for a restricted runtime role
   * (README "Run as a restricted role"). @default true
   */
  migrate?: boolean | undefined;
  /**
   * Published outbox rows older than this are deleted by the relay, in batches of 200; pending rows are
   * never deleted. @default 86_400_000 (24 h)
   */
  outboxRetentionMs?: number | undefined;
  /**
   * Seed the three services when absent. Needs only INSERT on service_configs (and what its triggers
   * write), so it also works with `migrate: false` under the runtime grants. @default true
   */
  seed?: boolean | undefined;
  /** @default 1 MiB */
  bodyLimitBytes?: number | undefined;
  /** @default 64 */
  maxDepth?: number | undefined;
  /** Failed auth attempts per address and minute before 429. @default 20 */
  authFailureLimit?: number | undefined;
  /** pg statement timeout. @default 5000 */
  statementTimeoutMs?: number | undefined;
  /** pg connection timeout. @default 3000 */
  connectionTimeoutMs?: number | undefined;
}

export interface Hub {
  readonly app: FastifyInstance;
  readonly store: SqlStore;
  readonly broadcaster: Broadcaster;
  /** Signs the notices, when `noticeSigningKey` is set (its `keyId` and `publicKeyPem` are what clients need). */
  readonly noticeSigner: NoticeSigner | undefined;
  /** `pglite` or `postgres`. */
  readonly storeKind: 'pglite' | 'postgres';
  /** Whether NATS broadcast is configured. */
  readonly natsEnabled: boolean;
  /** Starts listening; resolves with the URL (the real port when `port` is 0). */
  listen(options?: { host?: string; port?: number }): Promise<string>;
  /** Stops accepting, drains requests, flushes the outbox relay, closes NATS (if owned) and the store. Idempotent. */
  close(): Promise<void>;
}

function isLoggerInstance(value: unknown): value is FastifyBaseLogger {
  return typeof value === 'object' && value !== null && typeof (value as { child?: unknown }).child === 'function';
}

export async function buildHub(options: HubOptions = {}): Promise<Hub> {
  const logger = options.logger;
  const retention = options.outboxRetentionMs;
  // Before the store opens: a bad key fails fast and leaks nothing.
  const noticeSigner =
    options.noticeSigningKey === undefined
      ? undefined
      : new NoticeSigner({ key: options.noticeSigningKey, keyId: options.noticeKeyId });
  if (retention !== undefined && (!Number.isFinite(retention) || retention < 0)) {
    throw new TypeError('outboxRetentionMs must be a finite number >= 0');
  }
  const store =
    options.databaseUrl !== undefined
      ? await createPostgresStore({
          connectionString: options.databaseUrl,
          schema: options.pgSchema,
          statementTimeoutMs: options.statementTimeoutMs,
          connectionTimeoutMs: options.connectionTimeoutMs,
          createSchema: options.migrate !== false,
          onError: (error) => app?.log.warn({ err: error.message }, 'idle database connection failed'),
        })
      : await createPgliteStore({ dataDir: options.dataDir, schema: options.pgSchema });
  // Assigned once the store exists; the pool's error handler reads it.
  let app: FastifyInstance | undefined;
  try {
    if (options.migrate === false) await store.assertMigrated();
    else await store.migrate();
    if (options.seed !== false) await store.seed(await loadSeed());
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }

  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  app = Fastify({
    ...(isLoggerInstance(logger) ? { loggerInstance: logger } : { logger: logger ?? false }),
    bodyLimit,
    // Long names must reach our validator (→ 400), not Fastify's router (→ 404). No ignoreTrailingSlash:
    // it turned `POST /rollback/` or `DELETE /history/` (an empty service name) into a write to the
    // services named `rollback` / `history`; the list is served at /api/v1/config and /api/v1/config/ anyway.
    routerOptions: { maxParamLength: 1000 },
    return503OnClosing: true,
    // Errors Fastify raises before routing (a malformed percent-encoding in the URL) bypass the error
    // handler and were rendered as Fastify's {error, code, message, statusCode}; keep them {detail}
    // like every other error, without echoing the URL.
    frameworkErrors: (error, _request, reply) => {
      const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 400;
      // The reply's generics are unresolved this early; it is a plain reply.
      (reply as unknown as FastifyReply)
        .code(status)
        .send({ detail: error.code === 'FST_ERR_BAD_URL' ? 'malformed URL' : 'bad request' });
    },
  }) as unknown as FastifyInstance;
  const server = app;

  const broadcaster = new Broadcaster({
    store,
    natsUrl: options.natsUrl,
    natsConnection: options.natsConnection,
    natsOptions: options.natsOptions,
    signer: noticeSigner,
    relayIntervalMs: options.relayIntervalMs,
    outboxRetentionMs: options.outboxRetentionMs,
    onError: (message, error) => server.log.warn({ err: error instanceof Error ? error.message : String(error) }, message),
  });

  const ctx: RouteContext = {
    store,
    broadcaster,
    authenticator:
      options.disableAuth === true
        ? undefined
        : new Authenticator({ keys: options.apiKeys ?? [], failureLimit: options.authFailureLimit }),
    isSecretKey: secretKeyMatcher(options.secretKeyPatterns),
    maxDepth,
  };

  // Only JSON bodies: everything else (text/plain, forms) is 415 by Fastify itself.
  server.removeAllContentTypeParsers();
  server.addContentTypeParser(
    ['application/json', 'application/merge-patch+json'],
    // Bytes, not a string: Fastify's decoding turns invalid UTF-8 into U+FFFD; parseJsonBody refuses it.
    { parseAs: 'buffer', bodyLimit },
    (request, body, done) => {
      if (body.length === 0) {
        if (request.method === 'DELETE') done(null, undefined);
        else done(new HubError(400, 'body is empty; send a JSON object'), undefined);
        return;
      }
      try {
        done(null, parseJsonBody(body, maxDepth));
      } catch (error) {
        done(error as Error, undefined);
      }
    },
  );

  server.setErrorHandler((error, request, reply) => {
    if (error instanceof HubError) {
      reply.headers(error.headers);
      return reply.code(error.status).send({ detail: error.detail, ...error.extra });
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return reply.code(status).send({ detail: (error as Error).message });
    }
    if (isDbUnavailable(error)) {
      request.log.warn({ err: (error as Error).message }, 'database unavailable');
      return reply.code(503).header('retry-after', '2').send({ detail: 'database unavailable, retry later' });
    }
    request.log.error({ err: (error as Error).message }, 'unexpected error');
    return reply.code(500).send({ detail: 'internal error' });
  });
  server.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ detail: `no route ${request.method} ${request.url.split('?')[0]}` });
  });

  await server.register(healthRoutes, { ctx });
  await server.register(configRoutes, { ctx, prefix: API_PREFIX });
  await server.register(historyRoutes, { ctx, prefix: API_PREFIX });
  await server.ready();
  broadcaster.start();

  let closing: Promise<void> | undefined;
  return {
    app: server,
    store,
    broadcaster,
    noticeSigner,
    storeKind: store.kind,
    natsEnabled: broadcaster.enabled,
    async listen({ host = '127.0.0.1', port = 7000 } = {}) {
      await server.listen({ host, port });
      const address = server.server.address();
      if (address === null || typeof address === 'string') return String(address);
      const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${h}:${address.port}`;
    },
    close() {
      closing ??= (async () => {
        await server.close();
        await broadcaster.close();
        await store.close();
      })();
      return closing;
    },
  };
}
