import type { FastifyPluginAsync } from 'fastify';
import { json, publicOperation, RESPONSE_HEADERS } from '../openapi/operation.js';
import { health } from '../openapi/shapes.js';
import type { RouteContext } from './context.js';

const PING_TIMEOUT_MS = 1500;

/**
 * `GET /health` (outside `/api/v1/config`, so that `health` stays a valid service name there).
 * 200 `ok` / `degraded` (NATS configured but disconnected, or the outbox relay behind: its oldest pending
 * row older than `maxRelayLagMs`, or dead-lettered rows); 503 `unavailable` when the DB is unreachable.
 * `outbox` (additive): `{ pending, dead, lag_ms }`, `null` when the DB did not answer.
 * `fleet` (additive): `{ pending, dropped, last_flush_error? }`; `degraded` after 3 failed flushes in a row.
 * `reads` (additive): the read path (issue 13): `from_memory` while the change feed listens, `database`
 * otherwise; `degraded` when the database answers but the feed does not listen (every GET then costs a
 * query, and an operator must know).
 */
const healthDoc = publicOperation({
  operationId: 'getHealth',
  summary: 'Whether the hub, its database, NATS and the outbox relay work',
  tags: ['health'],
  responses: {
    200: json(
      health,
      '`ok`, or `degraded`: NATS configured but disconnected, the outbox relay behind (its oldest pending row older than 10 s, or dead-lettered rows), or the fleet\'s writes to `config_instances` failing',
    ),
    503: json(health, '`unavailable`: the database did not answer (`outbox: null`)', { 'retry-after': RESPONSE_HEADERS.retryAfter }),
  },
});

export const healthRoutes: FastifyPluginAsync<{ ctx: RouteContext }> = async (app, { ctx }) => {
  app.get('/health', { schema: healthDoc }, async (_request, reply) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
    });
    const [db, stats] = await Promise.all([
      Promise.race([ctx.store.ping(), timeout]),
      Promise.race([ctx.store.outboxStats().catch(() => false as const), timeout]),
    ]).finally(() => clearTimeout(timer));
    const outbox = db && stats !== false ? { pending: stats.pending, dead: stats.dead, lag_ms: stats.lagMs } : null;
    const nats = ctx.broadcaster.connected;
    // Without NATS there is no relay: rows stay pending by design, so the outbox says nothing about health.
    const relayBehind =
      ctx.broadcaster.enabled && outbox !== null && (outbox.dead > 0 || outbox.lag_ms > ctx.broadcaster.maxRelayLagMs);
    // The fleet's write-behind (docs/fleet.md §5): `degraded` while its flushes to config_instances keep failing.
    const { degraded: fleetFailing, failures: _failures, ...fleet } = ctx.fleet.health();
    const cache = ctx.reads.stats();
    const feed = ctx.feed.health();
    const reads = {
      source: cache.serving ? 'memory' : 'database',
      listening: feed.listening,
      entries: cache.entries,
      hits: cache.hits,
      misses: cache.misses,
      bypassed: cache.bypassed,
      invalidations: cache.invalidations,
      notifications: feed.notifications,
      feed_lost: feed.lost,
      ...(feed.last_error === undefined ? {} : { last_error: feed.last_error }),
    };
    // Switched off on purpose (readCache: false) is not a fault: only a feed that should listen and does not.
    const feedDown = ctx.readCacheEnabled && !feed.listening;
    const status =
      !db ? 'unavailable' : (ctx.broadcaster.enabled && !nats) || relayBehind || fleetFailing || feedDown ? 'degraded' : 'ok';
    if (!db) reply.code(503).header('retry-after', '2');
    return { status, store: ctx.store.kind, db, nats, outbox, fleet, reads };
  });
};
