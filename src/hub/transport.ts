/**
 * HTTP transport to the Central Hub: an undici `Agent` of our own (never the global dispatcher), keep-alive,
 * timeouts far below undici's 300 s defaults, conditional GETs, retries with full-jitter backoff that honour
 * `Retry-After`, and failover across the listed hubs in order.
 */
import { Agent, type Dispatcher } from 'undici';
import { ConfigError, HubHttpError, isConfigError } from '../errors.js';
import { jsonTextExceedsDepth, MAX_CONFIG_DEPTH, valueExceedsDepth } from '../json-depth.js';
import type { Logger } from '../logger.js';
import { REPORT_HEADER } from '../fleet/wire.js';
import { MIN_REVISION_HEADER } from './wire.js';
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
  /** The `x-config-report` header of a request about `service` (fleet reporting, docs/fleet.md), or none. A throw is ignored (the request goes without it). */
  reportHeader?: ((service: string) => string | undefined) | undefined;
  /** Sees the status and headers of every hub answer to a config request (fleet reporting reads its headers). A throw is ignored. */
  onAnswer?: ((hubUrl: string, service: string, status: number, headers: Dispatcher.ResponseData['headers']) => void) | undefined;
  /** Sees every `fetchConfig` that ended (not one abandoned by close or its signal), with its duration in seconds (metrics). Must not throw. */
  onFetched?: ((service: string, outcome: FetchOutcome, seconds: number) => void) | undefined;
}

/** How a `fetchConfig` ended, retries and failover included. */
export type FetchOutcome = 'document' | 'not_modified' | 'not_found' | 'error';

/** A request of the fleet protocol: a report or a schema upload. */
export interface SendRequest {
  method: 'POST' | 'PUT';
  /** Relative to the hub URL, e.g. `api/v1/schemas/<hash>`. */
  path: string;
  /** JSON text. */
  body: string;
  /** Extra headers (`x-api-key`, `accept` and `content-type` are set here). */
  headers: Record<string, string>;
}

export type FetchResult =
  | { kind: 'document'; document: ConfigDocument; etag: string | undefined; hubUrl: string }
  | { kind: 'not-modified'; hubUrl: string };

export interface FetchOptions {
  /** Sent as `If-None-Match` so an unchanged config costs a 304. */
  etag?: string | undefined;
  /** Sent as `x-config-min-revision`: the revision a notice named (docs/fleet.md §7). */
  minRevision?: number | undefined;
  /** Called each time every hub has failed one round with a retryable error, before the backoff. */
  onRoundFailed?: (() => void) | undefined;
  /**
   * Abandons this fetch: the request in flight is aborted and a backoff or `Retry-After` wait ends at once;
   * the fetch rejects with `HUB_UNREACHABLE` (cause: the signal's reason). `close()` does the same for
   * every fetch, with `CLIENT_CLOSED`.
   */
  signal?: AbortSignal | undefined;
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

  /** The hub that answered last (the one failover starts at). */
  get preferredHubUrl(): string {
    return this.#settings.hubUrls[this.#preferred]!;
  }

