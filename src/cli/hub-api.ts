/**
 * The hub API as the CLI uses it: one function per route, answers parsed with the wire contract's zod
 * schemas (src/hub/wire.ts; the fleet routes' shapes from docs/fleet.md are here). A 4xx becomes a
 * HubRefusedError (exit 1), a 5xx or an answer that breaks the contract a HubUnreachableError (exit 3).
 */
import { z } from 'zod';
import {
  type ConfigDocument,
  type ConfigObject,
  configDocumentSchema,
  errorBodySchema,
  type HistoryResponse,
  historyResponseSchema,
  type WriteResponse,
  writeResponseSchema,
} from '../hub/wire.js';
import { HubRefusedError, HubUnreachableError } from './errors.js';
import type { HubAnswer, HubHttp } from './http.js';
import { describeRefusal } from './refusal.js';

const json = z.json();

/** `POST /api/v1/config/{service}/validate` → 200 (docs/fleet.md §4). */
export const validateResponseSchema = z.looseObject({
  valid: z.boolean(),
  consumers: z.array(json).optional(),
  unchecked: z.array(json).optional(),
  unknown_schemas: z.array(json).optional(),
});
export type ValidateResponse = z.output<typeof validateResponseSchema>;

const nullableString = z.string().nullish().transform((v) => v ?? null);
const nullableInt = z.number().int().nullish().transform((v) => v ?? null);

/** `GET /api/v1/config/{service}/instances` (docs/fleet.md §5). */
export const instancesResponseSchema = z.looseObject({
  service_name: z.string(),
  revision: nullableInt,
  instances: z.array(
    z.looseObject({
      instance_id: z.string(),
      host: nullableString,
      pid: nullableInt,
      client_version: nullableString,
      revision: nullableInt,
      source: nullableString,
      stale: z.boolean().nullish().transform((v) => v ?? false),
      last_seen: z.number().nullish().transform((v) => v ?? null),
      last_error: nullableString,
      schema_hash: nullableString,
    }),
  ),
  summary: z.looseObject({
    total: z.number().int(),
    on_latest: z.number().int(),
    behind: z.number().int(),
    rejected: z.number().int(),
  }),
});
export type InstancesResponse = z.output<typeof instancesResponseSchema>;

/** The current config with its ETag, or `null` when the hub has none (404). */
export interface CurrentConfig {
  doc: ConfigDocument;
  etag: string | undefined;
}

export interface WriteQuery {
  version?: string | undefined;
  changeReason?: string | undefined;
  force?: boolean | undefined;
}

const path = (service: string, ...rest: string[]): string => [encodeURIComponent(service), ...rest].join('/');

/** The error of a non-2xx answer: 5xx → exit 3, anything else → exit 1 with the hub's detail. */
export function failureOf(answer: HubAnswer, origin: string): HubRefusedError | HubUnreachableError {
  const parsed = errorBodySchema.safeParse(answer.body);
  const body = parsed.success ? (parsed.data as Record<string, unknown>) : undefined;
  const detail = body === undefined ? `HTTP ${answer.status}` : detailText(body.detail, answer.status);
  if (answer.status >= 500) return new HubUnreachableError(`hub ${origin} failed (HTTP ${answer.status}): ${detail}`, { status: answer.status });
  return new HubRefusedError(answer.status, `hub refused (HTTP ${answer.status}): ${detail}`, body, describeRefusal(body));
}

function detailText(detail: unknown, status: number): string {
  if (typeof detail === 'string') return detail;
  if (detail === undefined || detail === null) return `HTTP ${status}`;
  return JSON.stringify(detail);
}

function parseOk<T extends z.ZodType>(answer: HubAnswer, schema: T, origin: string, what: string): z.output<T> {
  if (answer.status < 200 || answer.status >= 300) throw failureOf(answer, origin);
  const parsed = schema.safeParse(answer.body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? '' : `: ${issue.path.join('.') || '(root)'} ${issue.message}`;
    throw new HubUnreachableError(`hub ${origin} sent ${what} that does not follow the wire contract${where}`);
  }
  return parsed.data;
}

