import { type ConnectionOptions, connect, type NatsConnection, type Status } from 'nats';
import { type BroadcastStatus, DEFAULT_SUBJECT_PREFIX, subjectFor } from '../../src/hub/wire.js';
import { DEFAULT_OUTBOX_MAX_ATTEMPTS, type OutboxAttempt, type OutboxFailure, type OutboxRow, type Store } from './store/types.js';

export interface BroadcasterOptions {
  store: Store;
  /** Connect to this NATS (owned: drained on close). */
  natsUrl?: string | undefined;
  /** Or use this connection (not owned: left open on close). */
  natsConnection?: NatsConnection | undefined;
  /** Signs every notice (Ed25519 `kid` + `sig`, `notice-signer.ts`); unsigned without it. */
  signer?: { sign(payload: Record<string, unknown>): Record<string, unknown> } | undefined;
  /** Extra options for the connection we open: credentials (`nats-auth.ts`), TLS. */
  natsOptions?: Partial<ConnectionOptions> | undefined;
  /** @default 1000 */
  relayIntervalMs?: number | undefined;
  /** @default 2000 */
  flushTimeoutMs?: number | undefined;
  /** Published outbox rows older than this are deleted by the relay (pending rows never). @default 24 h */
  outboxRetentionMs?: number | undefined;
  /** Rows deleted per statement by the retention. @default 200 */
  pruneBatchSize?: number | undefined;
  /** Publish attempts of one row before it is dead-lettered (the rows behind it go out meanwhile). @default 5 */
  maxPublishAttempts?: number | undefined;
  /** `/health` turns `degraded` when the oldest pending row is older than this. @default 10 000 */
  maxRelayLagMs?: number | undefined;
  subjectPrefix?: string | undefined;
  onError?: ((message: string, error: unknown) => void) | undefined;
  /** Where NATS connection state changes go (connected, disconnected, reconnecting, reconnected, closed). */
  log?: BroadcasterLog | undefined;
}

/** The broadcaster's NATS connection as `/metrics` reports it (`hub_nats_state`); `off` when NATS is not configured. */
export type NatsState = 'off' | 'connecting' | 'connected' | 'disconnected' | 'reconnecting' | 'closed';
export const NATS_STATES: readonly NatsState[] = ['off', 'connecting', 'connected', 'disconnected', 'reconnecting', 'closed'];

/** The part of a pino logger the broadcaster uses. */
export interface BroadcasterLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  debug(fields: Record<string, unknown>, message: string): void;
}

const silent: BroadcasterLog = { info() {}, warn() {}, debug() {} };

const encoder = new TextEncoder();

export const DEFAULT_OUTBOX_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Retention runs at most this often (more often only when the retention itself is shorter). */
const MAX_PRUNE_INTERVAL_MS = 60_000;
/** Statements per retention run: a backlog is worked off over several runs, never in one long burst. */
const MAX_PRUNE_BATCHES = 10;

/**
 * Publishes `config.update.<service>` after commit; a relay publishes what is left in the outbox and
 * deletes rows published more than `outboxRetentionMs` ago.
 */
export class Broadcaster {
  readonly enabled: boolean;
  readonly #store: Store;
  readonly #owned: boolean;
  readonly #natsOptions: Partial<ConnectionOptions>;
  readonly #signer: BroadcasterOptions['signer'];
  readonly #intervalMs: number;
  readonly #flushTimeoutMs: number;
  readonly #retentionMs: number;
  readonly #pruneBatchSize: number;
  readonly #maxAttempts: number;
  /** For `/health`: the relay lag above which the hub reports `degraded`. */
  readonly maxRelayLagMs: number;
  #lastPruneAt = 0;
  readonly #prefix: string;
  readonly #onError: (message: string, error: unknown) => void;
  readonly #log: BroadcasterLog;
  #nc: NatsConnection | undefined;
  #connected = false;
  #state: NatsState;
  /** Reconnect attempts since the last disconnect, and when it happened (for the `reconnected` line). */
  #attempts = 0;
  #downSince = 0;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #relaying: Promise<number> | undefined;
  #relayAgain = false;
  #connecting: Promise<void> | undefined;
  #wakeConnect: (() => void) | undefined;
  /** Rows this process published (immediately or by relay), for tests and figures. */
  published = 0;
  /** Published outbox rows this process deleted (retention). */
  pruned = 0;
  /** Rows published without `config` because the notice exceeded the server's `max_payload`. */
  publishedWithoutConfig = 0;
  /** Failed publish attempts of single rows (each retried later, or dead-lettered). */
  failedAttempts = 0;
  /** Rows this process dead-lettered. */
  deadLettered = 0;
  /** Times the NATS connection came back after a disconnect. */
  reconnects = 0;

