import type { ConfigObject } from '../../../src/hub/wire.js';

/** A row of `service_configs`, as the hub serves it. */
export interface ConfigRow {
  service_name: string;
  config: ConfigObject;
  version: string;
  /** Epoch milliseconds. */
  updated_at: number;
  updated_by: string | null;
  description: string | null;
  tags: string[];
  active: boolean;
  revision: number;
}

export interface HistoryEntry {
  version: string | null;
  action: 'created' | 'updated' | 'deleted' | 'rollback';
  changed_by: string | null;
  /** Epoch milliseconds. */
  changed_at: number;
  change_reason: string | null;
  config: ConfigObject;
  revision: number | null;
  /** What a forced write (`?force=true`) overrode: `{ forced: true, issues, consumers }`; `null` otherwise. */
  override: Record<string, unknown> | null;
}

export interface OutboxRow {
  id: number;
  service_name: string;
  revision: number;
  payload: Record<string, unknown>;
}

/** A row `publish` could not send (too large for the server even without `config`, refused by the client). */
export interface OutboxFailure {
  id: number;
  error: string;
}

/** Publish attempts before a row is dead-lettered (`dead_at`). @default 5 */
export const DEFAULT_OUTBOX_MAX_ATTEMPTS = 5;

/** A failed attempt at one row, as recorded. */
export interface OutboxAttempt {
  id: number;
  service_name: string;
  revision: number;
  /** Attempts so far, this one included. */
  attempts: number;
  error: string;
}

export interface OutboxPublishResult {
  /** Rows claimed by this call. */
  claimed: number;
  /** Rows published and marked so. */
  published: number;
  /** Rows that failed and stay pending (a later run retries them). */
  failed: OutboxAttempt[];
  /** Rows that failed for the last time: dead-lettered, never retried. */
  dead: OutboxAttempt[];
  /** The highest id claimed (or `afterId` when none): where the next call of one relay run starts. */
  lastId: number;
}

export interface OutboxStats {
  /** Rows waiting to be published (neither published nor dead). */
  pending: number;
  /** Dead-lettered rows (kept until the retention deletes them). */
  dead: number;
  /** Age of the oldest pending row in ms (0 when none): how far the broadcast is behind. */
  lagMs: number;
}

interface WriteBase {
  service: string;
  changedBy: string;
  changeReason?: string | undefined;
  /** From `If-Match`: the revision the writer saw (0 = "the service must not exist"). */
  expectedRevision?: number | undefined;
  /**
   * Called in the write's transaction, synchronously, with the config the write would leave (every kind
   * but `delete`), before it is written; a throw rolls the write back (no row, no audit row, no outbox
   * row). The hub refuses secret-looking keys here, whatever produced the document: a merge onto a stored
   * row, a rollback (issue 10), and a config the live consumers' schemas reject (issue 11). An `override`
   * it returns is recorded in the change's audit row (a forced write).
   */
  checkResult?: ((config: ConfigObject) => WriteCheckVerdict | undefined) | undefined;
}

/** What a write's `checkResult` may return: JSON the audit row records as `override`. */
export interface WriteCheckVerdict {
  override?: Record<string, unknown> | undefined;
}

export type WriteCommand =
  | (WriteBase & {
      kind: 'replace';
      config: ConfigObject;
      version?: string | undefined;
      description?: string | undefined;
      tags?: string[] | undefined;
    })
  | (WriteBase & { kind: 'patch'; merge: (current: ConfigObject) => ConfigObject; version?: string | undefined })
  | (WriteBase & { kind: 'delete' })
  | (WriteBase & { kind: 'rollback'; toRevision?: number | undefined; toVersion?: string | undefined });

export type WriteOutcome =
  | { kind: 'ok'; row: ConfigRow; created: boolean; outboxId: number | null }
  | { kind: 'conflict'; currentRevision: number | null }
  | { kind: 'not_found'; detail: string };

export interface SeedEntry {
  service_name: string;
  config: ConfigObject;
  version?: string;
  description?: string;
  tags?: string[];
}

/** One store, two drivers (`pg` and PGlite), one set of SQL migrations. */
export interface Store {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Applies `migrations/*.sql` (idempotent; serialized across replicas by an advisory lock; files already
   * applied are skipped unless `force`). Returns the files executed.
   */
  migrate(options?: { force?: boolean }): Promise<string[]>;
  /**
   * Without migrating (a role without DDL rights): throws a `SchemaNotMigratedError` unless
   * `hub_schema_migrations` lists every migration file with its checksum.
   */
  assertMigrated(): Promise<void>;
  /** Inserts the entries that are absent; returns the names inserted. */
  seed(entries: readonly SeedEntry[]): Promise<string[]>;
  get(service: string): Promise<ConfigRow | null>;
  list(): Promise<ConfigRow[]>;
  write(command: WriteCommand): Promise<WriteOutcome>;
  history(service: string, limit: number): Promise<{ entries: HistoryEntry[]; total: number }>;
  /**
   * Claims pending outbox rows (`FOR UPDATE SKIP LOCKED`, ids above `afterId`, in id order), hands them
   * to `publish`, and in the same transaction marks published the rows it did not report as failures;
   * a reported failure counts an attempt, and the `maxAttempts`-th dead-letters the row. A throw from
   * `publish` rolls the claim back (rows stay pending). A row claimed by one replica is skipped by the
   * others. `onlyId` restricts the claim to one row (the immediate publish after a write).
   */
  publishPending(
    publish: (rows: OutboxRow[]) => Promise<OutboxFailure[] | undefined> | Promise<void>,
    options?: { onlyId?: number; limit?: number; afterId?: number; maxAttempts?: number },
  ): Promise<OutboxPublishResult>;
  /**
   * Deletes at most `limit` outbox rows published (or dead-lettered) more than `olderThanMs` ago (never a
   * pending row). Returns the rows deleted.
   */
  pruneOutbox(olderThanMs: number, limit: number): Promise<number>;
  /** Rows neither published nor dead-lettered. */
  pendingOutboxCount(): Promise<number>;
  /** Pending and dead rows and the relay lag, for `/health`. */
  outboxStats(): Promise<OutboxStats>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
