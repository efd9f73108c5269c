/** Pure comparisons of hub layers and notices: which answer is older, which notice is news. */
import type { ConfigDocument, Notice } from '../hub/wire.js';
import { sanitize } from '../layers/merge.js';
import { deepEqual, type PlainObject } from '../layers/paths.js';
import { stripCriticalPaths } from '../layers/resolve.js';

/** The hub layer as applied (sanitized, critical paths removed) with its metadata. */
export interface HubLayer {
  config: PlainObject;
  version: string;
  updatedAt: number;
  revision: number | undefined;
  etag: string | undefined;
}

/** What the hub last confirmed: a revision / `updated_at` pair (both undefined after a 404). */
export interface Confirmed {
  revision: number | undefined;
  updatedAt: number | undefined;
}

/** `revision` when both sides have one, else `updated_at`. */
export function isOlder(doc: { revision?: number | undefined; updated_at: number }, than: Confirmed): boolean {
  if (doc.revision !== undefined && than.revision !== undefined) return doc.revision < than.revision;
  return than.updatedAt !== undefined && doc.updated_at < than.updatedAt;
}

/** Older than what the hub confirmed, or the same change again. */
export function isStaleNotice(notice: Notice, confirmed: Confirmed, current: HubLayer | undefined, criticalPaths: readonly string[]): boolean {
  if (notice.revision !== undefined && confirmed.revision !== undefined) return notice.revision <= confirmed.revision;
  if (notice.updated_at === undefined || confirmed.updatedAt === undefined) return false;
  if (notice.updated_at < confirmed.updatedAt) return true;
  if (notice.updated_at > confirmed.updatedAt || notice.config === undefined || !current) return false;
  return deepEqual(stripCriticalPaths(sanitize(notice.config), criticalPaths).hub, current.config);
}

/** Same revision as confirmed, other content: worth one check with the hub (a hub restored or rewritten). */
export function isSameRevisionOtherContent(notice: Notice, confirmed: Confirmed, current: HubLayer | undefined, criticalPaths: readonly string[]): boolean {
  if (notice.revision === undefined || notice.revision !== confirmed.revision || notice.config === undefined || !current) return false;
  return !deepEqual(stripCriticalPaths(sanitize(notice.config), criticalPaths).hub, current.config);
}

/** A notice that carries its payload, as the document it describes; `undefined` when it is only a hint. */
export function noticeDocument(service: string, notice: Notice): ConfigDocument | undefined {
  if (notice.config === undefined || notice.updated_at === undefined) return undefined;
  return { service_name: service, config: notice.config, version: notice.version ?? '', updated_at: notice.updated_at, revision: notice.revision };
}
