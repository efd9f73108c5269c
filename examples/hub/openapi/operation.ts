/**
 * Builders of the routes' Fastify `schema` objects: the operation of the OpenAPI document (tags, summary,
 * operationId, security, parameters, body, responses) that `@fastify/swagger` reads. The hub never
 * validates nor serializes with them (`docOnlySchemaController`, plugin.ts): its handlers parse their input
 * with zod and answer `{ detail }` themselves, and the existing 400/415/422 behaviour is theirs.
 */
import type { FastifySchema } from 'fastify';
import type { z } from 'zod';
import {
  instanceReportSchema,
  MAX_REPORT_BYTES,
  REPORT_ERROR_HEADER,
  REPORT_HEADER,
  SCHEMA_UNKNOWN_HEADER,
} from '../../../src/fleet/wire.js';
import { type JsonSchema, jsonSchemaOf } from './json-schema.js';
import { detailBody } from './shapes.js';

export type Tag = 'config' | 'history' | 'fleet' | 'schemas' | 'health' | 'metrics' | 'meta';

/** The document's tags, in this order. */
export const TAGS: readonly { name: Tag; description: string }[] = [
  { name: 'config', description: 'Service configs: read, replace, merge-patch, delete (DESIGN §3)' },
  { name: 'history', description: 'The audit trail of a service, and rollback to a revision' },
  { name: 'fleet', description: 'Instance reports, the fleet view, dry runs of a write (docs/fleet.md)' },
  { name: 'schemas', description: 'Consumer schemas, uploaded by the clients (docs/fleet.md §2)' },
  { name: 'health', description: 'Liveness and readiness of the hub' },
  { name: 'metrics', description: 'Prometheus metrics of the hub' },
  { name: 'meta', description: 'This document' },
];

/** The security scheme of every `/api/v1/` route (`components.securitySchemes`). */
export const API_KEY_SCHEME = 'apiKey';

/** Response header documentation: `{ type: 'string', description }`. */
export type HeaderDocs = Record<string, JsonSchema>;

const header = (description: string, schema: JsonSchema = { type: 'string' }): JsonSchema => ({ ...schema, description });

export const RESPONSE_HEADERS = {
  etag: header('`"<revision>-<updated_at in base 36>"`: send it back as `If-None-Match` (GET) or `If-Match` (writes)'),
  retryAfter: header('seconds to wait before retrying', { type: 'integer', minimum: 1 }),
  reportError: header('the request\'s `x-config-report` header was not understood (the request was served anyway)'),
  schemaUnknown: header('schema hashes the report named that the hub does not hold: upload them (`PUT /api/v1/schemas/{hash}`)'),
} as const;

export const REQUEST_HEADERS = {
  ifMatch: header(
    'the revision the write is based on: `"<revision>"` or the full ETag; `*`: whatever is current; `"0"`: create only if absent. 412 when it is not the current one',
  ),
  ifNoneMatch: header('the ETag the caller holds: `304` when it is still current'),
  /** The fleet report (docs/fleet.md §1): a JSON object in one header line. */
  report: header(
    'the instance report (docs/fleet.md §1): one line of ASCII JSON. Read only with a valid key; a bad one never fails the request (the answer then carries `x-config-report-error`)',
    { type: 'string', maxLength: MAX_REPORT_BYTES, contentMediaType: 'application/json', contentSchema: jsonSchemaOf(instanceReportSchema) },
  ),
} as const;

/** One response: a body (`schema`, JSON unless `mediaType` says otherwise), or none (e.g. 304), and headers. */
export interface ResponseDoc {
  description: string;
  schema?: z.ZodType | undefined;
  mediaType?: string | undefined;
  headers?: HeaderDocs | undefined;
}

export const json = (schema: z.ZodType, description: string, headers?: HeaderDocs): ResponseDoc => ({ schema, description, headers });
export const text = (mediaType: string, schema: z.ZodType, description: string, headers?: HeaderDocs): ResponseDoc => ({
  schema,
  mediaType,
  description,
  headers,
});
export const noBody = (description: string, headers?: HeaderDocs): ResponseDoc => ({ description, headers });

