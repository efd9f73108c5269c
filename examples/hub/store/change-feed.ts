import type { ListenSession, SqlDriver } from './sql-driver.js';

/** The channel migration 006's triggers notify on. */
export const CHANGE_CHANNEL = 'hub_config_changes';

/** What one notification says changed: one service (its new revision and commit time), or everything. */
export type ChangeNotice =
  | { kind: 'service'; service: string; revision: number | null; updatedAt: number | null }
  | { kind: 'all'; reason: 'truncate' | 'unreadable' };

export interface ChangeFeedOptions {
  driver: Pick<SqlDriver, 'listen'>;
  /** Every committed change of `service_configs` in this hub's schema, in commit order. */
  onChange(notice: ChangeNotice): void;
  /**
   * `true` once the LISTEN is in place (again), `false` when the session is lost or its ping fails.
   * Changes made while it was `false` were not heard: the reader must not trust anything it held.
   */
  onState(listening: boolean): void;
  /** How often the session's connection is pinged: a hung or partitioned database is found within `pingIntervalMs + pingTimeoutMs`. @default 1_000 */
  pingIntervalMs?: number | undefined;
  /** @default 1_000 */
  pingTimeoutMs?: number | undefined;
  /** Reconnect delays: doubling from the first to the last. @default [100, 5_000] */
  retryDelayMs?: readonly [number, number] | undefined;
  onError?: ((message: string, error: unknown) => void) | undefined;
}

export interface ChangeFeedHealth {
  listening: boolean;
  /** Notifications received in this process. */
  notifications: number;
  /** Sessions lost (connection gone, ping failed) since start. */
  lost: number;
  last_error?: string;
}

function parseNotice(payload: string, schema: string): ChangeNotice | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return { kind: 'all', reason: 'unreadable' };
  }
  if (typeof value !== 'object' || value === null) return { kind: 'all', reason: 'unreadable' };
  const v = value as Record<string, unknown>;
  // Hubs of other schemas share the database's channels: their changes are not ours.
  if (v.schema !== schema) return undefined;
  if (v.all === true) return { kind: 'all', reason: 'truncate' };
  if (typeof v.service !== 'string') return { kind: 'all', reason: 'unreadable' };
  const int = (x: unknown): number | null => (typeof x === 'number' && Number.isSafeInteger(x) ? x : null);
  return { kind: 'service', service: v.service, revision: int(v.revision), updatedAt: int(v.updated_at) };
}

/**
 * The hub's ear on `hub_config_changes` (migration 006): one LISTEN session, pinged, reconnected with
 * back-off. It says plainly when it is not listening (`onState(false)`, `health()`), because a read cache
 * that trusts a dead listener serves old values for ever.
 */
export class ChangeFeed {
  readonly #options: ChangeFeedOptions;
  readonly #pingIntervalMs: number;
  readonly #pingTimeoutMs: number;
  readonly #retry: readonly [number, number];
  #session: ListenSession | undefined;
  #listening = false;
  #closed = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #notifications = 0;
  #lost = 0;
  #lastError: string | undefined;

  constructor(options: ChangeFeedOptions) {
    this.#options = options;
    this.#pingIntervalMs = options.pingIntervalMs ?? 1_000;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 1_000;
    this.#retry = options.retryDelayMs ?? [100, 5_000];
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** Connects; resolves after the first attempt (listening or not: a failed one keeps retrying). */
  async start(): Promise<void> {
    await this.#connect();
  }

  health(): ChangeFeedHealth {
    return {
      listening: this.#listening,
      notifications: this.#notifications,
      lost: this.#lost,
      ...(this.#lastError === undefined ? {} : { last_error: this.#lastError }),
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const session = this.#session;
    this.#session = undefined;
    this.#setListening(false);
    await session?.close().catch(() => {});
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    let session: ListenSession | undefined;
    try {
      session = await this.#options.driver.listen(CHANGE_CHANNEL, {
        onNotify: (payload) => {
          if (this.#session !== session || session === undefined) return;
          this.#notifications++;
          const notice = parseNotice(payload, session.schema);
          if (notice !== undefined) this.#options.onChange(notice);
        },
        onLost: (error) => {
          if (this.#session === session) this.#drop(error);
        },
      });
    } catch (error) {
      this.#fail('LISTEN failed', error);
      this.#schedule(this.#backoff());
      return;
    }
    if (this.#closed) {
      await session.close().catch(() => {});
      return;
    }
    this.#session = session;
    this.#attempt = 0;
    this.#setListening(true);
    this.#schedule(this.#pingIntervalMs);
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), ms);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    const session = this.#session;
    if (session === undefined) return this.#connect();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        session.ping(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`LISTEN ping unanswered after ${this.#pingTimeoutMs} ms`)), this.#pingTimeoutMs);
          timer.unref();
        }),
      ]);
    } catch (error) {
      if (this.#session === session) this.#drop(error);
      return;
    } finally {
      clearTimeout(timer);
    }
    if (this.#session === session) this.#schedule(this.#pingIntervalMs);
  }

  #drop(error: unknown): void {
    const session = this.#session;
    this.#session = undefined;
    this.#lost++;
    this.#fail('LISTEN session lost', error);
    this.#setListening(false);
    void session?.close().catch(() => {});
    this.#schedule(this.#backoff());
  }

  #backoff(): number {
    const [first, last] = this.#retry;
    return Math.min(last, first * 2 ** Math.min(this.#attempt++, 16));
  }

  #fail(message: string, error: unknown): void {
    this.#lastError = error instanceof Error ? error.message : String(error);
    if (!this.#closed) this.#options.onError?.(message, error);
  }

  #setListening(listening: boolean): void {
    if (this.#listening === listening) return;
    this.#listening = listening;
    this.#options.onState(listening);
  }
}
