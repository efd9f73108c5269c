import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { HubError } from '../errors.js';
import { handleWrite } from './config.js';
import { apiOperation, json, REQUEST_HEADERS, RESPONSE_HEADERS } from '../openapi/operation.js';
import { historyAnswer, revisionConflict, serviceParams, writeAnswer, writeRefusal } from '../openapi/shapes.js';
import { parseQuery, principalOf, type RouteContext, serviceParam, writeQuerySchema } from './context.js';

export const DEFAULT_HISTORY_LIMIT = 10;
export const MAX_HISTORY_LIMIT = 100;

const historyQuerySchema = z.looseObject({
  limit: z.coerce
    .number()
    .int('limit must be an integer')
    .optional()
    .describe(`entries, newest first: ${DEFAULT_HISTORY_LIMIT} by default, clamped to 1…${MAX_HISTORY_LIMIT}`)
    .transform((n) => Math.min(Math.max(n ?? DEFAULT_HISTORY_LIMIT, 1), MAX_HISTORY_LIMIT)),
});

const rollbackBodySchema = z.union([
  z.strictObject({ revision: z.number().int().positive() }),
  z.strictObject({ version: z.string().min(1).max(20) }),
]);

const docs = {
  history: apiOperation({
    operationId: 'getHistory',
    summary: "A service's audit trail, newest first",
    tags: ['history'],
    params: serviceParams,
    querystring: historyQuerySchema,
    responses: { 200: json(historyAnswer, 'the newest entries (`total`: all of them)') },
    errors: [400, 403, 404],
  }),
  rollback: apiOperation({
    operationId: 'rollbackConfig',
    summary: 'Roll a service back (or restore a deleted one) to a revision of its history',
    description: '`{ "version": "<label>" }` restores the newest revision with that label whose config differs from the one served.',
    tags: ['history'],
    params: serviceParams,
    querystring: writeQuerySchema,
    headers: { 'if-match': REQUEST_HEADERS.ifMatch },
    body: { schema: rollbackBodySchema, description: 'the revision (or version label) to restore' },
    responses: {
      200: json(writeAnswer, 'rolled back (`status: "rollback"`)', { etag: RESPONSE_HEADERS.etag }),
      412: json(revisionConflict, '`If-Match` names another revision than the current one (`revision`)'),
      422: json(writeRefusal, 'refused, nothing written: the target holds secret-looking values, or live consumers would reject it'),
    },
    errors: [400, 403, 404, 415],
  }),
};

export const historyRoutes: FastifyPluginAsync<{ ctx: RouteContext }> = async (app, { ctx }) => {
  app.get('/history/:service', { schema: docs.history }, async (request) => {
    const principal = principalOf(ctx, request);
    const service = serviceParam(request, principal, 'read');
    const { limit } = parseQuery(historyQuerySchema, request);
    const { entries, total } = await ctx.store.history(service, limit);
    if (total === 0) throw new HubError(404, `no history for service '${service}'`);
    return { service_name: service, history: entries, total, limit };
  });

  app.post('/rollback/:service', { schema: docs.rollback }, async (request, reply) =>
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
