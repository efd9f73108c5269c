/**
 * The SQL of `config_instances` (migration 005): the batched upsert of the write-behind, the pruning of
 * expired rows, and the reads, which merge the live rows of the table with a replica's records not yet
 * flushed (passed as JSON) so that every replica answers the same. Timestamps are epoch ms on the hub's
 * clock, passed as numbers.
 */
import type { SqlExecutor } from '../store/sql-driver.js';
import type { InstanceFields } from './report.js';

/** A row of `config_instances` as the hub serves it (`last_seen`, `expires_at`: epoch ms). */
export interface InstanceRow extends Omit<InstanceFields, 'expiry_ms'> {
  last_seen: number;
  expires_at: number;
}

/** Rows per upsert statement. */
export const UPSERT_CHUNK = 500;

const COLUMNS = `service_name text, instance_id text, host text, pid bigint, client_version text, revision bigint,
  source text, stale boolean, last_error text, schema_hash text, last_seen bigint, expires_at bigint`;
const ms = (column: string) => `round(extract(epoch FROM ${column}) * 1000)::bigint`;
const at = (param: string) => `to_timestamp(${param}::double precision / 1000)`;

// Sorted by key, so that two replicas upserting overlapping batches lock rows in one order (no deadlock).
// A row another replica saw later is not overwritten with an older sighting.
const UPSERT = `
INSERT INTO config_instances (service_name, instance_id, host, pid, client_version, revision, source, stale,
                              last_error, schema_hash, last_seen, expires_at)
SELECT r.service_name, r.instance_id, r.host, r.pid, r.client_version, r.revision, r.source, r.stale,
       r.last_error, r.schema_hash, ${at('r.last_seen')}, ${at('r.expires_at')}
FROM jsonb_to_recordset($1::jsonb) AS r(${COLUMNS})
ORDER BY r.service_name, r.instance_id
ON CONFLICT (service_name, instance_id) DO UPDATE SET
  host = EXCLUDED.host, pid = EXCLUDED.pid, client_version = EXCLUDED.client_version, revision = EXCLUDED.revision,
  source = EXCLUDED.source, stale = EXCLUDED.stale, last_error = EXCLUDED.last_error,
  schema_hash = EXCLUDED.schema_hash, last_seen = EXCLUDED.last_seen, expires_at = EXCLUDED.expires_at
WHERE config_instances.last_seen <= EXCLUDED.last_seen`;

export async function upsertInstances(db: SqlExecutor, rows: readonly InstanceRow[]): Promise<void> {
  const sorted = [...rows].sort((a, b) => compareKey(a, b));
  for (let i = 0; i < sorted.length; i += UPSERT_CHUNK) {
    await db.query(UPSERT, [JSON.stringify(sorted.slice(i, i + UPSERT_CHUNK))]);
  }
}

const compareKey = (a: InstanceRow, b: InstanceRow): number =>
  a.service_name < b.service_name ? -1 : a.service_name > b.service_name ? 1 : a.instance_id < b.instance_id ? -1 : a.instance_id > b.instance_id ? 1 : 0;

/** Deletes rows expired before `now`; returns how many. */
export async function pruneInstances(db: SqlExecutor, now: number): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `WITH gone AS (DELETE FROM config_instances WHERE expires_at <= ${at('$1')} RETURNING 1) SELECT count(*)::int AS n FROM gone`,
    [now],
  );
  return rows[0]?.n ?? 0;
}

