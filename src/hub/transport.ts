/**
 * HTTP transport to the Central Hub: an undici `Agent` of our own (never the global dispatcher), keep-alive,
 * timeouts far below undici's 300 s defaults, conditional GETs, retries with full-jitter backoff that honour
 * `Retry-After`, and failover across the listed hubs in order.
 */
import { Agent, type Dispatcher } from 'undici';
import { ConfigError, HubHttpError } from '../errors.js';
import type { Logger } from '../logger.js';
import { backoffDelay, isRetryableStatus, parseRetryAfter } from './retry.js';
import { type ConfigDocument, configDocumentSchema, errorBodySchema } from './wire.js';

export interface TransportSettings {
  hubUrls: readonly string[];
  apiKey: string | undefined;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  retries: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  maxRetryAfterMs: number;
  keepAliveTimeoutMs: number;
  maxResponseBytes: number;
  dispatcher: Dispatcher | undefined;
  logger: Logger;
  random: () => number;
}

export type FetchResult =
  | { kind: 'document'; document: ConfigDocument; etag: string | undefined; hubUrl: string }
  | { kind: 'not-modified'; hubUrl: string };

export interface FetchOptions {
  /** Sent as `If-None-Match` so an unchanged config costs a 304. */
  etag?: string | undefined;
  /** Called each time every hub has failed one round with a retryable error, before the backoff. */
  onRoundFailed?: (() => void) | undefined;
}

/** A failed attempt, classified once: retry it (maybe elsewhere) or give up. */
interface AttemptFailure {
  error: ConfigError;
  retryable: boolean;
  retryAfterMs?: number | undefined;
}

export class HubTransport {
  readonly #settings: TransportSettings;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #closing = new AbortController();
  /** Index of the hub that answered last; failover starts there so a dead first hub costs one miss, not one per call. */
  #preferred = 0;
  #closed: Promise<void> | undefined;
  readonly #urls = new Map<string, { origin: string; path: string }>();

  constructor(settings: TransportSettings) {
    this.#settings = settings;
    this.#ownsDispatcher = settings.dispatcher === undefined;
    this.#dispatcher =
      settings.dispatcher ??
      new Agent({
        connect: { timeout: settings.connectTimeoutMs },
        headersTimeout: settings.requestTimeoutMs,
        bodyTimeout: settings.requestTimeoutMs,
        keepAliveTimeout: settings.keepAliveTimeoutMs,
        connections: 8,
      });
  }

  async fetchConfig(service: string, options: FetchOptions = {}): Promise<FetchResult> {
    const { hubUrls, retries } = this.#settings;
    let last: AttemptFailure | undefined;
    for (let round = 0; round <= retries; round++) {
      if (round > 0) await this.#sleep(this.#delayBeforeRound(round, last));
      for (let i = 0; i < hubUrls.length; i++) {
        const index = (this.#preferred + i) % hubUrls.length;
        const hubUrl = hubUrls[index]!;
        const outcome = await this.#attempt(hubUrl, service, options);
        if (!('error' in outcome)) {
          this.#preferred = index;
          return outcome;
        }
        last = outcome;
        this.#settings.logger.debug(
          { service, hubUrl, code: outcome.error.code, round, retryable: outcome.retryable },
          'hub attempt failed',
        );
        if (!outcome.retryable) throw outcome.error;
      }
      options.onRoundFailed?.();
      if (last?.retryAfterMs !== undefined && last.retryAfterMs > this.#settings.maxRetryAfterMs) break;
    }
    throw last!.error;
  }

  #delayBeforeRound(round: number, last: AttemptFailure | undefined): number {
    const { retryBaseDelayMs, retryMaxDelayMs, random } = this.#settings;
    const backoff = backoffDelay(round - 1, retryBaseDelayMs, retryMaxDelayMs, random);
    return Math.max(backoff, last?.retryAfterMs ?? 0);
  }

