import pg from 'pg';
import { assertSchemaName } from './schema-name.js';
import type { ListenHandlers, ListenSession, SqlDriver, SqlExecutor } from './sql-driver.js';
import { SqlStore } from './sql-store.js';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Run everything in this schema (created if absent) through `search_path`; tests use one per file. */
  schema?: string | undefined;
  /**
   * `CREATE SCHEMA IF NOT EXISTS` the `schema` first. PostgreSQL checks the CREATE right on the database
   * before it looks whether the schema exists, so a restricted runtime role passes `false`. @default true
   */
  createSchema?: boolean | undefined;
  /** @default 10 */
  maxConnections?: number | undefined;
  /** @default 3000 */
  connectionTimeoutMs?: number | undefined;
  /** @default 5000 */
  statementTimeoutMs?: number | undefined;
  onError?: ((error: Error) => void) | undefined;
}

export { assertSchemaName } from './schema-name.js';

/** A `pg` Pool with connection, statement, lock and idle-in-transaction timeouts: a sick DB means 503, never a hang. */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<SqlStore> {
  const statementTimeoutMs = options.statementTimeoutMs ?? 5000;
  if (options.schema !== undefined) assertSchemaName(options.schema);
  if (options.schema !== undefined && options.createSchema !== false) {
    const client = new pg.Client({ connectionString: options.connectionString, connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`);
    } catch (error) {
      // Two replicas creating the schema at once: IF NOT EXISTS is not atomic in PostgreSQL.
      const code = (error as { code?: string }).code;
      if (code !== '23505' && code !== '42P06') throw error;
    } finally {
      await client.end();
    }
  }
  const searchPath = options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` };
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 3000,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeoutMs,
    lock_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + 1000,
    idle_in_transaction_session_timeout: statementTimeoutMs * 2,
    application_name: 'central-hub',
    ...searchPath,
  });
  // An idle client that loses its connection emits on the pool; without a listener the process dies.
  pool.on('error', (error) => options.onError?.(error));

  const run = async <T>(q: pg.Pool | pg.PoolClient, text: string, params?: unknown[]): Promise<T[]> => {
    const result = await q.query(text, params as unknown[] | undefined);
    return result.rows as T[];
  };
  const executor = (q: pg.Pool | pg.PoolClient): SqlExecutor => ({
    query: (text, params) => run(q, text, params),
    exec: async (sql) => {
      await q.query(sql);
    },
  });

  const driver: SqlDriver = {
    kind: 'postgres',
    ...executor(pool),
    async transaction(fn) {
      const client = await pool.connect();
      let broken = false;
      // A checked-out client is not covered by the pool's idle 'error' listener: if the server goes away
      // between two statements of this transaction (crash, restart, admin kill), pg emits 'error' on the
      // client, and with no listener that is an uncaught exception that kills the hub. Mark it broken
      // instead; the pending or next query rejects, the route answers 503, and release(true) discards it.
      const onError = (error: Error) => {
        broken = true;
        options.onError?.(error);
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn(executor(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw error;
      } finally {
        // Keep the listener on a broken client: it may still emit while being destroyed.
        if (!broken) client.off('error', onError);
        client.release(broken);
      }
    },
    listen: (channel, handlers) =>
      listenSession(
        new pg.Client({
          connectionString: options.connectionString,
          connectionTimeoutMillis: options.connectionTimeoutMs ?? 3000,
          // A peer that vanishes without a FIN (a partition) is found by the session's pings; keepalive
          // makes the kernel notice too.
          keepAlive: true,
          application_name: 'central-hub-listen',
          ...searchPath,
        }),
        channel,
        handlers,
      ),
    async close() {
      await pool.end();
    },
  };
  return new SqlStore(driver);
}

const CHANNEL_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** A `LISTEN` on a connection of its own (a pooled one loses it on release); see `SqlDriver.listen`. */
async function listenSession(client: pg.Client, channel: string, handlers: ListenHandlers): Promise<ListenSession> {
  if (!CHANNEL_PATTERN.test(channel)) throw new TypeError(`channel must match ${CHANNEL_PATTERN}`);
  let ended = false;
  const lost = (error: Error): void => {
    if (ended) return;
    ended = true;
    handlers.onLost(error);
  };
  // Without an 'error' listener a dropped connection is an uncaught exception that kills the hub.
  client.on('error', lost);
  client.on('end', () => lost(new Error('the LISTEN connection ended')));
  client.on('notification', (message) => {
    if (!ended && message.channel === channel) handlers.onNotify(message.payload ?? '');
  });
  const destroy = (): void => {
    // end() waits for the server's goodbye, which a hung server never sends: drop the socket as well.
    void client.end().catch(() => {});
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  };
  try {
    await client.connect();
    await client.query(`LISTEN ${channel}`);
    const rows = await client.query<{ s: string }>('SELECT current_schema() AS s');
    const schema = rows.rows[0]!.s;
    return {
      schema,
      ping: async () => {
        await client.query('SELECT 1');
      },
      close: async () => {
        if (ended) return;
        ended = true;
        destroy();
      },
    };
  } catch (error) {
    ended = true;
    destroy();
    throw error;
  }
}