/** The live instances of `service` in the table (this replica's unflushed records are merged by the caller). */
export async function liveRows(db: SqlExecutor, service: string, now: number, limit: number): Promise<InstanceRow[]> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT service_name, instance_id, host, pid, client_version, revision, source, stale, last_error, schema_hash,
            ${ms('last_seen')} AS last_seen, ${ms('expires_at')} AS expires_at
     FROM config_instances WHERE service_name = $1 AND expires_at > ${at('$2')}
     ORDER BY instance_id LIMIT $3`,
    [service, now, limit],
  );
  return rows.map((r) => ({
    service_name: String(r.service_name),
    instance_id: String(r.instance_id),
    host: String(r.host),
    pid: Number(r.pid),
    client_version: String(r.client_version),
    revision: r.revision === null ? null : Number(r.revision),
    source: (r.source as string | null) ?? null,
    stale: r.stale === true,
    last_error: (r.last_error as string | null) ?? null,
    schema_hash: r.schema_hash === null ? null : String(r.schema_hash).trim(),
    last_seen: Number(r.last_seen),
    expires_at: Number(r.expires_at),
  }));
}

/**
 * The live instances of the table merged with `unflushed` (live rows of this replica not yet written):
 * per (service, instance) the newest sighting wins. `$1` now, `$2` the unflushed rows as JSON, `$3` a
 * service or NULL for all. Used by the grouped reads below.
 */
const LIVE = `
WITH mem AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS m(${COLUMNS})),
live AS (
  SELECT DISTINCT ON (service_name, instance_id) service_name, instance_id, revision, last_error, schema_hash
  FROM (
    SELECT service_name, instance_id, revision, last_error, trim(schema_hash) AS schema_hash, ${ms('last_seen')} AS seen, 0 AS mine
    FROM config_instances WHERE expires_at > ${at('$1')} AND ($3::text IS NULL OR service_name = $3::text)
    UNION ALL
    SELECT service_name, instance_id, revision, last_error, schema_hash, last_seen, 1 FROM mem
    WHERE $3::text IS NULL OR service_name = $3::text
  ) u
  ORDER BY service_name, instance_id, seen DESC, mine DESC)`;

export interface CountGroup {
  service_name: string;
  revision: number | null;
  last_error: string | null;
  count: number;
}

/**
 * Live instances per service, grouped by what the summary needs (revision, rejected or not): one query,
 * for every service or for `service` only (then `unflushed` may hold that service's rows only).
 */
export async function countGroups(
  db: SqlExecutor,
  now: number,
  unflushed: readonly InstanceRow[],
  rejectedError: string,
  service: string | null = null,
): Promise<CountGroup[]> {
  const rows = await db.query<{ service_name: string; revision: number | string | null; last_error: string | null; n: number }>(
    `${LIVE}
     SELECT service_name, revision, CASE WHEN last_error = $4 THEN last_error END AS last_error, count(*)::int AS n
     FROM live GROUP BY 1, 2, 3`,
    [now, JSON.stringify(unflushed), service, rejectedError],
  );
  return rows.map((r) => ({
    service_name: r.service_name,
    revision: r.revision === null ? null : Number(r.revision),
    last_error: r.last_error,
    count: r.n,
  }));
}

export interface SchemaGroup {
  schema_hash: string;
  instances: number;
  /** At most `idLimit`, sorted. */
  instance_ids: string[];
  /** Whether `config_schemas` holds the schema. */
  held: boolean;
}

/**
 * The distinct schema hashes of the live instances of `service`: those `config_schemas` holds first, then
 * the others, each most instances first (so that hashes nobody uploaded never push held ones past the limit).
 */
export async function schemaGroups(
  db: SqlExecutor,
  service: string,
  now: number,
  unflushed: readonly InstanceRow[],
  idLimit: number,
  groupLimit: number,
): Promise<SchemaGroup[]> {
  const rows = await db.query<{ schema_hash: string; n: number; ids: string[]; held: boolean }>(
    `${LIVE},
     grouped AS (
       SELECT schema_hash, count(*)::int AS n, (array_agg(instance_id ORDER BY instance_id))[1:$4::int] AS ids
       FROM live WHERE schema_hash IS NOT NULL GROUP BY schema_hash)
     SELECT g.schema_hash, g.n, g.ids, EXISTS (SELECT 1 FROM config_schemas s WHERE s.hash = g.schema_hash) AS held
     FROM grouped g ORDER BY held DESC, g.n DESC, g.schema_hash LIMIT $5`,
    [now, JSON.stringify(unflushed), service, idLimit, groupLimit],
  );
  return rows.map((r) => ({ schema_hash: r.schema_hash, instances: r.n, instance_ids: r.ids ?? [], held: r.held === true }));
}
