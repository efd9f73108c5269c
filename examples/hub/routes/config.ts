import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { findSecretPaths, requireObject } from '../body.js';
import { HubError } from '../errors.js';
import { mergeConfig } from '../merge-patch.js';
import type { ConfigObject } from '../../../src/hub/wire.js';
import { checkWrite, type ConsumerVerdict, rejecting } from '../fleet/consumer-check.js';
import { summarize } from '../fleet/rules.js';
import type { CountGroup } from '../fleet/instance-sql.js';
import type { WriteCommand } from '../store/types.js';
import { apiOperation, json, noBody, REQUEST_HEADERS, RESPONSE_HEADERS } from '../openapi/operation.js';
import { configObject, revisionConflict, serviceList, serviceParams, writeAnswer, writeRefusal } from '../openapi/shapes.js';
import { configDocumentSchema } from '../../../src/hub/wire.js';
import type { WriteAction } from '../metrics/hub-metrics.js';
import {
  etag,
  etagMatches,
  ifMatchRevision,
  minRevisionOf,
  notFound,
  parseQuery,
  principalOf,
  type RouteContext,
  serviceParam,
  writeQuerySchema,
} from './context.js';

/** Runs a write and renders the DESIGN §3 write response (+ revision), 412/404 as `{detail}`. */
export async function commitWrite(
  ctx: RouteContext,
  reply: FastifyReply,
  command: WriteCommand,
  status: 'updated' | 'deleted' | 'rollback',
  forced: () => boolean = () => false,
) {
  const started = performance.now();
  const ticket = ctx.reads.ticket();
  const outcome = await ctx.store.write(command);
  if (outcome.kind === 'conflict') {
    throw new HubError(412, `revision mismatch: If-Match ${command.expectedRevision}, current ${outcome.currentRevision ?? 'none'}`, {
      extra: { revision: outcome.currentRevision },
    });
  }
  if (outcome.kind === 'not_found') throw new HubError(404, outcome.detail);
  // Before the broadcast: a client told of the change and reading this replica gets it (read-your-writes).
  ctx.reads.written(outcome.row, ticket);
  const broadcast = await ctx.broadcaster.publishCommitted(outcome.outboxId);
  ctx.metrics.writeCommitted(command.kind, (performance.now() - started) / 1000);
  const { row } = outcome;
  const action = outcome.created ? 'created' : status;
  // The one line a write leaves: who (the key's name), what, the revision, whether the fleet was told.
  reply.log.info(
    {
      who: command.changedBy,
      service: row.service_name,
      revision: row.revision,
      version: row.version,
      action,
      kind: command.kind,
      broadcast,
      forced: forced(),
      change_reason: command.changeReason,
    },
    'config written',
  );
  reply.code(outcome.created ? 201 : 200).header('etag', etag(row));
  return {
    status: action,
    service_name: row.service_name,
    config: row.config,
    version: row.version,
    updated_at: row.updated_at,
    updated_by: row.updated_by,
    broadcast,
    revision: row.revision,
  };
}

type WriteQuery = z.output<typeof writeQuerySchema>;

/** What a write route adds to the fields every write takes from the request. */
type WriteSpecific<C = WriteCommand> = C extends WriteCommand ? Omit<C, 'service' | 'changedBy' | 'changeReason' | 'expectedRevision'> : never;

/**
 * The write routes' common path: the caller with write access to `:service` and the write query, then the
 * route's own checks and fields (`specific`), then `If-Match`, and `commitWrite`. A write refused (422)
 * or in conflict (412) is counted (`hub_writes_total`) and logged with its reason.
 */
export async function handleWrite(
  ctx: RouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  status: 'updated' | 'deleted' | 'rollback',
  specific: (query: WriteQuery) => WriteSpecific,
) {
  try {
    return await runWrite(ctx, request, reply, status, specific);
  } catch (error) {
    if (error instanceof HubError && (error.status === 412 || error.status === 422)) noteRefusal(ctx, request, reply, status, error);
    throw error;
  }
}

/** One info line and a count for a write the hub refused: 422 (secrets, the live consumers' schemas) or 412 (`If-Match`). */
function noteRefusal(ctx: RouteContext, request: FastifyRequest, reply: FastifyReply, status: 'updated' | 'deleted' | 'rollback', error: HubError): void {
  const action: WriteAction = status === 'rollback' ? 'rollback' : status === 'deleted' ? 'delete' : request.method === 'PATCH' ? 'patch' : 'replace';
  const outcome = error.status === 412 ? 'conflict' : 'refused';
  ctx.metrics.writeFailed(action, outcome);
  reply.log.info(
    {
      who: principalOf(ctx, request).name,
      service: (request.params as Record<string, unknown>).service,
      kind: action,
      outcome,
      status: error.status,
      reason: error.detail,
      ...(outcome === 'conflict' ? { current_revision: error.extra.revision } : {}),
    },
    'config write refused',
  );
}

