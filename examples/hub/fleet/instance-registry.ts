/**
 * The instances that report (docs/fleet.md §5), in memory and written behind to `config_instances`:
 * batched, at most once per `flushIntervalMs` per replica, and at once when the last flush is that long
 * ago (so a rejection reaches the database, and the other replicas, within about one interval). Reads
 * merge the table with this replica's unflushed records. A database error while flushing is logged and
 * the records are retried (backing off); it never reaches a request.
 *
 * Bounded against a read key that floods it with instance ids: at most `maxPerService` live instances per
 * service and `maxInstances` in all are recorded by this replica (further new ids are not, and the fleet
 * view of the service says `truncated`), and at most `maxPending` new ids wait for a flush. A refresh of an
 * instance this replica already records is never dropped (it replaces its waiting entry, if any): else a
 * flood of new ids would make live instances expire. Every id not recorded is counted in `dropped`.
 */
import type { SqlExecutor } from '../store/sql-driver.js';
import {
  type CountGroup,
  countGroups,
  type InstanceRow,
  liveRows,
  pruneInstances,
  type SchemaGroup,
  schemaGroups,
  upsertInstances,
} from './instance-sql.js';
import type { InstanceFields } from './report.js';
import { MAX_EXPIRY_MS, REJECTED_ERROR } from './rules.js';

export interface InstanceRegistryOptions {
  db: SqlExecutor;
  /** @default 1000 */
  flushIntervalMs?: number | undefined;
  /** Expired rows are deleted after a flush at most this often. @default 60_000 */
  pruneIntervalMs?: number | undefined;
  /** New instances waiting for a flush at most (more new ids are dropped until the next flush). @default 20_000 */
  maxPending?: number | undefined;
  /** Live instances recorded per service at most (by this replica). @default 10_000 */
  maxPerService?: number | undefined;
  /** Live instances recorded in all at most (by this replica). @default 100_000 */
  maxInstances?: number | undefined;
  /** Instances a fleet view lists at most. @default 10_000 */
  maxViewInstances?: number | undefined;
  now?: (() => number) | undefined;
  onError?: ((message: string, error: unknown) => void) | undefined;
}

interface Sighting {
  fields: InstanceFields;
  lastSeen: number;
}

/** The longest wait between two attempts while the database fails. */
const MAX_RETRY_MS = 30_000;
/** Consecutive failed flushes from which `/health` says `degraded`. */
export const FLUSH_FAILURES_DEGRADED = 3;
/** When at a cap, expired entries of the index are looked for at most this often. */
const INDEX_PRUNE_MS = 1000;

/** What `/health` tells of the fleet (docs/fleet.md §5). */
export interface FleetHealth {
  /** Records waiting for a flush (or being written). */
  pending: number;
  /** Instance ids not recorded since the start (caps, or too many waiting). */
  dropped: number;
  /** Consecutive failed flushes. */
  failures: number;
  /** The error of the last flush, while flushes fail. */
  last_flush_error?: string;
}

/** The fleet view of one service, before it is answered (routes/fleet.ts). */
export interface FleetView {
  /** Sorted by id, at most `maxViewInstances`. */
  instances: InstanceRow[];
  /** Every live instance, grouped for the summary (the same query as the list route's). */
  groups: CountGroup[];
  /** Live instances exist beyond the list, or new ids of the service were not recorded lately (a cap). */
  truncated: boolean;
}

const keyOf = (f: InstanceFields): string => `${f.service_name}\u0000${f.instance_id}`;

const toRow = (s: Sighting): InstanceRow => {
  const { expiry_ms, ...fields } = s.fields;
  return { ...fields, last_seen: s.lastSeen, expires_at: s.lastSeen + expiry_ms };
};

export class InstanceRegistry {
  readonly #db: SqlExecutor;
  readonly #intervalMs: number;
  readonly #pruneIntervalMs: number;
  readonly #maxPending: number;
  readonly #maxPerService: number;
  readonly #maxInstances: number;
  readonly #maxView: number;
  readonly #now: () => number;
  readonly #onError: (message: string, error: unknown) => void;
  #pending = new Map<string, Sighting>();
  #inflight = new Map<string, Sighting>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #lastFlush = Number.NEGATIVE_INFINITY;
  #lastPrune: number;
  #failures = 0;
  #lastError: string | undefined;
  #closed = false;
  /** The live instances this replica records: per service, id → expiry (epoch ms). */
  readonly #index = new Map<string, Map<string, number>>();
  #indexed = 0;
  #indexPrunedAt = Number.NEGATIVE_INFINITY;
  /** Per service, when a new id was last not recorded because of a cap. */
  readonly #cappedAt = new Map<string, number>();
  /** Instance ids not recorded (a cap, or `maxPending` new ones waiting). */
  dropped = 0;
  /** Rows written by flushes so far. */
  flushedRows = 0;

