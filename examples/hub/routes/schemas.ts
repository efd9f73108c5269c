/** `PUT /api/v1/schemas/{hash}` (docs/fleet.md §2): any valid key may upload a consumer schema; the content names itself. */
import type { FastifyPluginAsync } from 'fastify';
import { MAX_SCHEMA_BYTES, SCHEMA_HASH_PATTERN, SCHEMA_UNKNOWN_HEADER, schemaUploadSchema } from '../../../src/fleet/wire.js';
import { apiOperation, json } from '../openapi/operation.js';
import { schemaHashParams, schemaStored } from '../openapi/shapes.js';
import { requireObject } from '../body.js';
import { HubError } from '../errors.js';
import { requireJson } from './config.js';
import { principalOf, type RouteContext } from './context.js';

const uploadDoc = apiOperation({
  operationId: 'putSchema',
  summary: 'Upload a consumer schema (any valid key; the content names itself)',
  description: '`{hash}` is the sha256 (hex) of the body\'s canonical JSON (RFC 8785); the hub recomputes it (400 on a mismatch) and compiles the schema (Ajv, 2020-12).',
  tags: ['schemas'],
  params: schemaHashParams,
  body: { schema: schemaUploadSchema, description: `the schema and what it could not express, at most ${MAX_SCHEMA_BYTES} bytes` },
  responses: { 200: json(schemaStored, 'already held (`created: false`)'), 201: json(schemaStored, 'stored (`created: true`)') },
  errors: [400, 413, 415],
});

export const schemaRoutes: FastifyPluginAsync<{ ctx: RouteContext }> = async (app, { ctx }) => {
  app.put('/schemas/:hash', { bodyLimit: MAX_SCHEMA_BYTES, schema: uploadDoc }, async (request, reply) => {
    principalOf(ctx, request);
    const hash = (request.params as Record<string, unknown>).hash;
    if (typeof hash !== 'string' || !SCHEMA_HASH_PATTERN.test(hash)) {
      throw new HubError(400, 'the schema hash must be 64 lowercase hex characters (sha256 of the canonical JSON body)');
    }
    requireJson(request, false);
    const { created } = await ctx.fleet.schemas.put(hash, requireObject(request.body, 'schema upload'));
    // The upload's own report header was read before the upload: its answer must not call the hash unknown.
    const unknown = reply.getHeader(SCHEMA_UNKNOWN_HEADER);
    if (typeof unknown === 'string') {
      const rest = unknown.split(', ').filter((h) => h !== hash);
      if (rest.length === 0) reply.removeHeader(SCHEMA_UNKNOWN_HEADER);
      else reply.header(SCHEMA_UNKNOWN_HEADER, rest.join(', '));
    }
    reply.code(created ? 201 : 200);
    return { hash, created };
  });
};
