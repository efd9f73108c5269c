import type { ConfigObject } from '../../../src/hub/wire.js';
import { assertMigrated, migrate } from './migrate.js';
import type { ListenHandlers, ListenSession, SqlDriver, SqlExecutor } from './sql-driver.js';
import {
  type ConfigRow,
  DEFAULT_OUTBOX_MAX_ATTEMPTS,
  type HistoryEntry,
  type OutboxFailure,
  type OutboxPublishResult,
  type OutboxRow,
  type OutboxStats,
  type SeedEntry,
  type Store,
  type WriteCommand,
  type WriteOutcome,
} from './types.js';

const ROW_COLUMNS = `service_name, config_json, version, hub_epoch_ms(updated_at) AS updated_ms, updated_by,
  description, tags, active, revision`;

interface RawRow {
  service_name: string;
  config_json: ConfigObject;
  version: string | null;
  updated_ms: number | string;
  updated_by: string | null;
  description: string | null;
  tags: string[] | null;
  active: boolean | null;
  revision: number | string;
}

function toRow(raw: RawRow): ConfigRow {
  return {
    service_name: raw.service_name,
    config: raw.config_json,
    version: raw.version ?? '',
    updated_at: Number(raw.updated_ms),
    updated_by: raw.updated_by,
    description: raw.description,
    tags: raw.tags ?? [],
    active: raw.active !== false,
    revision: Number(raw.revision),
  };
}

/** Reads of one service: the query running, and the one queued behind it (shared by every reader that came since). */
interface ReadSlot {
  running: Promise<ConfigRow | null>;
  queued: Promise<ConfigRow | null> | undefined;
}

function noop(): void {}

/**
 * Runs the command's check on the config the write would leave, before the statement that writes it: a
 * throw rolls the transaction back (nothing written); an override it returns goes into the audit row
 * (the trigger reads the transaction-local `hub.override`).
 */
async function checkBefore(tx: SqlExecutor, c: WriteCommand, config: ConfigObject): Promise<void> {
  const verdict = c.checkResult?.(config);
  if (verdict?.override !== undefined) {
    await tx.query(`SELECT set_config('hub.override', $1, true)`, [JSON.stringify(verdict.override)]);
  }
}

/** The `Store` over SQL: the SQL is the same on `pg` and PGlite, so is this class (drivers in postgres.ts, pglite.ts). */
export class SqlStore implements Store {
  readonly #db: SqlDriver;
  readonly #reads = new Map<string, ReadSlot>();

  constructor(driver: SqlDriver) {
    this.#db = driver;
  }

  get kind(): 'pglite' | 'postgres' {
    return this.#db.kind;
  }

  /** The driver, for tests and tools that inspect the tables. */
  get sql(): SqlExecutor {
    return this.#db;
  }

  async migrate(options: { force?: boolean } = {}): Promise<string[]> {
    return migrate(this.#db, options);
  }

  async assertMigrated(): Promise<void> {
    await assertMigrated(this.#db);
  }

  async seed(entries: readonly SeedEntry[]): Promise<string[]> {
    const inserted: string[] = [];
    for (const e of entries) {
      const rows = await this.#db.query<{ service_name: string }>(
        `INSERT INTO service_configs (service_name, config_json, version, description, tags, created_by, updated_by)
         VALUES ($1, $2::jsonb, $3, $4, $5, 'system', 'system')
         ON CONFLICT (service_name) DO NOTHING RETURNING service_name`,
        [e.service_name, JSON.stringify(e.config), e.version ?? '1.0.0', e.description ?? null, e.tags ?? []],
      );
      if (rows.length > 0) inserted.push(e.service_name);
    }
    return inserted;
  }

  /**
   * The row of `service`, read by a query that starts after this call: never an answer computed earlier, so
   * a reader that just heard of a change (a NATS notice) sees it. Concurrent readers of one service share
   * queries: while one runs, every new reader waits for the single next one. Under load one query answers
   * many GETs (bench figure 4: one query per GET made the database round trip the hub's ceiling). The row
   * object is shared by those readers: treat it as read-only.
   */
  get(service: string): Promise<ConfigRow | null> {
    const slot = this.#reads.get(service);
    if (slot === undefined) {
      const fresh: ReadSlot = { running: undefined as unknown as Promise<ConfigRow | null>, queued: undefined };
      this.#reads.set(service, fresh);
      fresh.running = this.#read(service, fresh);
      return fresh.running;
    }
    slot.queued ??= slot.running
      .then(noop, noop)
      .then(() => {
        slot.queued = undefined;
        slot.running = this.#read(service, slot);
        return slot.running;
      });
    return slot.queued;
  }

  #read(service: string, slot: ReadSlot): Promise<ConfigRow | null> {
    const run: Promise<ConfigRow | null> = this.#db
      .query<RawRow>(`SELECT ${ROW_COLUMNS} FROM service_configs WHERE service_name = $1`, [service])
      .then((rows) => (rows[0] === undefined ? null : toRow(rows[0])))
      .finally(() => {
        if (slot.running === run && slot.queued === undefined) this.#reads.delete(service);
      });
    return run;
  }