  constructor(options: InstanceRegistryOptions) {
    this.#db = options.db;
    this.#intervalMs = options.flushIntervalMs ?? 1000;
    this.#pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
    this.#maxPending = options.maxPending ?? 20_000;
    this.#maxPerService = options.maxPerService ?? 10_000;
    this.#maxInstances = options.maxInstances ?? 100_000;
    this.#maxView = options.maxViewInstances ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    this.#lastPrune = this.#now();
  }

  /**
   * Records a sighting of one instance for one service (the hot path: Map lookups, no allocation when it
   * waits already). Returns whether it was recorded: a new id beyond a cap, or while `maxPending` new
   * ones wait, is not (and counted in `dropped`).
   */
  record(fields: InstanceFields, now: number = this.#now()): boolean {
    if (this.#closed) return false;
    const key = keyOf(fields);
    const waiting = this.#pending.get(key);
    if (waiting !== undefined) {
      waiting.fields = fields;
      waiting.lastSeen = now;
      this.#indexSet(fields, now);
      return true;
    }
    const ids = this.#index.get(fields.service_name);
    const expires = ids?.get(fields.instance_id);
    // A new id (to this replica): the caps apply.
    if ((expires === undefined || expires <= now) && !this.#admit(fields.service_name, ids, now)) {
      this.dropped++;
      return false;
    }
    this.#indexSet(fields, now);
    this.#pending.set(key, { fields, lastSeen: now });
    this.#schedule(now, this.#intervalMs);
    return true;
  }

  #indexSet(fields: InstanceFields, now: number): void {
    let ids = this.#index.get(fields.service_name);
    if (ids === undefined) {
      ids = new Map();
      this.#index.set(fields.service_name, ids);
    }
    if (!ids.has(fields.instance_id)) this.#indexed++;
    ids.set(fields.instance_id, now + fields.expiry_ms);
  }