  /**
   * Sends one fleet request to `hubUrl`: no retries and no failover (a report is telemetry), the fetch's
   * deadline, aborted by close(). Resolves with the status and headers (the body is discarded); rejects on
   * a network error, the deadline, or close().
   */
  async send(hubUrl: string, request: SendRequest): Promise<{ status: number; headers: Dispatcher.ResponseData['headers'] }> {
    if (this.#closing.signal.aborted) throw new ConfigError('CLIENT_CLOSED', 'the client is closed');
    const url = new URL(request.path, hubUrl.endsWith('/') ? hubUrl : `${hubUrl}/`);
    const headers: Record<string, string> = { ...request.headers, accept: 'application/json', 'content-type': 'application/json' };
    if (this.#settings.apiKey !== undefined) headers['x-api-key'] = this.#settings.apiKey;
    const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(this.#settings.requestTimeoutMs)]);
    const response = await this.#dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: request.method,
      headers,
      body: request.body,
      signal,
    });
    await response.body.dump().catch(() => undefined);
    return { status: response.statusCode, headers: response.headers };
  }

  fetchConfig(service: string, options: FetchOptions = {}): Promise<FetchResult> {
    const onFetched = this.#settings.onFetched;
    return onFetched === undefined ? this.#fetchConfig(service, options) : this.#timedFetch(service, options, onFetched);
  }

  async #timedFetch(service: string, options: FetchOptions, onFetched: NonNullable<TransportSettings['onFetched']>): Promise<FetchResult> {
    const started = performance.now();
    let outcome: FetchOutcome = 'error';
    try {
      const result = await this.#fetchConfig(service, options);
      outcome = result.kind === 'document' ? 'document' : 'not_modified';
      return result;
    } catch (error) {
      if (isConfigError(error) && error.code === 'CONFIG_NOT_FOUND') outcome = 'not_found';
      throw error;
    } finally {
      if (!this.#closing.signal.aborted && options.signal?.aborted !== true) onFetched(service, outcome, (performance.now() - started) / 1000);
    }
  }

  async #fetchConfig(service: string, options: FetchOptions): Promise<FetchResult> {
    const { hubUrls, retries } = this.#settings;
    const { signal } = options;
    let last: AttemptFailure | undefined;
    for (let round = 0; round <= retries; round++) {
      if (round > 0) await this.#sleep(this.#delayBeforeRound(round, last), signal);
      for (let i = 0; i < hubUrls.length; i++) {
        const index = (this.#preferred + i) % hubUrls.length;
        const hubUrl = hubUrls[index]!;
        const outcome = await this.#attempt(hubUrl, service, options, signal);
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

  async #attempt(
    hubUrl: string,
    service: string,
    { etag, minRevision }: FetchOptions,
    caller: AbortSignal | undefined,
  ): Promise<FetchResult | AttemptFailure> {
    if (this.#closing.signal.aborted) return closedFailure(service);
    if (caller?.aborted) return abortedFailure(service, caller);
    const url = this.#url(hubUrl, service);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#settings.apiKey !== undefined) headers['x-api-key'] = this.#settings.apiKey;
    if (etag !== undefined) headers['if-none-match'] = etag;
    if (minRevision !== undefined) headers[MIN_REVISION_HEADER] = String(minRevision);
    // Telemetry never blocks delivery: a fleet report that cannot be built leaves the request without it.
    try {
      const report = this.#settings.reportHeader?.(service);
      if (report !== undefined) headers[REPORT_HEADER] = report;
    } catch {
      // The reporter logs its own failures; nothing of it may fail the GET.
    }
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
    const onCallerAbort = (): void => controller.abort(caller?.reason);
    closing.addEventListener('abort', onClose, { once: true });
    caller?.addEventListener('abort', onCallerAbort, { once: true });
    try {
      const response = await this.#dispatcher.request({ origin: url.origin, path: url.path, method: 'GET', headers, signal });
      const outcome = await this.#interpret(response, hubUrl, service, signal);
      if (closing.aborted) return closedFailure(service);
      if (caller?.aborted) return abortedFailure(service, caller);
      return outcome;
    } catch (cause) {
      // Only the request and the body read throw here: everything else is classified in #interpret.
      if (closing.aborted) return closedFailure(service);
      if (caller?.aborted) return abortedFailure(service, caller);
      if (cause instanceof ResponseTooLargeError) {
        // The hub (or a proxy) answered, just too much: not a network error, and the same hub would say it again.
        return {
          error: new ConfigError('HUB_RESPONSE_INVALID', `hub ${url.origin} sent ${cause.message}`, { service, cause }),
          retryable: false,
        };
      }
      const reason = timedOut ? `no answer within ${this.#settings.requestTimeoutMs} ms` : describe(cause);
      return {
        error: new ConfigError('HUB_UNREACHABLE', `hub ${url.origin} unreachable: ${reason}`, { service, cause }),
        retryable: true,
      };
    } finally {
      clearTimeout(timer);
      closing.removeEventListener('abort', onClose);
      caller?.removeEventListener('abort', onCallerAbort);
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

  /**
   * Classifies an answer by its status first: the body only refines it. A proxy in front of the hub answers
   * 401/403/404/503 with HTML or nothing at all; that must still be UNAUTHORIZED (the 401 back-off),
   * CONFIG_NOT_FOUND, or a retryable 5xx that keeps its `Retry-After` — never a parse error.
   */
  async #interpret(
    response: Dispatcher.ResponseData,
    hubUrl: string,
    service: string,
    signal: AbortSignal,
  ): Promise<FetchResult | AttemptFailure> {
    const { statusCode: status, headers } = response;
    try {
      this.#settings.onAnswer?.(hubUrl, service, status, headers);
    } catch {
      // As the report header: fleet reporting never fails the GET.
    }
    if (status === 304) {
      await response.body.dump();
      return { kind: 'not-modified', hubUrl };
    }
    if (status !== 200) return failureForStatus(status, headers, await this.#readDetail(response, signal), service);
    const text = await readLimited(response.body, this.#settings.maxResponseBytes, signal);
    if (jsonTextExceedsDepth(text, MAX_CONFIG_DEPTH + 1)) return deepDocumentFailure(service);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (cause) {
      // A 200 whose body is not JSON (a captive proxy page, a cut body): another attempt or hub may do better.
      return {
        error: new ConfigError('HUB_RESPONSE_INVALID', `hub answered ${status} with a body that is not JSON`, { service, cause }),
        retryable: true,
      };
    }
    const stringConfig = typeof (body as { config?: unknown } | null)?.config === 'string';
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
    // An older hub's string-encoded config escaped the text scan above.
    if (stringConfig && valueExceedsDepth(parsed.data.config, MAX_CONFIG_DEPTH)) return deepDocumentFailure(service);
    const etag = headers.etag;
    return { kind: 'document', document: parsed.data, etag: typeof etag === 'string' ? etag : undefined, hubUrl };
  }

  /** The `detail` of an error answer, if its body is a JSON error object; anything else (HTML, empty, cut, oversize) is none. */
  async #readDetail(response: Dispatcher.ResponseData, signal: AbortSignal): Promise<unknown> {
    let text: string;
    try {
      text = await readLimited(response.body, this.#settings.maxResponseBytes, signal);
    } catch {
      return undefined;
    }
    try {
      return errorBodySchema.safeParse(JSON.parse(text)).data?.detail;
    } catch {
      return undefined;
    }
  }

  /**
   * Waits between rounds. The timer is `unref()`'d (a `Retry-After` wait never holds the process) and ends at
   * once on close() or the caller's abort; the next attempt then reports CLIENT_CLOSED or the abort.
   */
  #sleep(ms: number, caller: AbortSignal | undefined): Promise<void> {
    const closing = this.#closing.signal;
    if (ms <= 0 || closing.aborted || caller?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        closing.removeEventListener('abort', done);
        caller?.removeEventListener('abort', done);
        resolve();
      }
      closing.addEventListener('abort', done, { once: true });
      caller?.addEventListener('abort', done, { once: true });
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

function abortedFailure(service: string, signal: AbortSignal): AttemptFailure {
  return {
    error: new ConfigError('HUB_UNREACHABLE', `fetch of ${service} abandoned: ${describe(signal.reason)}`, {
      service,
      cause: signal.reason,
    }),
    retryable: false,
  };
}

function deepDocumentFailure(service: string): AttemptFailure {
  return {
    error: new ConfigError('HUB_RESPONSE_INVALID', `hub document for ${service} is nested deeper than ${MAX_CONFIG_DEPTH} levels`, {
      service,
    }),
    retryable: false,
  };
}

/** An error answer, classified by its status alone (pure); `detail` only enriches the message. */
function failureForStatus(
  status: number,
  headers: Dispatcher.ResponseData['headers'],
  detail: unknown,
  service: string,
): AttemptFailure {
  if (status === 404) return { error: new HubHttpError('CONFIG_NOT_FOUND', status, detail, { service }), retryable: false };
  if (status === 401 || status === 403) return { error: new HubHttpError('UNAUTHORIZED', status, detail, { service }), retryable: false };
  return {
    error: new HubHttpError('HUB_ERROR', status, detail, { service }),
    retryable: isRetryableStatus(status),
    retryAfterMs: parseRetryAfter(headers['retry-after']),
  };
}

/** The body went past `maxResponseBytes`: the answer is invalid, not the network. */
class ResponseTooLargeError extends Error {
  constructor(limit: number) {
    super(`a response larger than ${limit} bytes`);
    this.name = 'ResponseTooLargeError';
  }
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
      if (size > limit) fail(new ResponseTooLargeError(limit));
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
