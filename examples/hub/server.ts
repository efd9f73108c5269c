import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { KeyObject } from 'node:crypto';
import type { ConnectionOptions, NatsConnection } from 'nats';
import { type ApiKeyConfig, Authenticator } from './auth.js';
import { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_MAX_DEPTH, parseJsonBody, secretKeyMatcher } from './body.js';
import { Broadcaster } from './broadcaster.js';
import { NoticeSigner } from './notice-signer.js';
import { HubError, isDbUnavailable } from './errors.js';
import { Fleet } from './fleet/fleet.js';
import { adminRoutes } from './routes/admin.js';
import { configRoutes } from './routes/config.js';
import { authenticateRequest, documentOf, etag, type RouteContext } from './routes/context.js';
import { fleetRoutes } from './routes/fleet.js';
import { healthRoutes } from './routes/health.js';
import { docOnlySchemaController, registerOpenApi } from './openapi/plugin.js';
import { HubMetrics, resolveMetricsOptions } from './metrics/hub-metrics.js';
import { metricsRoutes } from './metrics/route.js';
import { historyRoutes } from './routes/history.js';
import { schemaRoutes } from './routes/schemas.js';
import { loadSeed } from './seed.js';
import { ChangeFeed } from './store/change-feed.js';
import { createPgliteStore } from './store/pglite.js';
import { ReadCache } from './store/read-cache.js';
import type { SqlStore } from './store/sql-store.js';

export const API_PREFIX = '/api/v1/config';
/** Everything under it needs a key (the config routes and `/api/v1/schemas`). */
const API_ROOT = '/api/v1/';

export interface HubOptions {
  /** PostgreSQL through `pg` when set; embedded PGlite otherwise. */
  databaseUrl?: string | undefined;
  /** PGlite only: a directory for a persistent database. @default in memory */
  dataDir?: string | undefined;
  /**
   * PGlite in memory only: where a freshly initialised data directory is kept and reused by later starts, so
   * that only the first start on a machine runs `initdb` (store/pglite-template.ts); `false`: every start does.
   * @default `<tmpdir>/central-hub-<uid>`
   */
  pgliteTemplateDir?: string | false | undefined;
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
  /** Failed auth attempts per address (an IPv6 /64) and minute before its failures get 429; a valid key always passes. @default 20 */
  authFailureLimit?: number | undefined;
  /** Failed auth attempts from all addresses together per minute before every failure gets 429; a valid key always passes. @default 1000 */
  authGlobalFailureLimit?: number | undefined;
  /**
   * Fastify `trustProxy`, for a hub behind a load balancer or reverse proxy: `true` trusts every
   * `X-Forwarded-For` hop, a number that many hops, a list of addresses/CIDRs those proxies. The client
   * address it yields is what the failed-auth limit counts. Never set it on a hub clients reach directly:
   * they could then pick their own address. @default false
   */
  trustProxy?: boolean | number | string | readonly string[] | undefined;
  /** Time a client has to send the whole request, headers and body; then 408 and the socket is closed (Node `requestTimeout`). @default 10_000 */
  requestTimeoutMs?: number | undefined;
  /** Time a client has to send the request headers (Node `headersTimeout`; at most `requestTimeoutMs`). @default 5_000 */
  headersTimeoutMs?: number | undefined;
  /** A socket with no traffic either way for this long is destroyed (Fastify `connectionTimeout`). @default 30_000 */
  socketIdleTimeoutMs?: number | undefined;
  /** An idle keep-alive connection is closed after this long (longer than a load balancer's 60 s idle timeout, Fastify's default). @default 72_000 */
  keepAliveTimeoutMs?: number | undefined;
  /**
   * On `close()`: requests already in their handler get this long to finish before every connection is
   * closed; clients still sending their body (or idle) are closed at once. @default 3_000
   */
  shutdownGraceMs?: number | undefined;
  /** pg statement timeout. @default 5000 */
  statementTimeoutMs?: number | undefined;
  /** pg connection timeout. @default 3000 */
  connectionTimeoutMs?: number | undefined;
  /**
   * `GET /metrics` then needs `Authorization: Bearer <key>` or `X-API-Key: <key>` (README "Metrics").
   * @default unset: /metrics is open (a scrape target on a private network)
   */
  metricsApiKey?: string | undefined;
  /**
   * Serve GET / 304 from memory, kept current by a LISTEN on the commits' NOTIFY (migration 006). `false`:
   * every GET reads the database (what the hub did before issue 13). @default true
   */
  readCache?: boolean | undefined;
  /** How often the LISTEN connection is pinged; a hung database stops the reads from memory within twice this. @default 1_000 */
  changeFeedPingMs?: number | undefined;
  /** How long /metrics reuses its database reads (outbox stats, instance counts). @default 5_000 */
  metricsCacheMs?: number | undefined;
  /** Services `hub_instances` names; the rest are summed as `service="_other"`. @default 50 */
  metricsMaxServices?: number | undefined;
}

