/** The little a store needs from a SQL driver; `pg` and PGlite both provide it (see postgres.ts, pglite.ts). */
export interface SqlExecutor {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs a multi-statement script (no parameters). */
  exec(sql: string): Promise<void>;
}

export interface SqlDriver extends SqlExecutor {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction on one connection; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Opens a session that `LISTEN`s on `channel` (its own connection on PostgreSQL, where a pooled one
   * would lose the LISTEN when released). Resolves once the LISTEN is in place; rejects when it cannot be.
   */
  listen(channel: string, handlers: ListenHandlers): Promise<ListenSession>;
  close(): Promise<void>;
}

export interface ListenHandlers {
  /** One call per notification on the channel, in commit order. */
  onNotify(payload: string): void;
  /** At most once, when the session ends on its own (connection lost, server gone); never after `close()`. */
  onLost(error: Error): void;
}

export interface ListenSession {
  /** The schema the session resolves unqualified names in (`current_schema()`): the hub's tables. */
  readonly schema: string;
  /** A round trip on the session's own connection; rejects when it fails. */
  ping(): Promise<void>;
  /** Ends the session (and its connection) now, even when the server does not answer. Idempotent. */
  close(): Promise<void>;
}