  constructor(options: BroadcasterOptions) {
    this.#store = options.store;
    this.#owned = options.natsConnection === undefined;
    this.#natsOptions = options.natsOptions ?? {};
    this.#signer = options.signer;
    this.enabled = options.natsConnection !== undefined || options.natsUrl !== undefined;
    this.#intervalMs = options.relayIntervalMs ?? 1000;
    this.#flushTimeoutMs = options.flushTimeoutMs ?? 2000;
    this.#retentionMs = options.outboxRetentionMs ?? DEFAULT_OUTBOX_RETENTION_MS;
    if (!Number.isFinite(this.#retentionMs) || this.#retentionMs < 0) {
      throw new TypeError('outboxRetentionMs must be a finite number >= 0');
    }
    this.#pruneBatchSize = options.pruneBatchSize ?? 200;
    if (!Number.isInteger(this.#pruneBatchSize) || this.#pruneBatchSize < 1) {
      throw new TypeError('pruneBatchSize must be an integer >= 1');
    }
    this.#maxAttempts = options.maxPublishAttempts ?? DEFAULT_OUTBOX_MAX_ATTEMPTS;
    if (!Number.isInteger(this.#maxAttempts) || this.#maxAttempts < 1) {
      throw new TypeError('maxPublishAttempts must be an integer >= 1');
    }
    this.maxRelayLagMs = options.maxRelayLagMs ?? 10_000;
    this.#prefix = options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
    this.#onError = options.onError ?? (() => {});
    this.#log = options.log ?? silent;
    this.#state = this.enabled ? 'connecting' : 'off';
    if (options.natsConnection !== undefined) this.#attach(options.natsConnection);
    else if (options.natsUrl !== undefined) this.#connecting = this.#connect(options.natsUrl);
  }

  get connected(): boolean {
    return this.#connected && this.#nc !== undefined && !this.#nc.isClosed();
  }

  /** Where the NATS connection stands (`hub_nats_state`). */
  get natsState(): NatsState {
    return this.#state;
  }

  /** Starts the relay timer (next run scheduled after the current one ends; unref'd). */
  start(): void {
    if (!this.enabled || this.#closed) return;
    this.#schedule();
  }

  /**
   * Connects, retrying every second while NATS is down at start (the hub serves meanwhile, with
   * `broadcast: "unavailable"`). Our own loop rather than `waitOnFirstConnect`, so `close()` can stop it.
   * Once connected, nats.js reconnects forever (`maxReconnectAttempts: -1`).
   */
  async #connect(servers: string): Promise<void> {
    let reported = false;
    while (!this.#closed) {
      try {
        const nc = await connect({
          ...this.#natsOptions,
          servers,
          name: 'central-hub',
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          pingInterval: 10_000,
          timeout: 2000,
        });
        if (this.#closed) {
          await nc.close();
          return;
        }
        this.#attach(nc);
        return;
      } catch (error) {
        if (!reported) this.#onError('nats is not reachable; retrying every second', error);
        reported = true;
        await new Promise<void>((resolve) => {
          this.#wakeConnect = resolve;
          setTimeout(resolve, 1000).unref();
        });
      }
    }
  }

  #attach(nc: NatsConnection): void {
    this.#nc = nc;
    this.#connected = !nc.isClosed();
    this.#state = this.#connected ? 'connected' : 'closed';
    this.#log.info({ server: nc.getServer(), owned: this.#owned }, 'nats connected');
    void (async () => {
      for await (const s of nc.status()) this.#onStatus(s);
    })().catch(() => {});
    void nc.closed().then((error) => {
      this.#connected = false;
      this.#state = 'closed';
      if (error === undefined) this.#log.info({}, 'nats connection closed');
      else this.#log.warn({ err: error.message }, 'nats connection closed with an error');
    });
    void this.relay();
  }

  /**
   * One line per state change: `disconnected` (warn), the first `reconnecting` of an outage (info; the
   * attempts after it, every 500 ms, at debug), `reconnected` (info, with the attempts and the time down).
   */
  #onStatus({ type, data, permissionContext }: Status): void {
    const server = typeof data === 'string' ? data : undefined;
    if (type === 'disconnect') {
      this.#connected = false;
      this.#state = 'disconnected';
      this.#attempts = 0;
      this.#downSince = Date.now();
      this.#log.warn({ server }, 'nats disconnected; notices wait in the outbox');
    } else if (type === 'reconnecting') {
      this.#state = 'reconnecting';
      this.#attempts++;
      if (this.#attempts === 1) this.#log.info({ server }, 'nats reconnecting');
      else this.#log.debug({ server, attempt: this.#attempts }, 'nats reconnecting');
    } else if (type === 'reconnect') {
      this.#connected = true;
      this.#state = 'connected';
      this.reconnects++;
      this.#log.info({ server, attempts: this.#attempts, down_ms: Date.now() - this.#downSince }, 'nats reconnected');
      void this.relay();
    } else if (type === 'error') {
      this.#log.warn({ code: String(data), ...(permissionContext === undefined ? {} : { permission: permissionContext }) }, 'nats reported an error');
    } else if (type === 'ldm') {
      this.#log.info({ server }, 'nats server entering lame duck mode');
    }
  }

  /** The notice as published: signed when the hub has a signing key. */
  #signed(payload: Record<string, unknown>): Record<string, unknown> {
    return this.#signer === undefined ? payload : this.#signer.sign(payload);
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.relay()
        .then(() => this.#pruneIfDue())
        .finally(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /**
   * The bytes of one notice. Over the server's `max_payload` the notice goes without `config` (a hint:
   * clients refetch, DESIGN §3); `undefined` when even that does not fit.
   */
  #encode(row: OutboxRow, maxPayload: number): Uint8Array | undefined {
    const full = encoder.encode(JSON.stringify(this.#signed(row.payload)));
    if (full.byteLength <= maxPayload) return full;
    const { config: _omitted, ...hint } = row.payload;
    const small = encoder.encode(JSON.stringify(this.#signed(hint)));
    if (small.byteLength > maxPayload) return undefined;
    this.publishedWithoutConfig++;
    return small;
  }

  /**
   * Publishes each row on its own: a row that cannot go out is returned as a failure (the store retries
   * it later and dead-letters it after `maxPublishAttempts`) and never holds back the others. Throws when
   * NATS is down or the flush times out (nothing is marked; everything stays pending).
   */
  async #publishRows(rows: OutboxRow[]): Promise<OutboxFailure[]> {
    const nc = this.#nc;
    if (nc === undefined || !this.connected) throw new Error('nats is not connected');
    const maxPayload = nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
    const failures: OutboxFailure[] = [];
    for (const row of rows) {
      const data = this.#encode(row, maxPayload);
      if (data === undefined) {
        failures.push({ id: row.id, error: `notice exceeds the server's max_payload (${maxPayload} bytes) even without config` });
        continue;
      }
      try {
        nc.publish(subjectFor(row.service_name, this.#prefix), data);
      } catch (error) {
        if (nc.isClosed() || !this.connected) throw error;
        failures.push({ id: row.id, error: error instanceof Error ? error.message : String(error) });
      }
    }
    if (failures.length < rows.length) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          nc.flush(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('nats flush timed out')), this.#flushTimeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    }
    this.published += rows.length - failures.length;
    this.failedAttempts += failures.length;
    return failures;
  }

  #report(failed: OutboxAttempt[], dead: OutboxAttempt[]): void {
    for (const f of failed) {
      this.#onError(`outbox row ${f.id} (${f.service_name} revision ${f.revision}) not published, attempt ${f.attempts}/${this.#maxAttempts}; will retry`, f.error);
    }
    for (const d of dead) {
      this.deadLettered++;
      this.#onError(
        `outbox row ${d.id} (${d.service_name} revision ${d.revision}) dead-lettered after ${d.attempts} attempts; clients see the change on their next poll`,
        d.error,
      );
    }
  }

  /**
   * Publishes the outbox row of a change that was just committed. `sent` when it is published (by us, or
   * already claimed/published by a relay), `unavailable` when NATS is off or disconnected (the relay will
   * publish it later), `failed` when publishing failed (the row stays pending).
   */
  async publishCommitted(outboxId: number | null): Promise<BroadcastStatus> {
    if (!this.enabled || !this.connected || outboxId === null) return 'unavailable';
    try {
      const r = await this.#store.publishPending((rows) => this.#publishRows(rows), {
        onlyId: outboxId,
        maxAttempts: this.#maxAttempts,
      });
      this.#report(r.failed, r.dead);
      return r.failed.length + r.dead.length > 0 ? 'failed' : 'sent';
    } catch (error) {
      this.#onError('broadcast failed; the relay will retry', error);
      return 'failed';
    }
  }

  /** Publishes pending outbox rows until none is left (single-flight). Returns rows published. */
  relay(): Promise<number> {
    if (this.#relaying !== undefined) {
      this.#relayAgain = true;
      return this.#relaying;
    }
    const run = (async () => {
      let total = 0;
      try {
        do {
          this.#relayAgain = false;
          // One pass over the pending rows in id order: a row that failed is retried by the next run,
          // not again in this one (so N attempts are N runs apart), and the rows behind it go out now.
          let afterId = 0;
          while (this.connected) {
            const r = await this.#store.publishPending((rows) => this.#publishRows(rows), {
              limit: 100,
              afterId,
              maxAttempts: this.#maxAttempts,
            });
            this.#report(r.failed, r.dead);
            total += r.published;
            afterId = r.lastId;
            if (r.claimed === 0) break;
          }
        } while (this.#relayAgain && this.connected);
      } catch (error) {
        if (!this.#closed) this.#onError('outbox relay failed; will retry', error);
      }
      return total;
    })();
    // Cleared after the run settles (the run may complete synchronously when NATS is down).
    this.#relaying = run;
    void run.then(() => {
      if (this.#relaying === run) this.#relaying = undefined;
    });
    return run;
  }

  /** Runs the retention when its interval has passed (also while NATS is down: published rows still age). */
  async #pruneIfDue(): Promise<void> {
    if (this.#closed || Date.now() - this.#lastPruneAt < Math.min(this.#retentionMs, MAX_PRUNE_INTERVAL_MS)) return;
    this.#lastPruneAt = Date.now();
    try {
      await this.prune();
    } catch (error) {
      if (!this.#closed) this.#onError('outbox retention failed; will retry', error);
    }
  }

  /**
   * Deletes outbox rows published more than `outboxRetentionMs` ago, `pruneBatchSize` rows per statement,
   * at most 10 statements per call (the next run takes the rest). Never deletes a pending row. Returns
   * the rows deleted.
   */
  async prune(): Promise<number> {
    let total = 0;
    for (let i = 0; i < MAX_PRUNE_BATCHES && !this.#closed; i++) {
      const n = await this.#store.pruneOutbox(this.#retentionMs, this.#pruneBatchSize);
      total += n;
      this.pruned += n;
      if (n < this.#pruneBatchSize) break;
    }
    return total;
  }

  /** Stops the relay, flushes what is pending once, and closes the NATS connection if we opened it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    if (this.#relaying !== undefined) await this.#relaying;
    if (this.connected) await this.relay();
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#owned) {
      const nc = this.#nc;
      if (nc !== undefined && !nc.isClosed()) {
        await nc.drain().catch(() => nc.close());
      }
      // A connect loop still waiting for its first server sees #closed and stops.
      this.#wakeConnect?.();
      await this.#connecting;
    }
  }
}