  /** Whether a new id of `service` may be recorded now (pruning expired ones of the index when at a cap). */
  #admit(service: string, ids: Map<string, number> | undefined, now: number): boolean {
    if (this.#pending.size >= this.#maxPending) return false;
    const full = () => (ids?.size ?? 0) >= this.#maxPerService || this.#indexed >= this.#maxInstances;
    if (full() && now - this.#indexPrunedAt >= INDEX_PRUNE_MS) this.#pruneIndex(now);
    if (!full()) return true;
    this.#cappedAt.set(service, now);
    return false;
  }

  /** Forgets the expired instances of the index. */
  #pruneIndex(now: number): void {
    this.#indexPrunedAt = now;
    for (const [service, ids] of this.#index) {
      for (const [id, expires] of ids) {
        if (expires <= now) {
          ids.delete(id);
          this.#indexed--;
        }
      }
      if (ids.size === 0) this.#index.delete(service);
    }
    for (const [service, at] of this.#cappedAt) if (now - at >= MAX_EXPIRY_MS) this.#cappedAt.delete(service);
  }

  /** The fleet's state for `/health`. */
  health(): FleetHealth {
    const health: FleetHealth = { pending: this.#pending.size + this.#inflight.size, dropped: this.dropped, failures: this.#failures };
    if (this.#failures > 0 && this.#lastError !== undefined) health.last_flush_error = this.#lastError;
    return health;
  }

  /** This replica's live records not yet in the table (waiting, or being written), of one service or all. */
  unflushed(now: number = this.#now(), service?: string): InstanceRow[] {
    const rows = new Map<string, InstanceRow>();
    for (const map of [this.#inflight, this.#pending]) {
      for (const [key, s] of map) {
        if ((service === undefined || s.fields.service_name === service) && s.lastSeen + s.fields.expiry_ms > now) {
          rows.set(key, toRow(s));
        }
      }
    }
    return [...rows.values()];
  }

  /**
   * The live instances of `service`, sorted by id (the table merged with the unflushed records, newest
   * sighting wins), and the counts of all of them. The unflushed records are taken **before** the table is
   * read: a record flushed meanwhile is then in one or the other (taken after, it could be in neither).
   */
  async view(service: string, now: number = this.#now()): Promise<FleetView> {
    const mine = this.unflushed(now, service);
    const [stored, groups] = await Promise.all([
      liveRows(this.#db, service, now, this.#maxView),
      countGroups(this.#db, now, mine, REJECTED_ERROR, service),
    ]);
    const byId = new Map<string, InstanceRow>();
    for (const row of stored) byId.set(row.instance_id, row);
    for (const row of mine) {
      const known = byId.get(row.instance_id);
      if (known === undefined || known.last_seen <= row.last_seen) byId.set(row.instance_id, row);
    }
    const instances = [...byId.values()]
      .sort((a, b) => (a.instance_id < b.instance_id ? -1 : a.instance_id > b.instance_id ? 1 : 0))
      .slice(0, this.#maxView);
    const total = groups.reduce((n, g) => n + g.count, 0);
    const capped = this.#cappedAt.get(service);
    const truncated = total > instances.length || (capped !== undefined && now - capped < MAX_EXPIRY_MS);
    return { instances, groups, truncated };
  }

  /** Live instances of every service, grouped for the summaries (one query). */
  counts(now: number = this.#now()): Promise<CountGroup[]> {
    return countGroups(this.#db, now, this.unflushed(now), REJECTED_ERROR);
  }

  /** The distinct schema hashes the live instances of `service` run, most instances first. */
  schemas(service: string, options: { idLimit: number; groupLimit: number }, now: number = this.#now()): Promise<SchemaGroup[]> {
    return schemaGroups(this.#db, service, now, this.unflushed(now, service), options.idLimit, options.groupLimit);
  }

  /** Writes what is waiting now (and waits for a flush in progress). */
  async flush(): Promise<void> {
    if (this.#flushing !== undefined) await this.#flushing;
    if (this.#pending.size > 0) await this.#startFlush();
  }

  /** Stops the timer and flushes once (a failure is logged). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  #schedule(now: number, intervalMs: number): void {
    if (this.#timer !== undefined || this.#flushing !== undefined || this.#closed) return;
    const delay = Math.max(0, this.#lastFlush + intervalMs - now);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#startFlush();
    }, delay);
    this.#timer.unref();
  }

  #startFlush(): Promise<void> {
    // A flush now replaces the one a timer waits for (else a retry timer of a long backoff, left from
    // failures before an explicit flush succeeded, would hold back every record after it).
    if (this.#flushing === undefined && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#flushing ??= this.#runFlush().finally(() => {
      this.#flushing = undefined;
      if (this.#pending.size > 0) {
        // After failures, back off: 2, 4, … 30 s between attempts.
        const wait = this.#failures === 0 ? this.#intervalMs : Math.min(MAX_RETRY_MS, this.#intervalMs * 2 ** this.#failures);
        this.#schedule(this.#now(), wait);
      }
    });
    return this.#flushing;
  }

  async #runFlush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const now = this.#now();
    this.#lastFlush = now;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#inflight = batch;
    try {
      // Records that expired while waiting (the database was down) are not worth writing.
      const rows = [...batch.values()].filter((s) => s.lastSeen + s.fields.expiry_ms > now).map(toRow);
      await upsertInstances(this.#db, rows);
      this.flushedRows += rows.length;
      this.#failures = 0;
      this.#lastError = undefined;
    } catch (error) {
      this.#failures++;
      this.#lastError = (error instanceof Error ? error.message : String(error)).slice(0, 200);
      this.#onError('fleet: writing instance reports failed; retrying', error);
      // Back in the queue unless a newer sighting came meanwhile, or it expired while waiting.
      for (const [key, s] of batch) {
        if (!this.#pending.has(key) && s.lastSeen + s.fields.expiry_ms > now) this.#pending.set(key, s);
      }
      return;
    } finally {
      this.#inflight = new Map();
    }
    if (now - this.#lastPrune >= this.#pruneIntervalMs) {
      this.#lastPrune = now;
      this.#pruneIndex(now);
      await pruneInstances(this.#db, now).catch((error: unknown) => this.#onError('fleet: deleting expired instances failed', error));
    }
  }
}
