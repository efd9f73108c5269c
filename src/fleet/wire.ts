/**
 * The fleet protocol's wire shapes (docs/fleet.md): the instance report a client sends in the
 * `x-config-report` header (and as the body of a report request), and the schema upload. One place, used
 * by the client and the reference hub.
 */
import { z } from 'zod';
import { serviceNameSchema } from '../hub/wire.js';

export const REPORT_HEADER = 'x-config-report';
export const REPORT_ERROR_HEADER = 'x-config-report-error';
export const SCHEMA_UNKNOWN_HEADER = 'x-config-schema-unknown';
export const REPORT_PROTOCOL_VERSION = 1;
/** The header's size bound, in bytes (it is ASCII). */
export const MAX_REPORT_BYTES = 8192;
export const MAX_REPORT_SERVICES = 100;
/** A schema upload's body bound, in bytes. */
export const MAX_SCHEMA_BYTES = 256 * 1024;
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
export const SCHEMA_HASH_PATTERN = /^[0-9a-f]{64}$/;

export const reportedSourceSchema = z.enum(['hub', 'cache', 'notice', 'snapshot', 'defaults']);

export const serviceReportSchema = z.strictObject({
  revision: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable(),
  source: reportedSourceSchema.nullable(),
  stale: z.boolean(),
  error: z
    .string()
    .regex(/^[A-Z_]{1,40}$/)
    .nullable(),
  schema: z.string().regex(SCHEMA_HASH_PATTERN).nullable(),
});

export const instanceReportSchema = z.strictObject({
  v: z.literal(REPORT_PROTOCOL_VERSION),
  id: z.string().regex(INSTANCE_ID_PATTERN),
  host: z.string().max(255),
  pid: z.number().int().nonnegative().max(2 ** 32),
  client: z.string().max(40),
  poll_ms: z.number().int().nonnegative().max(2 ** 31),
  services: z
    .record(serviceNameSchema, serviceReportSchema)
    .refine((s) => Object.keys(s).length <= MAX_REPORT_SERVICES, `at most ${MAX_REPORT_SERVICES} services`),
});

export type ServiceReport = z.output<typeof serviceReportSchema>;
export type InstanceReport = z.output<typeof instanceReportSchema>;

/** Where JSON Schema could not say what the zod schema checks; the client still checks it. */
export const unrepresentedSchema = z.strictObject({
  path: z.string().max(1000),
  kind: z.enum(['refinement', 'transform', 'custom', 'unrepresentable']),
});

export const schemaUploadSchema = z.strictObject({
  schema: z.record(z.string(), z.unknown()),
  unrepresented: z.array(unrepresentedSchema).max(1000),
});

export type Unrepresented = z.output<typeof unrepresentedSchema>;
export type SchemaUpload = z.output<typeof schemaUploadSchema>;

/** The report as one header value: JSON with every non-ASCII character `\u`-escaped (header values are bytes). */
export function encodeReport(report: InstanceReport): string {
  return JSON.stringify(report).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
