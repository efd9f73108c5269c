/**
 * Raw HTTP to a listening hub for the fleet tests (test/integration/hub-fleet*.test.ts): hand-built
 * report headers and schema uploads (the client side is built and tested elsewhere), undici requests.
 */
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { encodeReport, type InstanceReport, type ServiceReport } from '../../src/fleet/wire.js';
import { canonicalJson } from '../../src/hub/notice-signature.js';
import { KEYS } from './hub-fixtures.js';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

export interface CallOptions {
  body?: unknown;
  /** A raw body (sent as is). */
  raw?: string;
  headers?: Record<string, string>;
  /** The API key; `null` sends none. @default the admin key */
  key?: string | null;
}

/** Counts the answers, for the tests' liveness assertions. */
export const answered = { count: 0 };

export async function call(base: string, method: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const key = options.key === undefined ? KEYS.admin.key : options.key;
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const res = await request(`${base}${path}`, {
    method: method as 'GET',
    headers: {
      ...(key === null ? {} : { 'x-api-key': key }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    body,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  answered.count++;
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {}
  return { status: res.statusCode, headers: res.headers, body: parsed };
}

export const serviceReport = (over: Partial<ServiceReport> = {}): ServiceReport => ({
  revision: 1,
  source: 'hub',
  stale: false,
  error: null,
  schema: null,
  ...over,
});

export function report(id: string, services: Record<string, Partial<ServiceReport>>, over: Partial<InstanceReport> = {}): InstanceReport {
  return {
    v: 1,
    id,
    host: `host-${id}`,
    pid: 4242,
    client: '0.1.0',
    poll_ms: 60_000,
    services: Object.fromEntries(Object.entries(services).map(([name, s]) => [name, serviceReport(s)])),
    ...over,
  };
}

export const reportHeader = (r: InstanceReport): Record<string, string> => ({ 'x-config-report': encodeReport(r) });

export interface Upload {
  hash: string;
  body: { schema: Record<string, unknown>; unrepresented: { path: string; kind: string }[] };
}

export function schemaUpload(schema: Record<string, unknown>, unrepresented: { path: string; kind: string }[] = []): Upload {
  const body = { schema: { $schema: 'https://json-schema.org/draft/2020-12/schema', ...schema }, unrepresented };
  return { hash: createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex'), body };
}

/** What a consumer of `{ operational: { batch_size > 0 } }` accepts. */
export const BATCH_SCHEMA = {
  type: 'object',
  properties: {
    operational: {
      type: 'object',
      properties: { batch_size: { type: 'integer', exclusiveMinimum: 0 } },
      required: ['batch_size'],
    },
  },
  required: ['operational'],
};

/** Uploads a schema and reports `instances` instances of `service` running it (GET with the header). */
export async function consumers(base: string, service: string, upload: Upload, ids: readonly string[], revision = 1): Promise<void> {
  const put = await call(base, 'PUT', `/api/v1/schemas/${upload.hash}`, { body: upload.body });
  if (put.status !== 201 && put.status !== 200) throw new Error(`upload: ${put.status} ${JSON.stringify(put.body)}`);
  for (const id of ids) {
    const r = await call(base, 'POST', `/api/v1/config/${service}/instances`, { body: report(id, { [service]: { revision, schema: upload.hash } }) });
    if (r.status !== 202) throw new Error(`report: ${r.status} ${JSON.stringify(r.body)}`);
  }
}
