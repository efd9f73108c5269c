/**
 * Turns NATS traffic into triggers: a validated notice per watched service, an invalid-notice report,
 * and a resync after every reconnect. It owns no refresh logic; the client decides what a trigger does.
 *
 * Core NATS is at-most-once: anything published while we were disconnected is gone, hence `onResync`.
 */
import type { KeyObject } from 'node:crypto';
import type { ConnectionOptions, NatsConnection, Status, Subscription } from 'nats';
import { ConfigError } from '../errors.js';
import { DEFAULT_SUBJECT_PREFIX, type Notice, serviceNameSchema, subjectFor } from '../hub/wire.js';
import { type Logger, safeLogger } from '../logger.js';
import { raceTimeout } from '../timeout.js';
import { DEFAULT_MAX_NOTICE_BYTES, type NoticeVerifier, noticeVerifier, parseSharedNotice } from './notice.js';

export type NatsState = 'off' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** Ping every 10 s, give up on the socket after 3 missed pongs: a dead broker is noticed within ~30 s. */
export const DEFAULT_NATS_PING_INTERVAL_MS = 10_000;
export const DEFAULT_NATS_MAX_PING_OUT = 3;
export const DEFAULT_NATS_RECONNECT_TIME_WAIT_MS = 1_000;
export const DEFAULT_NATS_RECONNECT_JITTER_MS = 500;
/** How long close() waits for a drain of a connection we opened before closing it hard. */
export const DEFAULT_NATS_DRAIN_TIMEOUT_MS = 5_000;
/** How long start() waits for the server to confirm our subscriptions. */
export const DEFAULT_NATS_FLUSH_TIMEOUT_MS = 2_000;

export interface NatsWatcherOptions {
  /** Services to watch; each is subscribed on its exact subject `<subjectPrefix>.<service>`, never a wildcard. */
  services: readonly string[];
  /**
   * Subject prefix.
   * @default 'config.update'
   */
  subjectPrefix?: string;
  /** Servers to connect to; the watcher then owns the connection and drains it on close(). */
  servers?: string | string[];
  /** A connection the service already has; never closed or drained by the watcher. */
  connection?: NatsConnection;
  /**
   * Extra nats options for a connection we open. `maxReconnectAttempts` is always -1 (the nats default
   * gives up after 10 attempts); ping and reconnect timings default to the `DEFAULT_NATS_*` constants.
   */
  connectOptions?: Partial<ConnectionOptions>;
  /**
   * Payloads above this size are reported as invalid without being parsed.
   * @default 1_048_576
   */
  maxNoticeBytes?: number;
  /**
   * The hub's Ed25519 public keys by key id (`kid`): PEM, base64 SPKI DER or a KeyObject. With keys, every
   * notice's signature is checked and `onNotice` says whether it verified; a notice that does not
   * (unsigned, unknown kid, bad signature) is still delivered, as an unverified hint, and reported once
   * through `onInvalidNotice` (`NOTICE_UNVERIFIED`). Without keys nothing is checked (`verified` false).
   */
  verifyKeys?: Readonly<Record<string, string | KeyObject>> | undefined;
  /**
   * A validated notice for a watched service. Duplicate or older notices are delivered too: the caller
   * compares revisions. `verified`: it carries a valid signature of one of `verifyKeys`. The notice is deeply
   * frozen and shared with every other receiver of the same message in the process: read it, never change it.
   */
  onNotice: (service: string, notice: Notice, verified: boolean) => void;
  /**
   * A malformed, oversize or foreign-service payload (`NOTICE_INVALID`); it is dropped after this report.
   * With `verifyKeys`, also a notice that did not verify (`NOTICE_UNVERIFIED`), delivered as a hint after it.
   * Also a subscription the NATS server refused or ended (`NATS_PERMISSION_DENIED`,
   * `NATS_SUBSCRIPTION_FAILED`): that service then gets no notices, only the poll.
   */
  onInvalidNotice: (service: string, error: ConfigError) => void;
  /**
   * Called after every reconnect, and after a first connection that only succeeded once start() had
   * returned: notices may have been missed, so every watched service should be refetched.
   */
  onResync: () => void;
  /** Every change of `state`. */
  onStateChange?: (state: NatsState) => void;
  /** @default silent */
  logger?: Partial<Logger>;
}

const WILDCARD_OR_SPACE = /[*>\s]/;

export class NatsWatcher {
  readonly #services: readonly string[];
  readonly #prefix: string;
  readonly #handed: NatsConnection | undefined;
  readonly #connectOptions: ConnectionOptions;
  readonly #maxNoticeBytes: number;
  readonly #verifier: NoticeVerifier | undefined;
  readonly #onNotice: NatsWatcherOptions['onNotice'];
  readonly #onInvalidNotice: NatsWatcherOptions['onInvalidNotice'];
  readonly #onResync: NatsWatcherOptions['onResync'];
  readonly #onStateChange: NatsWatcherOptions['onStateChange'];
  readonly #log: Logger;

