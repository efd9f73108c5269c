/**
 * The hub's answers (and the few requests) that have no schema in the wire modules, as zod schemas built
 * from the wire modules' parts (DESIGN §3, docs/fleet.md). They document the API only: no handler parses
 * with them, so each is what the handler returns, written down once here.
 */
import { z } from 'zod';
import { reportedSourceSchema, SCHEMA_HASH_PATTERN, unrepresentedSchema } from '../../../src/fleet/wire.js';
import {
  configDocumentSchema,
  errorBodySchema,
  historyEntrySchema,
  historyResponseSchema,
  serviceNameSchema,
  writeResponseSchema,
} from '../../../src/hub/wire.js';

const count = z.number().int().nonnegative();
const epochMs = z.number().int().nonnegative().describe('epoch milliseconds (hub clock)');
const schemaHash = z.string().regex(SCHEMA_HASH_PATTERN).describe('sha256 (hex) of the schema upload\'s canonical JSON');

export const serviceParams = z.object({ service: serviceNameSchema });
export const schemaHashParams = z.object({ hash: z.string().regex(SCHEMA_HASH_PATTERN) });

/** A config or merge patch body: any JSON object (the hub's own checks: body.ts, secrets.ts). */
export const configObject = z.record(z.string(), z.unknown());

/** Every error of the reference hub: `{ detail: "<message>" }` (a string here; the wire type allows any value). */
export const detailBody = errorBodySchema.extend({ detail: z.string() });

/** 412: the revision the write named is not the current one (`null`: the service has no row). */
export const revisionConflict = detailBody.extend({ revision: count.nullable() });

/** 422 of the secret checks: where the secret-looking keys or values are (never the values). */
export const secretRefusal = detailBody.extend({ paths: z.array(z.string()) });

export const consumerIssue = z.looseObject({
  path: z.string().describe('dotted path of the value, "" for the root'),
  message: z.string(),
  keyword: z.string().describe('the JSON Schema keyword that failed'),
});

export const consumerResult = z.looseObject({
  schema_hash: schemaHash,
  instances: count,
  instance_ids: z.array(z.string()).max(20),
  issues: z.array(consumerIssue).max(50),
});

export const uncheckedPart = unrepresentedSchema.extend({ schema_hash: schemaHash });

/** 422 of the consumer check (docs/fleet.md §4): `consumers` are the ones that reject the config. */
export const consumerRefusal = detailBody.extend({
  issues: z.array(consumerIssue),
  consumers: z.array(consumerResult),
  unchecked: z.array(uncheckedPart),
  unknown_schemas: z.array(schemaHash),
});

/** A write's 422: the secret checks (`paths`) or the consumers' (`issues`, `consumers`, …). */
export const writeRefusal = z.union([secretRefusal, consumerRefusal]);

/** A forced write (`?force=true`) adds `forced`, `issues` and the rejecting `consumers`. */
export const writeAnswer = writeResponseSchema.extend({
  forced: z.literal(true).optional(),
  issues: z.array(consumerIssue).optional(),
  consumers: z.array(consumerResult).optional(),
});

export const fleetSummary = z.looseObject({ total: count, on_latest: count, behind: count, rejected: count });

export const serviceList = z.looseObject({
  services: z.array(
    configDocumentSchema
      .pick({ service_name: true, version: true, updated_at: true, revision: true, description: true, tags: true })
      .extend({ instances: fleetSummary }),
  ),
  total: count,
});

const override = z
  .looseObject({
    forced: z.literal(true),
    issues: z.array(consumerIssue),
    consumers: z.array(consumerResult),
    unknown_schemas: z.array(schemaHash),
  })
  .describe('what a forced write overrode (`null` on every other entry)');

export const historyAnswer = historyResponseSchema.extend({
  history: z.array(historyEntrySchema.extend({ override: override.nullable() })),
});

export const fleetView = z.looseObject({
  service_name: serviceNameSchema,
  revision: count.nullable().describe('the current revision, `null` when the service has no config'),
  instances: z
    .array(
      z.looseObject({
        instance_id: z.string(),
        host: z.string(),
        pid: count,
        client_version: z.string(),
        revision: count.nullable(),
        source: reportedSourceSchema.nullable(),
        stale: z.boolean(),
        last_seen: epochMs,
        expires_at: epochMs,
        last_error: z.string().nullable(),
        schema_hash: schemaHash.nullable(),
      }),
    )
    .max(10_000),
  summary: fleetSummary.describe('every live instance, also beyond the list'),
  truncated: z.boolean().describe('live instances exist beyond the list, or new ids of the service were not recorded lately (a cap)'),
});

export const validateAnswer = z.looseObject({
  valid: z.literal(true),
  consumers: z.array(consumerResult),
  unchecked: z.array(uncheckedPart),
  unknown_schemas: z.array(schemaHash),
});

export const reportAccepted = z.looseObject({ accepted: count.describe('services recorded (a new instance id beyond the caps is not)') });

export const schemaStored = z.looseObject({ hash: schemaHash, created: z.boolean() });

export const health = z.looseObject({
  status: z.enum(['ok', 'degraded', 'unavailable']),
  store: z.enum(['pglite', 'postgres']),
  db: z.boolean(),
  nats: z.boolean().describe('connected to NATS'),
  outbox: z
    .looseObject({ pending: count, dead: count, lag_ms: z.number().nonnegative() })
    .nullable()
    .describe('`null` when the database did not answer'),
  fleet: z
    .looseObject({ pending: count, dropped: count, last_flush_error: z.string().optional() })
    .describe('instance records waiting for a write, ids not recorded since the start, the last write error while writes fail'),
  reads: z
    .looseObject({
      source: z.enum(['memory', 'database']),
      listening: z.boolean(),
      entries: count,
      hits: count,
      misses: count,
      bypassed: count,
      invalidations: count,
      notifications: count,
      feed_lost: count,
      last_error: z.string().optional(),
    })
    .describe('the read path: GET from memory while the LISTEN on the commits\' NOTIFY works, from the database otherwise (`degraded`)'),
});

export const openApiDocument = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) });
