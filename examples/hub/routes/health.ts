import type { FastifyPluginAsync } from 'fastify';
import type { RouteContext } from './context.js';

const PING_TIMEOUT_MS = 1500;

/**
 * `GET /health` (outside `/api/v1/config`, so that `health` stays a valid service name there).
 * 200 `ok` / `degraded` (NATS configured but disconnected); 503 `unavailable` when the DB is unreachable.
 */
export const healthRoutes: FastifyPluginAsync<{ ctx: RouteContext }> = async (app, { ctx }) => {
  app.get('/health', async (_request, reply) => {
    let timer: NodeJS.Timeout | undefined;
    const db = await Promise.race([
      ctx.store.ping(),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    const nats = ctx.broadcaster.connected;
    const status = !db ? 'unavailable' : ctx.broadcaster.enabled && !nats ? 'degraded' : 'ok';
    if (!db) reply.code(503).header('retry-after', '2');
    return { status, store: ctx.store.kind, db, nats };
  });
};