  #state: NatsState = 'off';
  #connection: NatsConnection | undefined;
  #subscriptions: Subscription[] = [];
  #statusIterator: AsyncIterable<Status> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #started: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #startReturned = false;

  constructor(options: NatsWatcherOptions) {
    if (!Array.isArray(options.services) || options.services.length === 0) {
      throw new ConfigError('INVALID_OPTIONS', 'NatsWatcher needs at least one service');
    }
    for (const service of options.services) {
      if (!serviceNameSchema.safeParse(service).success) {
        throw new ConfigError('INVALID_OPTIONS', `invalid service name for NATS: ${JSON.stringify(service)}`);
      }
    }
    const prefix = options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
    if (prefix === '' || WILDCARD_OR_SPACE.test(prefix) || prefix.startsWith('.') || prefix.endsWith('.')) {
      // A wildcard prefix would deliver other services' notices, which the exact-subject rule forbids.
      throw new ConfigError('INVALID_OPTIONS', `invalid NATS subject prefix: ${JSON.stringify(prefix)}`);
    }
    const hasServers = options.servers !== undefined && options.servers.length > 0;
    if (hasServers === (options.connection !== undefined)) {
      throw new ConfigError('INVALID_OPTIONS', 'NatsWatcher needs exactly one of `servers` or `connection`');
    }
    const maxNoticeBytes = options.maxNoticeBytes ?? DEFAULT_MAX_NOTICE_BYTES;
    if (!Number.isInteger(maxNoticeBytes) || maxNoticeBytes <= 0) {
      throw new ConfigError('INVALID_OPTIONS', 'maxNoticeBytes must be a positive integer');
    }
    this.#services = [...new Set(options.services)];
    this.#prefix = prefix;
    this.#handed = options.connection;
    this.#connectOptions = {
      name: '@central-hub/config',
      pingInterval: DEFAULT_NATS_PING_INTERVAL_MS,
      maxPingOut: DEFAULT_NATS_MAX_PING_OUT,
      reconnectTimeWait: DEFAULT_NATS_RECONNECT_TIME_WAIT_MS,
      reconnectJitter: DEFAULT_NATS_RECONNECT_JITTER_MS,
      ...options.connectOptions,
      servers: options.servers,
      maxReconnectAttempts: -1,
      reconnect: true,
      // nats' own first-connect loop (waitOnFirstConnect) cannot be cancelled by close() and its timers
      // hold the process; we retry the first connection ourselves with an unref()'d timer instead.
      waitOnFirstConnect: false,
    };
    this.#maxNoticeBytes = maxNoticeBytes;
    this.#verifier = options.verifyKeys === undefined ? undefined : noticeVerifier(options.verifyKeys);
    this.#onNotice = options.onNotice;
    this.#onInvalidNotice = options.onInvalidNotice;
    this.#onResync = options.onResync;
    this.#onStateChange = options.onStateChange;
    this.#log = safeLogger(options.logger);
  }

  get state(): NatsState {
    return this.#state;
  }

  /**
   * Connects (or adopts the handed connection) and subscribes. Resolves after the first attempt, once the
   * server has acknowledged the subscriptions (bounded wait); if the attempt failed, the watcher keeps
   * retrying in the background with state `connecting`. Calling it again
   * returns the same promise; after close() it rejects with `CLIENT_CLOSED`.
   */
  start(): Promise<void> {
    if (this.#closing) {
      return Promise.reject(new ConfigError('CLIENT_CLOSED', 'NatsWatcher is closed'));
    }
    this.#started ??= this.#start().finally(() => {
      this.#startReturned = true;
    });
    return this.#started;
  }

  /** Idempotent: unsubscribes, and drains the connection only when the watcher opened it. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #start(): Promise<void> {
    if (this.#handed) {
      if (this.#handed.isClosed()) {
        this.#log.warn({ component: 'nats' }, 'handed NATS connection is already closed');
        this.#setState('closed');
        return;
      }
      await this.#attach(this.#handed);
      return;
    }
    this.#setState('connecting');
    if (!(await this.#tryConnect())) this.#scheduleRetry();
  }

  async #tryConnect(): Promise<boolean> {
    let connection: NatsConnection;
    try {
      // Loaded on first use: `nats` costs ~40 % of the package's import time (bench figure 7), and a client
      // without NATS, or handed a connection, never needs it.
      const { connect } = await import('nats');
      connection = await connect(this.#connectOptions);
    } catch (error) {
      const code = (error as { code?: unknown } | undefined)?.code;
      if (code === 'AUTHORIZATION_VIOLATION' || code === 'PERMISSIONS_VIOLATION') {
        // Wrong or missing credentials (`connectOptions` user/pass, token, authenticator): no retry fixes that alone.
        this.#log.error({ component: 'nats', err: error }, 'NATS refused our credentials; retrying in the background');
      } else {
        this.#log.warn({ component: 'nats', err: error }, 'NATS connect failed; retrying in the background');
      }
      return false;
    }
    if (this.#closing) {
      // close() ran while we were dialling: this connection is ours and nobody else will close it.
      await connection.close().catch(() => {});
      return true;
    }
    await this.#attach(connection);
    return true;
  }

  #scheduleRetry(): void {
    if (this.#closing) return;
    const base = this.#connectOptions.reconnectTimeWait ?? DEFAULT_NATS_RECONNECT_TIME_WAIT_MS;
    const jitter = this.#connectOptions.reconnectJitter ?? DEFAULT_NATS_RECONNECT_JITTER_MS;
    const timer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#tryConnect().then((connected) => {
        if (!connected) {
          this.#scheduleRetry();
        } else if (!this.#closing && this.#startReturned) {
          // The caller went on without NATS; whatever was published meanwhile never reached us.
          this.#resync();
        }
      });
    }, base + Math.random() * jitter);
    timer.unref?.();
    this.#retryTimer = timer;
  }

  async #attach(connection: NatsConnection): Promise<void> {
    this.#connection = connection;
    void this.#watchStatus(connection);
    // A handed connection outlives this watcher: its `closed()` reaction must not keep a closed watcher (and the
    // client and runtimes its callbacks reach) alive for as long as the application keeps the connection.
    // (Built outside this method: a closure made here would share its context, `this` included.)
    void connection.closed().then(weakly(new WeakRef(this), NatsWatcher.#onConnectionClosed));
    for (const service of this.#services) {
      const subject = subjectFor(service, this.#prefix);
      let subscription: Subscription;
      try {
        // A callback, not the async iterator: no promise and microtask round per message (bench figure 3:
        // 1 000 clients on 20 connections receive 1 000 messages per change).
        subscription = connection.subscribe(subject, {
          // Runs inside nats.js' socket reader: anything thrown here ends the connection's message loop
          // for every subscription on it (issue 9 #6), hence the catch-all.
          callback: (error, message) => {
            try {
              if (error) {
                // e.g. a permissions violation on the subject: the subscription is dead, say so loudly.
                if (!this.#closing) this.#subscriptionFailed(service, subject, error);
                return;
              }
              this.#handle(service, message.data);
            } catch (thrown) {
              this.#reportInvalid(
                service,
                new ConfigError('NOTICE_INVALID', `notice for ${service}: could not be handled`, { service, cause: thrown }),
              );
            }
          },
        });
      } catch (error) {
        this.#log.error({ component: 'nats', subject, err: error }, 'NATS subscribe failed');
        continue;
      }
      this.#subscriptions.push(subscription);
    }
    // SUB is sent lazily: without the round trip a notice published right after start() resolved
    // could reach the server before our interest does, and be lost.
    await this.#flush(connection);
    if (!connection.isClosed()) this.#setState('connected');
  }

  async #flush(connection: NatsConnection): Promise<void> {
    try {
      // Bounded: on a connection that is reconnecting a flush waits for the server; the resync covers that case.
      await raceTimeout(connection.flush(), DEFAULT_NATS_FLUSH_TIMEOUT_MS);
    } catch (error) {
      this.#log.debug({ component: 'nats', err: error }, 'NATS flush after subscribe failed');
    }
  }

  #handle(service: string, data: Uint8Array): void {
    // The shared, frozen notice: one parse and one signature check per message, however many subscriptions.
    const result = parseSharedNotice(service, data, this.#maxNoticeBytes, this.#verifier);
    if (result.ok) {
      const unverified = result.unverified;
      if (unverified !== undefined) {
        this.#log.warn({ component: 'nats', service, err: unverified }, 'unverified NATS notice: treated as a hint');
        this.#call('onInvalidNotice', () => this.#onInvalidNotice(service, unverified));
      }
      this.#call('onNotice', () => this.#onNotice(service, result.notice, result.verified));
    } else {
      this.#reportInvalid(service, result.error);
    }
  }

  /**
   * nats.js ends a subscription the server refused (`-ERR 'Permissions Violation for Subscription to …'`)
   * by calling its callback with the error; the connection itself stays up and `state` says `connected`.
   * Reported through `onInvalidNotice` (the client turns it into an `onError` event) as well as the log,
   * so a misconfigured NATS user is never silent. The safety-net poll still delivers changes.
   */
  #subscriptionFailed(service: string, subject: string, error: unknown): void {
    const permission = (error as { code?: unknown } | undefined)?.code === 'PERMISSIONS_VIOLATION';
    this.#log.error({ component: 'nats', service, subject, err: error }, 'NATS subscription ended with an error');
    const report = new ConfigError(
      permission ? 'NATS_PERMISSION_DENIED' : 'NATS_SUBSCRIPTION_FAILED',
      permission
        ? `the NATS server refused the subscription to ${subject} (permissions violation): no hot reload for ${service}, only the poll`
        : `the NATS subscription to ${subject} ended: no hot reload for ${service}, only the poll`,
      { service, cause: error },
    );
    this.#call('onInvalidNotice', () => this.#onInvalidNotice(service, report));
  }

  #reportInvalid(service: string, error: ConfigError): void {
    this.#log.warn({ component: 'nats', service, err: error }, 'dropped invalid NATS notice');
    this.#call('onInvalidNotice', () => this.#onInvalidNotice(service, error));
  }

  static readonly #onConnectionClosed = (watcher: NatsWatcher, error: unknown): void => watcher.#connectionClosed(error);

  #connectionClosed(error: unknown): void {
    // With unlimited reconnects nats only gives up for good on fatal errors (e.g. auth): say so.
    if (error && !this.#closing) {
      this.#log.error({ component: 'nats', err: error }, 'NATS connection closed for good');
    }
    this.#setState('closed');
  }

  async #watchStatus(connection: NatsConnection): Promise<void> {
    const iterator = connection.status();
    this.#statusIterator = iterator;
    try {
      for await (const status of iterator) {
        if (this.#closing) break;
        // The values of nats' Events / DebugEvents enums (plain strings: no runtime import of nats needed).
        switch (status.type as string) {
          case 'disconnect':
          case 'reconnecting':
            this.#setState('reconnecting');
            break;
          case 'reconnect':
            this.#setState('connected');
            this.#resync();
            break;
          case 'error':
            // e.g. `PERMISSIONS_VIOLATION` with the refused operation and subject in `permissionContext`.
            this.#log.warn(
              { component: 'nats', data: status.data, permissionContext: (status as { permissionContext?: unknown }).permissionContext },
              'NATS async error',
            );
            break;
          case 'ldm':
            this.#log.info({ component: 'nats' }, 'NATS server entering lame duck mode');
            break;
          default:
            this.#log.debug({ component: 'nats', type: status.type }, 'NATS status');
        }
      }
    } catch (error) {
      this.#log.warn({ component: 'nats', err: error }, 'NATS status stream failed');
    }
  }

  #resync(): void {
    this.#log.info({ component: 'nats' }, 'NATS (re)connected: resync');
    this.#call('onResync', () => this.#onResync());
  }

  #setState(state: NatsState): void {
    // After close() the only state left to report is `closed`.
    if (this.#state === state || this.#state === 'closed') return;
    if (this.#closing && state !== 'closed') return;
    this.#state = state;
    const onStateChange = this.#onStateChange;
    if (onStateChange) this.#call('onStateChange', () => onStateChange(state));
  }

  #call(name: string, callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.#log.error({ component: 'nats', callback: name, err: error }, 'NatsWatcher callback threw');
    }
  }

  async #close(): Promise<void> {
    if (this.#retryTimer !== undefined) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    // Stops our status listener; `stop` is on nats' iterator implementation, not on its public type.
    (this.#statusIterator as { stop?: () => void } | undefined)?.stop?.();
    const connection = this.#connection;
    const subscriptions = this.#subscriptions;
    this.#subscriptions = [];
    if (connection && connection === this.#handed) {
      for (const subscription of subscriptions) {
        try {
          if (!subscription.isClosed()) subscription.unsubscribe();
        } catch (error) {
          this.#log.warn({ component: 'nats', err: error }, 'NATS unsubscribe failed');
        }
      }
    } else if (connection && !connection.isClosed()) {
      await this.#drainOwned(connection);
    }
    this.#setState('closed');
  }

  async #drainOwned(connection: NatsConnection): Promise<void> {
    try {
      // A drain waits for the server; while disconnected it could wait forever, hence the timeout.
      await raceTimeout(connection.drain(), DEFAULT_NATS_DRAIN_TIMEOUT_MS);
    } catch (error) {
      this.#log.debug({ component: 'nats', err: error }, 'NATS drain failed; closing');
    }
    if (!connection.isClosed()) await connection.close().catch(() => {});
  }
}

/** A callback that reaches `target` only while something else keeps it alive. */
function weakly<T extends object, A>(target: WeakRef<T>, call: (target: T, arg: A) => void): (arg: A) => void {
  return (arg) => {
    const live = target.deref();
    if (live) call(live, arg);
  };
}