export interface Hub {
  readonly app: FastifyInstance;
  readonly store: SqlStore;
  readonly broadcaster: Broadcaster;
  /** Instance reports, consumer schemas, the write check (docs/fleet.md). */
  readonly fleet: Fleet;
  /** What `GET /metrics` serves (its `registry` is this hub's own). */
  readonly metrics: HubMetrics;
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

/** @default 10_000 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** @default 5_000 */
export const DEFAULT_HEADERS_TIMEOUT_MS = 5_000;
/** @default 30_000 */
export const DEFAULT_SOCKET_IDLE_TIMEOUT_MS = 30_000;
/** @default 72_000 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** @default 3_000 */
export const DEFAULT_SHUTDOWN_GRACE_MS = 3_000;

function resolveTimeouts(options: HubOptions) {
  const ms = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v <= 0) throw new TypeError(`${name} must be a positive integer (milliseconds)`);
    return v;
  };
  const requestTimeoutMs = ms('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
  return {
    requestTimeoutMs,
    // Node refuses a headers timeout longer than the request timeout.
    headersTimeoutMs: Math.min(ms('headersTimeoutMs', options.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS), requestTimeoutMs),
    socketIdleTimeoutMs: ms('socketIdleTimeoutMs', options.socketIdleTimeoutMs, DEFAULT_SOCKET_IDLE_TIMEOUT_MS),
    keepAliveTimeoutMs: ms('keepAliveTimeoutMs', options.keepAliveTimeoutMs, DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
    shutdownGraceMs: ms('shutdownGraceMs', options.shutdownGraceMs, DEFAULT_SHUTDOWN_GRACE_MS),
  };
}

const isApiPath = (url: string): boolean => url.startsWith(API_ROOT);

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
  const metricsOptions = resolveMetricsOptions(options);
  const store =
    options.databaseUrl !== undefined
      ? // Loaded only for PostgreSQL: `pg` is ~80 ms of the embedded hub's cold start otherwise (bench figure 9).
        await (await import('./store/postgres.js')).createPostgresStore({
          connectionString: options.databaseUrl,
          schema: options.pgSchema,
          statementTimeoutMs: options.statementTimeoutMs,
          connectionTimeoutMs: options.connectionTimeoutMs,
          createSchema: options.migrate !== false,
          onError: (error) => app?.log.warn({ err: error.message }, 'idle database connection failed'),
        })
      : await createPgliteStore({ dataDir: options.dataDir, schema: options.pgSchema, templateDir: options.migrate === false ? false : options.pgliteTemplateDir });
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
  const timeouts = resolveTimeouts(options);
  app = Fastify({
    ...(isLoggerInstance(logger) ? { loggerInstance: logger } : { logger: logger ?? false }),
    bodyLimit,
    // Long names must reach our validator (→ 400), not Fastify's router (→ 404). No ignoreTrailingSlash:
    // it turned `POST /rollback/` or `DELETE /history/` (an empty service name) into a write to the
    // services named `rollback` / `history`; the list is served at /api/v1/config and /api/v1/config/ anyway.
    routerOptions: { maxParamLength: 1000 },
    return503OnClosing: true,
    // Route schemas only document the API (GET /openapi.json): the handlers validate and serialize (openapi/plugin.ts).
    schemaController: docOnlySchemaController,
    // Fastify's defaults are 0 (never) for both: a client that stalls in its headers or body held a
    // socket and a request forever, and made close() wait for it (issue 10). Node checks these every
    // `connectionsCheckingInterval` (30 s by default): check often enough for the timeout to mean it.
    requestTimeout: timeouts.requestTimeoutMs,
    connectionTimeout: timeouts.socketIdleTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    http: {
      requestTimeout: timeouts.requestTimeoutMs,
      headersTimeout: timeouts.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(timeouts.headersTimeoutMs / 4))),
    },
    // A number (trust that many hops) works at runtime (proxy-addr) though Fastify's types omit it.
    ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy as unknown as FastifyServerOptions['trustProxy'] }),
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
    log: server.log.child({ component: 'nats' }),
  });

  const fleet = new Fleet({
    db: store.sql,
    onError: (message, error) => server.log.warn({ err: error instanceof Error ? error.message : String(error) }, message),
  });
  const metrics = new HubMetrics({ store, fleet, broadcaster, cacheMs: metricsOptions.cacheMs, maxServices: metricsOptions.maxServices });
  const reads = new ReadCache({ load: (service) => store.get(service), render: (row) => ({ etag: etag(row), body: JSON.stringify(documentOf(row)) }) });
  const feed = new ChangeFeed({
    driver: store,
    onChange: (notice) => reads.changed(notice),
    onState: (listening) => {
      reads.setServing(listening && options.readCache !== false);
      server.log.info({ listening }, listening ? 'change feed listening: reads from memory' : 'change feed not listening: reads from the database');
    },
    pingIntervalMs: options.changeFeedPingMs,
    pingTimeoutMs: options.changeFeedPingMs,
    retryDelayMs: [100, 2_000],
    onError: (message, error) => server.log.warn({ err: error instanceof Error ? error.message : String(error) }, message),
  });
  const ctx: RouteContext = {
    store,
    reads,
    feed,
    readCacheEnabled: options.readCache !== false,
    broadcaster,
    fleet,
    metrics,
    authenticator:
      options.disableAuth === true
        ? undefined
        : new Authenticator({
            keys: options.apiKeys ?? [],
            failureLimit: options.authFailureLimit,
            globalFailureLimit: options.authGlobalFailureLimit,
          }),
    isSecretKey: secretKeyMatcher(options.secretKeyPatterns),
    maxDepth,
  };

  // The key is checked on onRequest, before Fastify reads the body: a stranger's body is never read
  // nor parsed (issue 10: ~40 ms of CPU per 600 KB, for anyone). Requests still receiving their body
  // are tracked so that close() can drop them at once: nothing has run for them yet.
  // One hook only, and no bookkeeping for requests without a body: hooks cost every request, and the GET
  // path is what the fleet hits (bench figure 4). The instance report rides in the same hook, after the
  // key (a stranger's report is never parsed): a cached parse and Map updates, no I/O but a rare look
  // for an unseen schema hash.
  const receiving = new Set<FastifyRequest>();
  server.addHook('onRequest', (request, reply, done) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      receiving.add(request);
      const received = (): void => {
        receiving.delete(request);
      };
      request.raw.once('end', received);
      request.raw.once('close', received);
    }
    try {
      if (isApiPath(request.url)) {
        const principal = authenticateRequest(ctx, request);
        const pending = fleet.observe(request, reply, principal);
        if (pending !== undefined) {
          void pending.then(() => done());
          return;
        }
      }
      done();
    } catch (error) {
      done(error as Error);
    }
  });

  // hub_http_requests_total / hub_http_request_duration_seconds: one callback hook, labels cached (metrics/http-metrics.ts).
  server.addHook('onResponse', metrics.http.onResponse);

  // Only JSON bodies: everything else (text/plain, forms) is 415 by Fastify itself.
  server.removeAllContentTypeParsers();
  server.addContentTypeParser(
    ['application/json', 'application/merge-patch+json'],
    // Bytes, not a string: Fastify's decoding turns invalid UTF-8 into U+FFFD; parseJsonBody refuses it.
    { parseAs: 'buffer', bodyLimit },
    (request, body, done) => {
      // No route: the 404 needs no body, so no parse.
      if (request.is404) {
        done(null, undefined);
        return;
      }
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

  // First: the document lists every route registered after it (the admin page's files are hidden).
  await registerOpenApi(server);
  await server.register(healthRoutes, { ctx });
  await server.register(metricsRoutes, { metrics, apiKey: metricsOptions.apiKey });
  await server.register(configRoutes, { ctx, prefix: API_PREFIX });
  await server.register(historyRoutes, { ctx, prefix: API_PREFIX });
  await server.register(fleetRoutes, { ctx, prefix: API_PREFIX });
  await server.register(schemaRoutes, { ctx, prefix: '/api/v1' });
  await server.register(adminRoutes);
  await server.ready();
  if (options.readCache !== false) await feed.start();
  broadcaster.start();

  let closing: Promise<void> | undefined;
  return {
    app: server,
    store,
    broadcaster,
    fleet,
    metrics,
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
        // server.close() waits for every open request; one client stalled in its body kept it (and the
        // outbox flush and NATS drain after it) waiting until main.ts's 10 s force exit, code 1
        // (issue 10). Clients still sending their body are closed now (no handler ran for them), idle
        // keep-alive sockets by Fastify, handlers get `shutdownGraceMs`, then every socket is closed.
        const force = setTimeout(() => server.server.closeAllConnections(), timeouts.shutdownGraceMs);
        force.unref();
        const closed = server.close();
        // Only those still sending their body (no handler has run for them); injected requests have no socket.
        for (const request of receiving) {
          const socket = request.raw.socket as { destroy?: () => void } | undefined;
          if (!request.raw.complete && typeof socket?.destroy === 'function') socket.destroy();
        }
        receiving.clear();
        try {
          await closed;
        } finally {
          clearTimeout(force);
          try {
            // The unflushed instance records, before the store goes (a failure is logged, never thrown).
            await fleet.close();
            await feed.close();
            await broadcaster.close();
          } finally {
            await store.close();
          }
        }
      })();
      return closing;
    },
  };
}
