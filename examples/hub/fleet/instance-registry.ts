/**
 * The instances that report (docs/fleet.md §5), in memory and written behind to `config_instances`:
 * batched, at most once per `flushIntervalMs` per replica, and at once when the last flush is that long
 * ago (so a rejection reaches the database, and the other replicas, within about one interval). Reads
 * merge the table with this replica's unflushed records. A database error while flushing is logged and
 * the records are retried (backing off); it never reaches a request.
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
import { REJECTED_ERROR } from './rules.js';

export interface InstanceRegistryOptions {
  db: SqlExecutor;
  /** @default 1000 */
  flushIntervalMs?: number | undefined;
  /** Expired rows are deleted after a flush at most this often. @default 60_000 */
  pruneIntervalMs?: number | undefined;
  /** Unflushed records kept at most (more are dropped until the next flush). @default 20_000 */
  maxPending?: number | undefined;
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
  #closed = false;
  /** Records dropped because `maxPending` were waiting. */
  dropped = 0;
  /** Rows written by flushes so far. */
  flushedRows = 0;

  constructor(options: InstanceRegistryOptions) {
    this.#db = options.db;
    this.#intervalMs = options.flushIntervalMs ?? 1000;
    this.#pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
    this.#maxPending = options.maxPending ?? 20_000;
    this.#maxView = options.maxViewInstances ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    this.#lastPrune = this.#now();
  }

  /** Records a sighting of one instance for one service (the hot path: a Map lookup, no allocation when known). */
  record(fields: InstanceFields, now: number = this.#now()): void {
    if (this.#closed) return;
    const key = keyOf(fields);
    const known = this.#pending.get(key);
    if (known !== undefined) {
      known.fields = fields;
      known.lastSeen = now;
      return;
    }
    if (this.#pending.size >= this.#maxPending) {
      this.dropped++;
      return;
    }
    this.#pending.set(key, { fields, lastSeen: now });
    this.#schedule(now, this.#intervalMs);
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

  /** The live instances of `service`, sorted by id: the table merged with the unflushed records, newest sighting wins. */
  async view(service: string, now: number = this.#now()): Promise<InstanceRow[]> {
    const byId = new Map<string, InstanceRow>();
    for (const row of await liveRows(this.#db, service, now, this.#maxView)) byId.set(row.instance_id, row);
    for (const row of this.unflushed(now, service)) {
      const stored = byId.get(row.instance_id);
      if (stored === undefined || stored.last_seen <= row.last_seen) byId.set(row.instance_id, row);
    }
    return [...byId.values()].sort((a, b) => (a.instance_id < b.instance_id ? -1 : a.instance_id > b.instance_id ? 1 : 0)).slice(0, this.#maxView);
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
    } catch (error) {
      this.#failures++;
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
      await pruneInstances(this.#db, now).catch((error: unknown) => this.#onError('fleet: deleting expired instances failed', error));
    }
  }
}