async function runWrite(
  ctx: RouteContext,
  request: FastifyRequest,
  reply: FastifyReply,
  status: 'updated' | 'deleted' | 'rollback',
  specific: (query: WriteQuery) => WriteSpecific,
) {
  const principal = principalOf(ctx, request);
  const service = serviceParam(request, principal, 'write');
  const query = parseQuery(writeQuerySchema, request);
  if (query.force && (query.change_reason ?? '').trim() === '') {
    throw new HubError(400, 'force=true needs a change_reason: it is recorded with the override');
  }
  const fields = specific(query);
  const expectedRevision = ifMatchRevision(request);
  // The live consumers' validators, loaded before the transaction; they run in it (a delete leaves nothing to check).
  const consumers = fields.kind === 'delete' ? undefined : await ctx.fleet.prepareCheck(service);
  let forced: ConsumerVerdict | undefined;
  const command = {
    ...fields,
    service,
    changedBy: principal.name,
    changeReason: query.change_reason,
    expectedRevision,
    // The body was checked by the route; this checks what the write would store (issue 10: a PATCH kept a
    // stored password, a rollback restored one) and what its consumers accept (issue 11), in the write's
    // transaction, before the row is written.
    checkResult: (config: ConfigObject) => {
      rejectStoredSecrets(ctx, config);
      return consumers === undefined ? undefined : checkWrite(consumers, config, query.force, (v) => (forced = v));
    },
  } as WriteCommand;
  const answer = await commitWrite(ctx, reply, command, status, () => forced !== undefined);
  const verdict = forced as ConsumerVerdict | undefined;
  return verdict === undefined ? answer : { ...answer, forced: true, issues: verdict.issues, consumers: rejecting(verdict) };
}

export function rejectSecrets(ctx: RouteContext, value: unknown, options: { allowNullValues?: boolean } = {}): void {
  const paths = findSecretPaths(value, ctx.isSecretKey, options);
  if (paths.length > 0) {
    throw new HubError(422, `secret-looking keys are not accepted (critical values live in env): ${paths.join(', ')}`, {
      extra: { paths },
    });
  }
}

/** 422 when the config a write would leave holds secret-looking keys or values (`null` values store nothing). */
export function rejectStoredSecrets(ctx: RouteContext, config: ConfigObject): void {
  const paths = findSecretPaths(config, ctx.isSecretKey, { allowNullValues: true });
  if (paths.length > 0) {
    throw new HubError(
      422,
      `the resulting config would hold secret-looking values (critical values live in env): ${paths.join(', ')}; remove them (a merge patch setting them to null, or a full POST) first`,
      { extra: { paths } },
    );
  }
}

export function requireJson(request: FastifyRequest, allowMergePatch: boolean): void {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || (allowMergePatch && type === 'application/merge-patch+json')) return;
  throw new HubError(415, `unsupported content type '${type || '(none)'}': use application/json${allowMergePatch ? ' or application/merge-patch+json' : ''}`);
}

const listQuerySchema = z.looseObject({});

