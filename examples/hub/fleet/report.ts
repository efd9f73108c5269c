/**
 * The instance report (docs/fleet.md §1): the `x-config-report` header (or a report request's body) →
 * an `InstanceReport` through the shared zod schema, plus the rows it records. A bad header never fails
 * the request: the caller answers normally and says why in `x-config-report-error`.
 */
import { type InstanceReport, instanceReportSchema, MAX_REPORT_BYTES } from '../../../src/fleet/wire.js';
import { expiryMs } from './rules.js';

/** One reported service of one instance: the columns of `config_instances` but the two timestamps. */
export interface InstanceFields {
  service_name: string;
  instance_id: string;
  host: string;
  pid: number;
  client_version: string;
  revision: number | null;
  source: string | null;
  stale: boolean;
  last_error: string | null;
  schema_hash: string | null;
  /** How long after `last_seen` the instance expires (`expiryMs(poll_ms)`). */
  expiry_ms: number;
}

export type ParsedReport =
  | { ok: true; report: InstanceReport; entries: readonly InstanceFields[] }
  | { ok: false; reason: string };

/** Repeated identical headers cost one Map lookup; distinct ones beyond this evict the oldest. */
export const DEFAULT_REPORT_CACHE_SIZE = 1000;

// Header values are one line of ASCII (non-ASCII is \u-escaped, docs/fleet.md §1); Node reads them as latin1.
const PRINTABLE_ASCII = /^[\t\x20-\x7e]*$/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Control characters (U+0000 is what PostgreSQL's text cannot store; none belongs in a log line) and lone surrogates. */
function unstorable(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return LONE_SURROGATE.test(text);
}

/** A reason fit for a response header: printable ASCII, at most 200 characters. */
export function headerSafe(reason: string): string {
  return reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/** Checks a parsed JSON value against the report schema; the entries are what the registry records. */
export function checkReport(value: unknown): ParsedReport {
  const parsed = instanceReportSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? 'report' : issue.path.join('.');
    return { ok: false, reason: headerSafe(`invalid report: ${where}: ${issue?.message ?? 'invalid'}`) };
  }
  const report = parsed.data;
  if (unstorable(report.host) || unstorable(report.client)) {
    return { ok: false, reason: 'invalid report: host and client must not hold control characters or lone surrogates' };
  }
  const expiry = expiryMs(report.poll_ms);
  const entries = Object.entries(report.services).map(
    ([service, s]): InstanceFields => ({
      service_name: service,
      instance_id: report.id,
      host: report.host,
      pid: report.pid,
      client_version: report.client,
      revision: s.revision,
      source: s.source,
      stale: s.stale,
      last_error: s.error,
      schema_hash: s.schema,
      expiry_ms: expiry,
    }),
  );
  return { ok: true, report, entries };
}

/** Parses one header value. Bounded: more than `MAX_REPORT_BYTES` is refused before `JSON.parse`. */
export function parseReportHeader(raw: string): ParsedReport {
  if (raw.length > MAX_REPORT_BYTES) return { ok: false, reason: `report is larger than ${MAX_REPORT_BYTES} bytes` };
  if (!PRINTABLE_ASCII.test(raw)) return { ok: false, reason: 'report is not printable ASCII (escape non-ASCII characters as \\u)' };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'report is not valid JSON' };
  }
  return checkReport(value);
}

/**
 * `parseReportHeader` behind a bounded cache keyed by the raw header: a fleet repeats the same header on
 * every poll, and the GET path is the fleet's hot path. Results are shared: treat them as read-only.
 */
export class ReportCache {
  readonly #entries = new Map<string, ParsedReport>();
  readonly #max: number;

  constructor(max: number = DEFAULT_REPORT_CACHE_SIZE) {
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('report cache size must be a positive integer');
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  parse(raw: string): ParsedReport {
    const hit = this.#entries.get(raw);
    if (hit !== undefined) return hit;
    const parsed = parseReportHeader(raw);
    // Oversized values are refused in O(1) and would only take room.
    if (raw.length <= MAX_REPORT_BYTES) {
      if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value as string);
      this.#entries.set(raw, parsed);
    }
    return parsed;
  }
}