  async list(): Promise<ConfigRow[]> {
    const rows = await this.#db.query<RawRow>(
      `SELECT ${ROW_COLUMNS} FROM service_configs WHERE active IS NOT FALSE ORDER BY service_name`,
    );
    return rows.map(toRow);
  }

  async write(command: WriteCommand): Promise<WriteOutcome> {
    // Two first writers of one service race on the primary key: the loser retries and sees the row.
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#db.transaction((tx) => this.#writeIn(tx, command));
      if (outcome !== 'retry') return outcome;
      if (attempt >= 3) throw Object.assign(new Error('write kept racing with a concurrent create'), { code: '40001' });
    }
  }

  async #writeIn(tx: SqlExecutor, c: WriteCommand): Promise<WriteOutcome | 'retry'> {
    await tx.query(
      `SELECT set_config('hub.change_reason', $1, true), set_config('hub.action', '', true), set_config('hub.override', '', true)`,
      [c.changeReason ?? ''],
    );
    const currentRaw = (
      await tx.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM service_configs WHERE service_name = $1 FOR UPDATE`, [c.service])
    )[0];
    const current = currentRaw === undefined ? null : toRow(currentRaw);
    if (c.expectedRevision !== undefined && c.expectedRevision !== (current?.revision ?? 0)) {
      return { kind: 'conflict', currentRevision: current?.revision ?? null };
    }
    let raw: RawRow | undefined;
    switch (c.kind) {
      case 'replace': {
        await checkBefore(tx, c, c.config);
        if (current === null) {
          raw = (
            await tx.query<RawRow>(
              `INSERT INTO service_configs (service_name, config_json, version, description, tags, created_by, updated_by)
               VALUES ($1, $2::jsonb, $3, $4, $5, $6, $6)
               ON CONFLICT (service_name) DO NOTHING RETURNING ${ROW_COLUMNS}`,
              [c.service, JSON.stringify(c.config), c.version ?? '1.0.0', c.description ?? null, c.tags ?? [], c.changedBy],
            )
          )[0];
          if (raw === undefined) return 'retry';
        } else {
          raw = (
            await tx.query<RawRow>(
              `UPDATE service_configs SET config_json = $2::jsonb, version = COALESCE($3, version),
                 description = COALESCE($4, description), tags = COALESCE($5, tags), updated_by = $6, active = TRUE
               WHERE service_name = $1 RETURNING ${ROW_COLUMNS}`,
              [c.service, JSON.stringify(c.config), c.version ?? null, c.description ?? null, c.tags ?? null, c.changedBy],
            )
          )[0];
        }
        break;
      }
      case 'patch': {
        if (current === null || !current.active) return { kind: 'not_found', detail: `no config for service '${c.service}'` };
        const merged = c.merge(current.config);
        await checkBefore(tx, c, merged);
        raw = (
          await tx.query<RawRow>(
            `UPDATE service_configs SET config_json = $2::jsonb, version = COALESCE($3, version), updated_by = $4
             WHERE service_name = $1 RETURNING ${ROW_COLUMNS}`,
            [c.service, JSON.stringify(merged), c.version ?? null, c.changedBy],
          )
        )[0];
        break;
      }
      case 'delete': {
        if (current === null || !current.active) return { kind: 'not_found', detail: `no config for service '${c.service}'` };
        raw = (
          await tx.query<RawRow>(
            `UPDATE service_configs SET active = FALSE, updated_by = $2 WHERE service_name = $1 RETURNING ${ROW_COLUMNS}`,
            [c.service, c.changedBy],
          )
        )[0];
        break;
      }
      case 'rollback': {
        // A deleted service (active = false, the row stays) can be restored: that is what rollback is for.
        if (current === null) return { kind: 'not_found', detail: `no config for service '${c.service}'` };
        const target = (
          await tx.query<{ config_json: ConfigObject }>(
            'SELECT config_json FROM hub_rollback_target($1::text, $2::bigint, $3::text)',
            [c.service, c.toRevision ?? null, c.toVersion ?? null],
          )
        )[0];
        if (target === undefined) {
          const what =
            c.toRevision !== undefined ? `revision ${c.toRevision}` : `revision with version '${c.toVersion}' that differs from the current config`;
          return { kind: 'not_found', detail: `service '${c.service}' has no ${what} to roll back to` };
        }
        // rollback_config() restores this same target: the row is locked, nobody appends to its audit meanwhile.
        await checkBefore(tx, c, target.config_json);
        raw = (
          await tx.query<RawRow>(
            `SELECT ${ROW_COLUMNS} FROM rollback_config($1::text, $2::bigint, $3::text, $4::text, $5::text)`,
            [c.service, c.toRevision ?? null, c.toVersion ?? null, c.changedBy, c.changeReason ?? null],
          )
        )[0];
        break;
      }
    }
    if (raw === undefined) throw new Error('write returned no row');
    const row = toRow(raw);
    const outbox = await tx.query<{ id: number | string }>(
      `SELECT id FROM config_outbox WHERE service_name = $1 AND revision = $2 ORDER BY id DESC LIMIT 1`,
      [row.service_name, row.revision],
    );
    return {
      kind: 'ok',
      row,
      created: c.kind === 'replace' && (current === null || !current.active),
      outboxId: outbox[0] === undefined ? null : Number(outbox[0].id),
    };
  }

  async history(service: string, limit: number): Promise<{ entries: HistoryEntry[]; total: number }> {
    const rows = await this.#db.query<{
      version: string | null;
      action: HistoryEntry['action'];
      changed_by: string | null;
      changed_ms: number | string;
      change_reason: string | null;
      config_json: ConfigObject;
      revision: number | string | null;
      override: Record<string, unknown> | null;
    }>(
      // get_config_history() (002) keeps its signature; the override column (005) comes from its audit row.
      `SELECT h.version, h.action, h.changed_by, hub_epoch_ms(h.changed_at) AS changed_ms, h.change_reason, h.config_json,
              h.revision, a.override
       FROM get_config_history($1::text, $2::int) h JOIN config_audit_log a ON a.id = h.id
       ORDER BY h.id DESC`,
      [service, limit],
    );
    const total = await this.#db.query<{ n: number | string }>(
      'SELECT count(*) AS n FROM config_audit_log WHERE service_name = $1',
      [service],
    );
    return {
      entries: rows.map((r) => ({
        version: r.version,
        action: r.action,
        changed_by: r.changed_by,
        changed_at: Number(r.changed_ms),
        change_reason: r.change_reason,
        config: r.config_json,
        revision: r.revision === null ? null : Number(r.revision),
        override: r.override ?? null,
      })),
      total: Number(total[0]?.n ?? 0),
    };
  }

  async publishPending(
    publish: (rows: OutboxRow[]) => Promise<OutboxFailure[] | undefined> | Promise<void>,
    options: { onlyId?: number; limit?: number; afterId?: number; maxAttempts?: number } = {},
  ): Promise<OutboxPublishResult> {
    const maxAttempts = options.maxAttempts ?? DEFAULT_OUTBOX_MAX_ATTEMPTS;
    return this.#db.transaction(async (tx) => {
      const rows = await tx.query<{ id: number | string; service_name: string; revision: number | string; payload: Record<string, unknown> }>(
        options.onlyId === undefined
          ? `SELECT id, service_name, revision, payload FROM config_outbox
             WHERE published_at IS NULL AND dead_at IS NULL AND id > $2
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`
          : `SELECT id, service_name, revision, payload FROM config_outbox
             WHERE published_at IS NULL AND dead_at IS NULL AND id = $2
             LIMIT $1 FOR UPDATE SKIP LOCKED`,
        options.onlyId === undefined ? [options.limit ?? 100, options.afterId ?? 0] : [1, options.onlyId],
      );
      const result: OutboxPublishResult = { claimed: rows.length, published: 0, failed: [], dead: [], lastId: options.afterId ?? 0 };
      if (rows.length === 0) return result;
      const claimed = rows.map((r) => ({ id: Number(r.id), service_name: r.service_name, revision: Number(r.revision), payload: r.payload }));
      result.lastId = claimed[claimed.length - 1]!.id;
      // Each row fails on its own (too large, unencodable): it is retried by a later run and dead-lettered
      // after maxAttempts, and never holds back the rows behind it. A throw (NATS down, flush timeout) is
      // not the row's fault: the whole claim rolls back and stays pending, attempts untouched.
      const failures = (await publish(claimed)) ?? [];
      const failedIds = new Set(failures.map((f) => f.id));
      const ok = claimed.filter((r) => !failedIds.has(r.id)).map((r) => r.id);
      if (ok.length > 0) {
        await tx.query('UPDATE config_outbox SET published_at = NOW() WHERE id = ANY($1::bigint[])', [ok]);
      }
      result.published = ok.length;
      for (const f of failures) {
        const marked = await tx.query<{ id: number | string; service_name: string; revision: number | string; attempts: number; dead: boolean }>(
          `UPDATE config_outbox SET attempts = attempts + 1, last_error = $2,
             dead_at = CASE WHEN attempts + 1 >= $3 THEN NOW() END
           WHERE id = $1 RETURNING id, service_name, revision, attempts, dead_at IS NOT NULL AS dead`,
          [f.id, f.error.slice(0, 1000), maxAttempts],
        );
        const m = marked[0];
        if (m === undefined) continue;
        const entry = { id: Number(m.id), service_name: m.service_name, revision: Number(m.revision), attempts: m.attempts, error: f.error };
        (m.dead ? result.dead : result.failed).push(entry);
      }
      return result;
    });
  }

  async pruneOutbox(olderThanMs: number, limit: number): Promise<number> {
    // Oldest ids first (the primary key walks them in order); FOR UPDATE SKIP LOCKED leaves rows another
    // replica is working on. A pending row (published_at and dead_at NULL) is never selected; dead
    // letters age out like published rows (the audit log keeps the change itself).
    const rows = await this.#db.query<{ id: number | string }>(
      `DELETE FROM config_outbox WHERE id IN (
         SELECT id FROM config_outbox
         WHERE COALESCE(published_at, dead_at) < NOW() - make_interval(secs => $1::double precision / 1000)
         ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING id`,
      [olderThanMs, limit],
    );
    return rows.length;
  }

  async pendingOutboxCount(): Promise<number> {
    const rows = await this.#db.query<{ n: number | string }>(
      'SELECT count(*) AS n FROM config_outbox WHERE published_at IS NULL AND dead_at IS NULL',
    );
    return Number(rows[0]?.n ?? 0);
  }

  async outboxStats(): Promise<OutboxStats> {
    // Three index-backed reads (the partial indexes of 004) rather than one scan of the outbox.
    const rows = await this.#db.query<{ pending: number | string; dead: number | string; lag_ms: number | string | null }>(
      `SELECT
         (SELECT count(*) FROM config_outbox WHERE published_at IS NULL AND dead_at IS NULL) AS pending,
         (SELECT count(*) FROM config_outbox WHERE dead_at IS NOT NULL) AS dead,
         (SELECT GREATEST(hub_epoch_ms(clock_timestamp()) - hub_epoch_ms(created_at), 0) FROM config_outbox
            WHERE published_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT 1) AS lag_ms`,
    );
    const r = rows[0];
    return { pending: Number(r?.pending ?? 0), dead: Number(r?.dead ?? 0), lagMs: r?.lag_ms == null ? 0 : Number(r.lag_ms) };
  }

  /** A LISTEN session of the driver's (the change feed's, migration 006). */
  listen(channel: string, handlers: ListenHandlers): Promise<ListenSession> {
    return this.#db.listen(channel, handlers);
  }

  async ping(): Promise<boolean> {
    try {
      await this.#db.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
