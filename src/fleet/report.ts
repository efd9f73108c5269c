/**
 * The instance report (docs/fleet.md §1) from the client's state (pure): who this instance is, and per
 * service what it serves. Only revisions, sources, codes and hashes: never a config value.
 */
import { hostname } from 'node:os';
import type { RuntimeStatus } from '../runtime/types.js';
import { CLIENT_VERSION } from '../version.js';
import { encodeReport, type InstanceReport, MAX_REPORT_BYTES, REPORT_PROTOCOL_VERSION, type ServiceReport } from './wire.js';

/** The fields of a report that do not depend on the services. */
export type ReportIdentity = Omit<InstanceReport, 'services'>;

const ERROR_CODE = /^[A-Z_]{1,40}$/;
const MAX_POLL_MS = 2 ** 31;

/** The heartbeat of a client that does not poll (NATS only): one report request per this interval. */
export const HEARTBEAT_MS = 60_000;

/**
 * `poll_ms` is the longest the hub may wait for this instance's next request (it expires an instance after
 * 3 × `poll_ms` of silence): the poll interval, or the recovery backoff's bound when that is longer (a
 * failing instance, e.g. one that rejects the hub's value, retries on that backoff rather than the poll);
 * the heartbeat's interval when the client does not poll.
 */
export function reportIdentity(instanceId: string, pollIntervalMs: number | false, recoveryMaxDelayMs = 0): ReportIdentity {
  return {
    v: REPORT_PROTOCOL_VERSION,
    id: instanceId,
    host: hostname().slice(0, 255),
    pid: process.pid,
    client: CLIENT_VERSION.slice(0, 40),
    poll_ms: pollIntervalMs === false ? HEARTBEAT_MS : Math.min(Math.round(Math.max(pollIntervalMs, recoveryMaxDelayMs)), MAX_POLL_MS),
  };
}

/** One service's entry, from its status and its schema hash. */
export function serviceReport(status: RuntimeStatus, schemaHash: string | undefined): ServiceReport {
  const { revision, lastErrorCode } = status;
  return {
    revision: revision !== undefined && Number.isSafeInteger(revision) && revision >= 0 ? revision : null,
    source: status.source ?? null,
    stale: status.stale,
    error: lastErrorCode !== undefined && ERROR_CODE.test(lastErrorCode) ? lastErrorCode : null,
    schema: schemaHash ?? null,
  };
}

/** Whether two entries say the same, staleness included (the header is rebuilt when anything differs). */
export function sameReport(a: ServiceReport, b: ServiceReport): boolean {
  return a.revision === b.revision && a.source === b.source && a.stale === b.stale && a.error === b.error && a.schema === b.schema;
}

/** Whether the hub would learn something from `next` after `known`: staleness alone is no news (it follows the TTL). */
export function isNews(next: ServiceReport, known: ServiceReport | undefined): boolean {
  return known === undefined || next.revision !== known.revision || next.source !== known.source || next.error !== known.error || next.schema !== known.schema;
}

/**
 * The header value of a report: its services in order, as many as fit in 8 192 bytes (the first always
 * does: one entry is far below the bound). `undefined` only if not even the first fits.
 */
export function encodeBounded(identity: ReportIdentity, services: ReadonlyArray<readonly [string, ServiceReport]>): string | undefined {
  let all = encodeReport({ ...identity, services: Object.fromEntries(services) });
  if (all.length <= MAX_REPORT_BYTES) return all;
  // Rare (dozens of services in one report request): shrink by halves, then keep the first that fits.
  let count = services.length;
  while (count > 1 && all.length > MAX_REPORT_BYTES) {
    count = Math.max(1, Math.floor(count / 2));
    all = encodeReport({ ...identity, services: Object.fromEntries(services.slice(0, count)) });
  }
  return all.length <= MAX_REPORT_BYTES ? all : undefined;
}