/** The `{ detail }` errors routes list by status; a route with a more specific body passes a `json(...)` instead. */
const ERRORS = {
  400: 'bad input: the service name, a query parameter, a header or the body (`detail` says which)',
  401: 'no valid `X-API-Key` (checked before the body is read)',
  403: 'the key\'s scopes do not cover the service',
  404: 'no such service (or nothing of it to answer)',
  413: 'the body is larger than the route takes',
  415: 'the body\'s content type is not one the route takes',
  428: 'the write must name the revision it replaces (`If-Match`)',
  429: 'too many failed authentication attempts (from this address, or hub-wide): wait',
  503: 'the database is unavailable: retry later',
} as const;
export type ErrorStatus = keyof typeof ERRORS;

function errorResponse(status: ErrorStatus): ResponseDoc {
  const headers = status === 429 || status === 503 ? { 'retry-after': RESPONSE_HEADERS.retryAfter } : undefined;
  return json(detailBody, ERRORS[status], headers);
}

export interface OperationDoc {
  operationId: string;
  summary: string;
  description?: string;
  tags: [Tag];
  params?: z.ZodType;
  querystring?: z.ZodType;
  /** Request headers by lower-case name (`REQUEST_HEADERS`); `required` lists the ones that must be sent. */
  headers?: HeaderDocs;
  requiredHeaders?: string[];
  /** A JSON request body, in `mediaTypes` (default `application/json`). */
  body?: { schema: z.ZodType; description: string; mediaTypes?: string[] };
  responses: Record<number, ResponseDoc>;
  /** `{ detail }` errors of the route; `apiOperation` adds 401, 429 and 503 to every API route. */
  errors?: ErrorStatus[];
}

function responseSchema(doc: ResponseDoc): JsonSchema {
  // Without a body, `type: 'null'` is what @fastify/swagger reads as "no content"; another media type than
  // JSON is its `content` form.
  const body =
    doc.schema === undefined
      ? { type: 'null' }
      : doc.mediaType === undefined
        ? jsonSchemaOf(doc.schema)
        : { content: { [doc.mediaType]: { schema: jsonSchemaOf(doc.schema) } } };
  return { ...body, description: doc.description, ...(doc.headers === undefined ? {} : { headers: doc.headers }) };
}

function operation(doc: OperationDoc, security: FastifySchema['security'], errors: ErrorStatus[]): FastifySchema {
  const response: Record<string, JsonSchema> = {};
  for (const [status, r] of Object.entries(doc.responses)) response[status] = responseSchema(r);
  for (const status of [...new Set([...(doc.errors ?? []), ...errors])]) {
    response[status] ??= responseSchema(errorResponse(status));
  }
  const schema: FastifySchema = {
    operationId: doc.operationId,
    summary: doc.summary,
    tags: doc.tags,
    security,
    response,
  };
  if (doc.description !== undefined) schema.description = doc.description;
  if (doc.params !== undefined) schema.params = jsonSchemaOf(doc.params);
  if (doc.querystring !== undefined) schema.querystring = jsonSchemaOf(doc.querystring);
  if (doc.headers !== undefined) {
    schema.headers = { type: 'object', properties: doc.headers, ...(doc.requiredHeaders ? { required: doc.requiredHeaders } : {}) };
  }
  if (doc.body !== undefined) {
    schema.body = jsonSchemaOf(doc.body.schema, doc.body.description);
    if (doc.body.mediaTypes !== undefined) schema.consumes = doc.body.mediaTypes;
  }
  return schema;
}

/**
 * An `/api/v1/` route: the `X-API-Key` scheme; the `x-config-report` header (the key's hook reads it on
 * every API request) and its two answer headers on every 2xx/304; 401, 429 and 503.
 */
export function apiOperation(doc: OperationDoc): FastifySchema {
  const fleetHeaders = { [REPORT_ERROR_HEADER]: RESPONSE_HEADERS.reportError, [SCHEMA_UNKNOWN_HEADER]: RESPONSE_HEADERS.schemaUnknown };
  const responses: Record<number, ResponseDoc> = {};
  for (const [status, r] of Object.entries(doc.responses)) {
    const code = Number(status);
    responses[code] = code < 300 || code === 304 ? { ...r, headers: { ...r.headers, ...fleetHeaders } } : r;
  }
  return operation(
    { ...doc, headers: { ...doc.headers, [REPORT_HEADER]: REQUEST_HEADERS.report }, responses },
    [{ [API_KEY_SCHEME]: [] }],
    [401, 429, 503],
  );
}

/** A route outside `/api/v1/`: no key, unless `security` names the schemes it takes. */
export function publicOperation(doc: OperationDoc, security: FastifySchema['security'] = []): FastifySchema {
  return operation(doc, security, []);
}
