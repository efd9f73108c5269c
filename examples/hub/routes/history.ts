import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { HubError } from '../errors.js';
import { handleWrite } from './config.js';
import { parseQuery, principalOf, type RouteContext, serviceParam } from './context.js';

export const DEFAULT_HISTORY_LIMIT = 10;
export const MAX_HISTORY_LIMIT = 100;

const historyQuerySchema = z.looseObject({
  limit: z.coerce
    .number()
    .int('limit must be an integer')
    .optional()
    .transform((n) => Math.min(Math.max(n ?? DEFAULT_HISTORY_LIMIT, 1), MAX_HISTORY_LIMIT)),
});

const rollbackBodySchema = z.union([
  z.strictObject({ revision: z.number().int().positive() }),
  z.strictObject({ version: z.string().min(1).max(20) }),
]);

export const historyRoutes: FastifyPluginAsync<{ ctx: RouteContext }> = async (app, { ctx }) => {
  app.get('/history/:service', async (request) => {
    const principal = principalOf(ctx, request);
    const service = serviceParam(request, principal, 'read');
    const { limit } = parseQuery(historyQuerySchema, request);
    const { entries, total } = await ctx.store.history(service, limit);
    if (total === 0) throw new HubError(404, `no history for service '${service}'`);
    return { service_name: service, history: entries, total, limit };
  });

  app.post('/rollback/:service', async (request, reply) =>
    handleWrite(ctx, request, reply, 'rollback', () => {
      const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') throw new HubError(415, 'use application/json');
      const body = rollbackBodySchema.safeParse(request.body);
      if (!body.success) throw new HubError(400, 'body must be { "revision": <positive integer> } or { "version": "<string>" }');
      return {
        kind: 'rollback',
        toRevision: 'revision' in body.data ? body.data.revision : undefined,
        toVersion: 'version' in body.data ? body.data.version : undefined,
      };
    }),
  );
};
