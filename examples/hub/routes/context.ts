import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MIN_REVISION_HEADER, serviceNameSchema } from '../../../src/hub/wire.js';
import { type Access, type Authenticator, openPrincipal, type Principal } from '../auth.js';
import type { Broadcaster } from '../broadcaster.js';
import { HubError } from '../errors.js';
import type { Fleet } from '../fleet/fleet.js';
import type { HubMetrics } from '../metrics/hub-metrics.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { ReadCache } from '../store/read-cache.js';
import type { ConfigRow, Store } from '../store/types.js';

/** What the route plugins share; built once by `buildHub`. */
export interface RouteContext {
  store: Store;
  /** GET / 304 from memory, kept current by `feed` (issue 13); every config read of a route goes through it. */
  reads: ReadCache;
  /** The LISTEN on `hub_config_changes` that keeps `reads` current. */
  feed: ChangeFeed;
  /** `false` when the hub was built with `readCache: false` (the feed is then not started). */
  readCacheEnabled: boolean;
  broadcaster: Broadcaster;
  /** `undefined` when auth is disabled. */
  authenticator: Authenticator | undefined;
  isSecretKey: (key: string) => boolean;
  maxDepth: number;
  /** Instance reports, consumer schemas and the write check (docs/fleet.md). */
  fleet: Fleet;
  /** `/metrics`: the write counters and durations are recorded by the write path. */
  metrics: HubMetrics;
}

/** Principals resolved by the `onRequest` hook (`authenticateRequest`), before the body is read. */
const principals = new WeakMap<FastifyRequest, Principal>();

/**
 * The `onRequest` step: resolves the caller's key (401/429) before Fastify reads and parses the body, so
 * a stranger's 1 MiB body costs no JSON parse (issue 10). `buildHub` runs it for every API route.
 * Returns the principal (`undefined` when auth is disabled: everything is allowed).
 */
export function authenticateRequest(ctx: RouteContext, request: FastifyRequest): Principal | undefined {
  if (ctx.authenticator === undefined) return undefined;
  const principal = ctx.authenticator.authenticate(request.headers['x-api-key'], request.ip);
  principals.set(request, principal);
  return principal;
}

/** Who is calling: the API key, or (auth disabled) an open principal named by `updated_by`. */
export function principalOf(ctx: RouteContext, request: FastifyRequest): Principal {
  if (ctx.authenticator === undefined) {
    const by = (request.query as Record<string, unknown> | undefined)?.updated_by;
    return openPrincipal(typeof by === 'string' && by.length > 0 && by.length <= 100 ? by : 'api-user');
  }
  return principals.get(request) ?? ctx.authenticator.authenticate(request.headers['x-api-key'], request.ip);
}

/** Validates the `:service` parameter (400 before any SQL or subject) and checks the caller's scope (403). */
export function serviceParam(request: FastifyRequest, principal: Principal, access: Access): string {
  const raw = (request.params as Record<string, unknown>).service;
  const parsed = serviceNameSchema.safeParse(raw);
  if (!parsed.success) throw new HubError(400, parsed.error.issues[0]?.message ?? 'invalid service name');
  if (!principal.can(access, parsed.data)) {
    throw new HubError(403, `API key '${principal.name}' may not ${access} '${parsed.data}'`);
  }
  return parsed.data;
}

export function parseQuery<T extends z.ZodType>(schema: T, request: FastifyRequest): z.output<T> {
  const parsed = schema.safeParse(request.query ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new HubError(400, issue === undefined ? 'invalid query' : `${issue.path.join('.') || 'query'}: ${issue.message}`);
  }
  return parsed.data;
}

export const writeQuerySchema = z.looseObject({
  version: z.string().min(1).max(20, 'version is at most 20 characters').optional().describe('the version label the write stores (kept when absent)'),
  change_reason: z.string().max(1000).optional().describe('recorded in the audit trail'),
  updated_by: z.string().max(100).optional().describe('the author, with auth disabled only (otherwise the key\'s name)'),
  /** Commit even when live consumers' schemas reject the result (docs/fleet.md §4); needs `change_reason`. */
  force: z
    .enum(['true', 'false'], "force must be 'true' or 'false'")
    .optional()
    .describe('`true`: commit even when live consumers would reject the result (needs `change_reason`; docs/fleet.md §4)')
    .transform((v) => v === 'true'),
});

// `"<revision>"` (what writers send as If-Match) or the full ETag `"<revision>-<updated_at base 36>"`.
const ETAG_ITEM = /^\s*(?:W\/)?"(\d+)(?:-[0-9a-z]+)?"\s*$|^\s*(\d+)\s*$/;

/** `If-Match: "<revision>"` (or the full ETag) → the revision; `*` or absent → undefined; anything else → 400. */
export function ifMatchRevision(request: FastifyRequest): number | undefined {
  const header = request.headers['if-match'];
  if (header === undefined || header.trim() === '*') return undefined;
  const m = ETAG_ITEM.exec(header);
  const n = m === null ? Number.NaN : Number(m[1] ?? m[2]);
  if (!Number.isSafeInteger(n)) throw new HubError(400, 'If-Match must be "<revision>"');
  return n;
}

/**
 * The ETag names the revision *and* its commit time: a hub restored from a backup reuses revision numbers
 * for other content, and a client holding the old content must not be told "not modified".
 */
export const etag = (row: { revision: number; updated_at: number }): string => `"${row.revision}-${row.updated_at.toString(36)}"`;

/** `If-None-Match` matches only the exact current ETag (or `*`). */
export function etagMatches(header: string | undefined, current: string): boolean {
  if (header === undefined) return false;
  if (header === current) return true;
  return header.split(',').some((item) => {
    const tag = item.trim().replace(/^W\//, '');
    return tag === '*' || tag === current;
  });
}

export function documentOf(row: ConfigRow) {
  return {
    service_name: row.service_name,
    config: row.config,
    version: row.version,
    updated_at: row.updated_at,
    description: row.description,
    tags: row.tags,
    active: row.active,
    revision: row.revision,
  };
}

/**
 * `x-config-min-revision` (docs/fleet.md §7): the revision a client heard of in a notice. A held row
 * older than that is read again from the database, so a replica that has not yet heard the commit's
 * NOTIFY still answers with it. A hint: anything but a plain revision number is ignored.
 */
export function minRevisionOf(request: FastifyRequest): number | undefined {
  const header = request.headers[MIN_REVISION_HEADER];
  if (typeof header !== 'string' || header.length > 16 || !/^\d+$/.test(header)) return undefined;
  return Number(header);
}

export function notFound(service: string): HubError {
  return new HubError(404, `no config for service '${service}'`);
}

export type { FastifyReply };
