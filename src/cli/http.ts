/**
 * The CLI's HTTP client for the hub API: an undici `Agent` of its own (never the global dispatcher),
 * connect and per-request deadlines far below undici's 300 s defaults, `X-API-Key` on every request, a
 * bounded body. It classifies nothing but "no answer" (→ HubUnreachableError): statuses are the caller's.
 */
import { Agent, type Dispatcher } from 'undici';
import { HubUnreachableError } from './errors.js';

/** Upper bound of one hub answer (the hub's own body limit is 1 MiB). */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;

export interface HubHttpOptions {
  hubUrl: string;
  apiKey: string | undefined;
  /** Deadline of one request: connect, headers and body. */
  timeoutMs: number;
  /** A dispatcher to use instead of an own Agent (tests); not closed by `close()`. */
  dispatcher?: Dispatcher | undefined;
}

export interface HubRequest {
  query?: Record<string, string | number | boolean | undefined> | undefined;
  /** Serialized as JSON. */
  body?: unknown;
  contentType?: string | undefined;
  headers?: Record<string, string | undefined> | undefined;
  signal?: AbortSignal | undefined;
}

export interface HubAnswer {
  status: number;
  headers: Record<string, string | undefined>;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  body: unknown;
}

export class HubHttp {
  readonly origin: string;
  readonly #base: URL;
  readonly #options: HubHttpOptions;
  readonly #dispatcher: Dispatcher;
  readonly #owns: boolean;

  constructor(options: HubHttpOptions) {
    let base: URL;
    try {
      base = new URL(options.hubUrl.endsWith('/') ? options.hubUrl : `${options.hubUrl}/`);
    } catch {
      throw new TypeError(`hub URL '${options.hubUrl}' is not a URL`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`hub URL '${options.hubUrl}' is not http(s)`);
    this.#base = base;
    this.origin = base.origin;
    this.#options = options;
    this.#owns = options.dispatcher === undefined;
    this.#dispatcher =
      options.dispatcher ??
      new Agent({
        connect: { timeout: Math.min(DEFAULT_CONNECT_TIMEOUT_MS, options.timeoutMs) },
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        keepAliveTimeout: 10_000,
        connections: 4,
      });
  }

  /** `path` is relative to `<hub>/api/v1/config/`; its segments must already be encoded. */
  async request(method: string, path: string, request: HubRequest = {}): Promise<HubAnswer> {
    const url = new URL(`api/v1/config/${path}`, this.#base);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#options.apiKey !== undefined) headers['x-api-key'] = this.#options.apiKey;
    for (const [key, value] of Object.entries(request.headers ?? {})) if (value !== undefined) headers[key] = value;
    let body: string | undefined;
    if (request.body !== undefined) {
      body = JSON.stringify(request.body);
      headers['content-type'] = request.contentType ?? 'application/json';
    }
    const deadline = AbortSignal.timeout(this.#options.timeoutMs);
    const signal = request.signal === undefined ? deadline : AbortSignal.any([deadline, request.signal]);
    try {
      const response = await this.#dispatcher.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method, headers, body, signal });
      const text = await readLimited(response.body);
      return { status: response.statusCode, headers: flatHeaders(response.headers), body: parseJson(text) };
    } catch (cause) {
      if (request.signal?.aborted === true) throw cause;
      const reason = deadline.aborted ? `no answer within ${this.#options.timeoutMs} ms` : describe(cause);
      throw new HubUnreachableError(`hub ${this.origin} unreachable: ${reason}`, { cause });
    }
  }

  async close(): Promise<void> {
    if (this.#owns) await this.#dispatcher.close().catch(() => undefined);
  }
}

async function readLimited(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > MAX_RESPONSE_BYTES) {
      body.destroy();
      throw new Error(`an answer larger than ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function flatHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(headers)) out[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

function describe(cause: unknown): string {
  if (typeof cause !== 'object' || cause === null) return String(cause);
  const { code, message } = cause as { code?: unknown; message?: unknown };
  const nested = (cause as { cause?: { code?: unknown } }).cause?.code;
  const label = typeof code === 'string' ? code : typeof nested === 'string' ? nested : undefined;
  const text = typeof message === 'string' && message.length > 0 ? message : 'request failed';
  return label === undefined || text.includes(label) ? text : `${label} ${text}`;
}