  async #attempt(hubUrl: string, service: string, options: FetchOptions): Promise<FetchResult | AttemptFailure> {
    if (this.#closing.signal.aborted) return closedFailure(service);
    const url = this.#url(hubUrl, service);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#settings.apiKey !== undefined) headers['x-api-key'] = this.#settings.apiKey;
    if (options.etag !== undefined) headers['if-none-match'] = options.etag;
    // One controller for the deadline and close(): `AbortSignal.timeout` + `AbortSignal.any` cost a timer,
    // two signals and their dependency bookkeeping per request (bench figure 3: 1 000 requests per change).
    const controller = new AbortController();
    const signal = controller.signal;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }, this.#settings.requestTimeoutMs);
    timer.unref();
    const closing = this.#closing.signal;
    const onClose = (): void => controller.abort(closing.reason);
    closing.addEventListener('abort', onClose, { once: true });
    try {
      const response = await this.#dispatcher.request({ origin: url.origin, path: url.path, method: 'GET', headers, signal });
      return await this.#interpret(response, hubUrl, service, signal);
    } catch (cause) {
      if (closing.aborted) return closedFailure(service);
      const reason = timedOut ? `no answer within ${this.#settings.requestTimeoutMs} ms` : describe(cause);
      return {
        error: new ConfigError('HUB_UNREACHABLE', `hub ${url.origin} unreachable: ${reason}`, { service, cause }),
        retryable: true,
      };
    } finally {
      clearTimeout(timer);
      closing.removeEventListener('abort', onClose);
    }
  }

  /** The document URL of one service at one hub, built once. */
  #url(hubUrl: string, service: string): { origin: string; path: string } {
    const key = `${hubUrl}\n${service}`;
    let cached = this.#urls.get(key);
    if (!cached) {
      const url = new URL(`api/v1/config/${encodeURIComponent(service)}`, hubUrl.endsWith('/') ? hubUrl : `${hubUrl}/`);
      cached = { origin: url.origin, path: `${url.pathname}${url.search}` };
      this.#urls.set(key, cached);
    }
    return cached;
  }

  async #interpret(
    response: Dispatcher.ResponseData,
    hubUrl: string,
    service: string,
    signal: AbortSignal,
  ): Promise<FetchResult | AttemptFailure> {
    const { statusCode: status, headers } = response;
    if (status === 304) {
      await response.body.dump();
      return { kind: 'not-modified', hubUrl };
    }
    const text = await readLimited(response.body, this.#settings.maxResponseBytes, signal);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (cause) {
      // A cut connection shows up here as truncated JSON: worth another attempt.
      return {
        error: new ConfigError('HUB_RESPONSE_INVALID', `hub answered ${status} with a body that is not JSON`, {
          service,
          cause,
        }),
        retryable: status === 200 || isRetryableStatus(status),
      };
    }
    if (status === 200) {
      const parsed = configDocumentSchema.safeParse(body);
      if (!parsed.success || parsed.data.service_name !== service) {
        return {
          error: new ConfigError('HUB_RESPONSE_INVALID', `hub document for ${service} does not follow the wire contract`, {
            service,
            cause: parsed.error,
          }),
          retryable: false,
        };
      }
      const etag = headers.etag;
      return { kind: 'document', document: parsed.data, etag: typeof etag === 'string' ? etag : undefined, hubUrl };
    }
    const detail = errorBodySchema.safeParse(body).data?.detail;
    if (status === 404) return { error: new HubHttpError('CONFIG_NOT_FOUND', status, detail, { service }), retryable: false };
    if (status === 401 || status === 403) {
      return { error: new HubHttpError('UNAUTHORIZED', status, detail, { service }), retryable: false };
    }
    return {
      error: new HubHttpError('HUB_ERROR', status, detail, { service }),
      retryable: isRetryableStatus(status),
      retryAfterMs: parseRetryAfter(headers['retry-after']),
    };
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.#closing.signal;
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Aborts requests in flight and closes the agent if we created it. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort();
      if (this.#ownsDispatcher) await this.#dispatcher.close().catch(() => undefined);
    })();
    return this.#closed;
  }
}

function closedFailure(service: string): AttemptFailure {
  return { error: new ConfigError('CLIENT_CLOSED', 'the client is closed', { service }), retryable: false };
}

/**
 * The body as UTF-8 text, at most `limit` bytes. Listeners rather than `for await`: the async iterator costs
 * a promise and a microtask round per chunk, and this runs once per client per change (bench figure 3).
 */
function readLimited(body: Dispatcher.ResponseData['body'], limit: number, signal: AbortSignal): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      body.destroy();
      reject(error);
    };
    function onData(chunk: unknown): void {
      if (settled) return;
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      size += buf.length;
      if (size > limit) fail(new Error(`response larger than ${limit} bytes`));
      else if (signal.aborted) fail(signal.reason);
      else chunks.push(buf);
    }
    body.on('data', onData);
    // Stays attached: an error after we settled (e.g. the abort of a body we destroyed) must not go unhandled.
    body.on('error', fail);
    body.once('end', () => {
      if (settled) return;
      settled = true;
      resolve((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)).toString('utf8'));
    });
    body.once('close', () => fail(new Error('response body closed before its end')));
  });
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${code} ${cause.message}` : cause.message;
  }
  return String(cause);
}
