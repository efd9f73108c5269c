/**
 * Zod schemas of the Central Hub wire contract (DESIGN §3). One place, used by the client (`src/`),
 * the reference hub (`examples/hub`) and anyone building a hub (`@central-hub/config/wire`).
 *
 * Parsers are lenient where the original Python hub is (config as a JSON string, missing revision)
 * and strict where safety needs it (service names, object-shaped configs).
 */
import { z } from 'zod';

/** Service names: what the original schema allowed, checked before any SQL or NATS subject is built. */
export const SERVICE_NAME_PATTERN = /^[a-z0-9-]+$/;
export const SERVICE_NAME_MAX_LENGTH = 100;
/** `version` is VARCHAR(20) in the original schema. */
export const VERSION_MAX_LENGTH = 20;
/** Default NATS subject prefix; the full subject is `<prefix>.<service>`. */
export const DEFAULT_SUBJECT_PREFIX = 'config.update';
/**
 * Request header of a refetch after a notice: the revision the notice named. A hub replica serving from
 * memory reads its database when what it holds is older (the reference hub, issue 13); others ignore it.
 */
export const MIN_REVISION_HEADER = 'x-config-min-revision';

/**
 * Keys no config may carry: they would reach `Object.prototype` through assignment. The hub refuses them
 * (400), the client drops them from anything it receives.
 */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export function isForbiddenKey(key: string): boolean {
  return FORBIDDEN_KEYS.has(key);
}

export const serviceNameSchema = z
  .string()
  .min(1, 'service name is empty')
  .max(SERVICE_NAME_MAX_LENGTH, `service name is longer than ${SERVICE_NAME_MAX_LENGTH} characters`)
  .regex(SERVICE_NAME_PATTERN, 'service name must match ^[a-z0-9-]+$');

export function isValidServiceName(name: unknown): name is string {
  return serviceNameSchema.safeParse(name).success;
}

/** A JSON object (not an array, not null). */
export type ConfigObject = Record<string, unknown>;

const plainObject = z.custom<ConfigObject>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  'config must be a JSON object',
);

/**
 * `config` as sent by hubs: an object, or (older hubs) a JSON-encoded string of an object.
 * The output is always an object.
 */
export const wireConfigSchema = z.union([plainObject, z.string()]).transform((value, ctx): ConfigObject => {
  if (typeof value !== 'string') return value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'config is a string that is not valid JSON' });
    return z.NEVER;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    ctx.addIssue({ code: 'custom', message: 'config string does not encode a JSON object' });
    return z.NEVER;
  }
  return parsed as ConfigObject;
});

/** Epoch milliseconds; the original hub sends an integer, some proxies a numeric string or ISO date. */
export const epochMsSchema = z.union([
  z.number().finite().nonnegative(),
  z
    .string()
    .transform((s, ctx) => {
      const n = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
      if (!Number.isFinite(n)) {
        ctx.addIssue({ code: 'custom', message: 'updated_at is not a timestamp' });
        return z.NEVER;
      }
      return n;
    }),
]);

const revisionSchema = z.coerce.number().int().nonnegative();

/** `GET /api/v1/config/{service}` → 200. */
export const configDocumentSchema = z.looseObject({
  service_name: serviceNameSchema,
  config: wireConfigSchema,
  version: z.string().nullish().transform((v) => v ?? ''),
  updated_at: epochMsSchema,
  description: z.string().nullish(),
  tags: z.array(z.string()).nullish(),
  active: z.boolean().nullish(),
  /** Reference-hub extension: grows by one on every change of the service. */
  revision: revisionSchema.optional(),
});
export type ConfigDocument = z.output<typeof configDocumentSchema>;

/** Error bodies: `{ "detail": ... }` (FastAPI style). */
export const errorBodySchema = z.looseObject({ detail: z.unknown() });
export type ErrorBody = z.output<typeof errorBodySchema>;

export const broadcastStatusSchema = z.enum(['sent', 'unavailable', 'failed']);
export type BroadcastStatus = z.output<typeof broadcastStatusSchema>;

/** `POST|PATCH /api/v1/config/{service}` and `POST /rollback/{service}` → 200/201. */
export const writeResponseSchema = z.looseObject({
  status: z.enum(['updated', 'created', 'deleted', 'rollback']),
  service_name: serviceNameSchema,
  config: wireConfigSchema,
  version: z.string().nullish(),
  updated_at: epochMsSchema,
  updated_by: z.string().nullish(),
  broadcast: broadcastStatusSchema,
  revision: revisionSchema.optional(),
});
export type WriteResponse = z.output<typeof writeResponseSchema>;

export const historyActionSchema = z.enum(['created', 'updated', 'deleted', 'rollback']);
export type HistoryAction = z.output<typeof historyActionSchema>;

export const historyEntrySchema = z.looseObject({
  version: z.string().nullish(),
  action: historyActionSchema,
  changed_by: z.string().nullish(),
  changed_at: z.union([epochMsSchema, z.string()]),
  change_reason: z.string().nullish(),
  config: wireConfigSchema.nullish(),
  revision: revisionSchema.optional(),
});

/** `GET /api/v1/config/history/{service}?limit=` → 200, newest first. */
export const historyResponseSchema = z.looseObject({
  service_name: serviceNameSchema,
  history: z.array(historyEntrySchema),
  total: z.number().int().nonnegative(),
  limit: z.number().int().positive(),
});
export type HistoryResponse = z.output<typeof historyResponseSchema>;

/**
 * NATS `config.update.{service}` payload. The original hub publishes
 * `{ service_name, config, version, updated_at, updated_by }`; the reference hub adds `revision` and `action`,
 * and, when it has a signing key, `kid` and `sig` (Ed25519, see `notice-signature.ts`; checked by the
 * parser on the JSON as received, so here they are only typed: a malformed one becomes `undefined`).
 */
export const noticeSchema = z.looseObject({
  service_name: serviceNameSchema,
  config: wireConfigSchema.optional(),
  version: z.string().nullish(),
  updated_at: epochMsSchema.optional(),
  updated_by: z.string().nullish(),
  revision: revisionSchema.optional(),
  action: historyActionSchema.optional(),
  kid: z.string().optional().catch(undefined),
  sig: z.string().optional().catch(undefined),
});
export type Notice = z.output<typeof noticeSchema>;

export function subjectFor(service: string, prefix: string = DEFAULT_SUBJECT_PREFIX): string {
  return `${prefix}.${serviceNameSchema.parse(service)}`;
}