// The routes' OpenAPI operations (openapi/operation.ts: documentation only, never used to validate).
const etagHeader = { etag: RESPONSE_HEADERS.etag };
const writeResponses = {
  200: json(writeAnswer, 'written (`status` says how); `forced`, `issues`, `consumers` with `?force=true`', etagHeader),
  412: json(revisionConflict, '`If-Match` names another revision than the current one (`revision`)'),
  422: json(
    writeRefusal,
    'refused, nothing written: secret-looking keys or values (`paths`), or live consumers would reject the result (docs/fleet.md §4)',
  ),
};
const writeHeaders = { 'if-match': REQUEST_HEADERS.ifMatch };
const docs = {
  list: apiOperation({
    operationId: 'listServices',
    summary: 'The services the key may read',
    description: 'Also served at `/api/v1/config/`. Each service adds the fleet counts of its live instances.',
    tags: ['config'],
    querystring: listQuerySchema,
    responses: { 200: json(serviceList, 'the services, with their fleet counts') },
  }),
  get: apiOperation({
    operationId: 'getConfig',
    summary: "A service's config",
    tags: ['config'],
    params: serviceParams,
    headers: { 'if-none-match': REQUEST_HEADERS.ifNoneMatch },
    responses: {
      200: json(configDocumentSchema, 'the config document (the hub always sends `config` as an object)', etagHeader),
      304: noBody('not modified: `If-None-Match` names the current ETag', etagHeader),
    },
    errors: [400, 403, 404],
  }),
  replace: apiOperation({
    operationId: 'replaceConfig',
    summary: "Replace (or create) a service's config",
    tags: ['config'],
    params: serviceParams,
    querystring: writeQuerySchema,
    headers: writeHeaders,
    body: { schema: configObject, description: 'the whole new config' },
    responses: { ...writeResponses, 201: json(writeAnswer, 'created (`status: "created"`)', etagHeader) },
    errors: [400, 403, 413, 415],
  }),
  patch: apiOperation({
    operationId: 'patchConfig',
    summary: "Change part of a service's config (RFC 7396 merge patch)",
    tags: ['config'],
    params: serviceParams,
    querystring: writeQuerySchema,
    headers: writeHeaders,
    body: {
      schema: configObject,
      description: 'a JSON merge patch (`null` removes a key); checked on the merged result',
      mediaTypes: ['application/merge-patch+json', 'application/json'],
    },
    responses: writeResponses,
    errors: [400, 403, 404, 413, 415],
  }),
  delete: apiOperation({
    operationId: 'deleteConfig',
    summary: "Delete a service's config (soft: a rollback restores it)",
    description: 'Every client of the service falls back to its defaults + env: the delete must name the revision it deletes.',
    tags: ['config'],
    params: serviceParams,
    querystring: writeQuerySchema,
    headers: writeHeaders,
    requiredHeaders: ['if-match'],
    responses: { 200: json(writeAnswer, 'deleted (`status: "deleted"`)', etagHeader), 412: writeResponses[412] },
    errors: [400, 403, 404, 428],
  }),
};

export const configRoutes: FastifyPluginAsync<{ ctx: RouteContext }> = async (app, { ctx }) => {
  app.get('/', { schema: docs.list }, async (request) => {
    const principal = principalOf(ctx, request);
    parseQuery(listQuerySchema, request);
    const [all, groups] = await Promise.all([ctx.store.list(), ctx.fleet.instances.counts()]);
    const rows = all.filter((r) => principal.can('read', r.service_name));
    const byService = new Map<string, CountGroup[]>();
    for (const g of groups) {
      const list = byService.get(g.service_name);
      if (list === undefined) byService.set(g.service_name, [g]);
      else list.push(g);
    }
    return {
      services: rows.map((r) => ({
        service_name: r.service_name,
        version: r.version,
        updated_at: r.updated_at,
        revision: r.revision,
        description: r.description,
        tags: r.tags,
        instances: summarize(byService.get(r.service_name) ?? [], r.revision),
      })),
      total: rows.length,
    };
  });

  app.get('/:service', { schema: docs.get }, async (request, reply) => {
    const principal = principalOf(ctx, request);
    const service = serviceParam(request, principal, 'read');
    // From memory (store/read-cache.ts): no database round trip while the change feed listens.
    const doc = await ctx.reads.document(service, minRevisionOf(request));
    if (doc === null) throw notFound(service);
    reply.header('etag', doc.etag);
    if (etagMatches(request.headers['if-none-match'], doc.etag)) return reply.code(304).send();
    return reply.type('application/json; charset=utf-8').send(doc.body);
  });

  app.post('/:service', { schema: docs.replace }, async (request, reply) =>
    handleWrite(ctx, request, reply, 'updated', (query) => {
      requireJson(request, false);
      const config = requireObject(request.body, 'config');
      rejectSecrets(ctx, config);
      return { kind: 'replace', config, version: query.version };
    }),
  );

  app.patch('/:service', { schema: docs.patch }, async (request, reply) =>
    handleWrite(ctx, request, reply, 'updated', (query) => {
      requireJson(request, true);
      const patch = requireObject(request.body, 'merge patch');
      rejectSecrets(ctx, patch, { allowNullValues: true });
      return { kind: 'patch', merge: (current) => mergeConfig(current, patch), version: query.version };
    }),
  );

  // A delete sends every client of the service back to its defaults + env (404 → CONFIG_NOT_FOUND): it
  // must name the revision it deletes (`If-Match: "<revision>"`, or `*` on purpose), never happen by accident.
  app.delete('/:service', { schema: docs.delete }, async (request, reply) =>
    handleWrite(ctx, request, reply, 'deleted', () => {
      if (request.headers['if-match'] === undefined) {
        throw new HubError(428, 'DELETE needs If-Match: "<revision>" (the ETag of the config it deletes), or If-Match: * on purpose');
      }
      return { kind: 'delete' };
    }),
  );
};