/** The current config; `null` on 404, unless `missing: 'refuse'` (then the 404 is a HubRefusedError with the hub's detail). */
export async function getConfig(hub: HubHttp, service: string, missing: 'null' | 'refuse' = 'null'): Promise<CurrentConfig | null> {
  const answer = await hub.request('GET', path(service));
  if (answer.status === 404 && missing === 'null') return null;
  return { doc: parseOk(answer, configDocumentSchema, hub.origin, 'a config document'), etag: answer.headers.etag };
}

/** A conditional GET: `'unchanged'` on 304. */
export async function pollConfig(
  hub: HubHttp,
  service: string,
  etag: string | undefined,
  signal?: AbortSignal,
): Promise<CurrentConfig | null | 'unchanged'> {
  const answer = await hub.request('GET', path(service), { headers: { 'if-none-match': etag }, signal });
  if (answer.status === 304) return 'unchanged';
  if (answer.status === 404) return null;
  return { doc: parseOk(answer, configDocumentSchema, hub.origin, 'a config document'), etag: answer.headers.etag };
}

const writeQuery = (q: WriteQuery) => ({
  version: q.version,
  change_reason: q.changeReason,
  force: q.force === true ? 'true' : undefined,
});

const ifMatch = (revision: number): Record<string, string> => ({ 'if-match': `"${revision}"` });

export async function putConfig(hub: HubHttp, service: string, config: ConfigObject, revision: number, query: WriteQuery): Promise<WriteResponse> {
  const answer = await hub.request('POST', path(service), { body: config, query: writeQuery(query), headers: ifMatch(revision) });
  return parseOk(answer, writeResponseSchema, hub.origin, 'a write answer');
}

export async function patchConfig(hub: HubHttp, service: string, patch: ConfigObject, revision: number, query: WriteQuery): Promise<WriteResponse> {
  const answer = await hub.request('PATCH', path(service), {
    body: patch,
    contentType: 'application/merge-patch+json',
    query: writeQuery(query),
    headers: ifMatch(revision),
  });
  return parseOk(answer, writeResponseSchema, hub.origin, 'a write answer');
}

export async function rollbackConfig(
  hub: HubHttp,
  service: string,
  target: { revision: number } | { version: string },
  revision: number,
  query: WriteQuery,
): Promise<WriteResponse> {
  const answer = await hub.request('POST', `rollback/${path(service)}`, { body: target, query: writeQuery(query), headers: ifMatch(revision) });
  return parseOk(answer, writeResponseSchema, hub.origin, 'a write answer');
}

export async function getHistory(hub: HubHttp, service: string, limit: number): Promise<HistoryResponse> {
  const answer = await hub.request('GET', `history/${path(service)}`, { query: { limit } });
  return parseOk(answer, historyResponseSchema, hub.origin, 'a history');
}

/** The dry run: 200 → the answer; 422 → the refusal (its body says why); other failures throw. */
export async function validateConfig(
  hub: HubHttp,
  service: string,
  config: ConfigObject,
): Promise<{ kind: 'answer'; answer: ValidateResponse } | { kind: 'refused'; refusal: HubRefusedError }> {
  const answer = await hub.request('POST', path(service, 'validate'), { body: config });
  if (answer.status === 422) {
    const refusal = failureOf(answer, hub.origin);
    if (refusal instanceof HubRefusedError) return { kind: 'refused', refusal };
  }
  return { kind: 'answer', answer: parseOk(answer, validateResponseSchema, hub.origin, 'a validation answer') };
}

export async function getInstances(hub: HubHttp, service: string): Promise<InstancesResponse> {
  const answer = await hub.request('GET', path(service, 'instances'));
  return parseOk(answer, instancesResponseSchema, hub.origin, 'an instances view');
}
