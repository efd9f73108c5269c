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
}

export interface OutboxRow {
  id: number;
  service_name: string;
  revision: number;
  payload: Record<string, unknown>;
}

interface WriteBase {
  service: string;
  changedBy: string;
  changeReason?: string | undefined;
  /** From `If-Match`: the revision the writer saw (0 = "the service must not exist"). */
  expectedRevision?: number | undefined;
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
   * Claims pending outbox rows (`FOR UPDATE SKIP LOCKED`), hands them to `publish`, and marks them
   * published when it resolves, in one transaction: a row claimed by one replica is skipped by the others.
   * `onlyId` restricts the claim to one row (the immediate publish after a write). Returns the rows published.
   */
  publishPending(publish: (rows: OutboxRow[]) => Promise<void>, options?: { onlyId?: number; limit?: number }): Promise<number>;
  /**
   * Deletes at most `limit` outbox rows published more than `olderThanMs` ago (never a pending row).
   * Returns the rows deleted.
   */
  pruneOutbox(olderThanMs: number, limit: number): Promise<number>;
  pendingOutboxCount(): Promise<number>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
