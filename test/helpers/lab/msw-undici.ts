import { Readable } from 'node:stream';
import { getResponse, type RequestHandler } from 'msw';
import { Agent, type Dispatcher } from 'undici';

/**
 * msw ↔ undici bridge (DESIGN §7). msw cannot see undici's requests (undici writes to sockets itself), so an
 * undici interceptor turns each dispatch into a Fetch `Request`, answers it with msw's `getResponse()` and
 * replays the `Response` through undici's new-style handler API (onRequestStart / onResponseStart /
 * onResponseData / onResponseEnd / onResponseError, with a DispatchController supporting abort/pause/resume).
 */

export interface MswAgentOptions {
  /** 'error' (default): an unhandled request fails with an error naming method + URL. 'bypass': real network. */
  onUnhandled?: 'error' | 'bypass';
  /** Error used for `HttpResponse.error()` (default: a TypeError with code 'MSW_NETWORK_ERROR'). */
  networkError?: (request: Request) => Error;
  /** Options for the underlying undici Agent (only used by 'bypass'). */
  agentOptions?: Agent.Options;
}

export interface MswAgent extends Dispatcher {
  /** Prepend handlers (they win over the initial ones), like msw's `server.use()`. */
  use(...handlers: RequestHandler[]): void;
  /** Drop runtime handlers; with arguments, replace the initial handlers too (like msw's `resetHandlers`). */
  resetHandlers(...next: RequestHandler[]): void;
  /** Every request seen (clones, bodies readable), in order. */
  readonly requests: Request[];
  /** Current handler list (runtime handlers first). */
  readonly handlers: readonly RequestHandler[];
  clearRequests(): void;
}

export class MswUnhandledRequestError extends Error {
  readonly code = 'MSW_UNHANDLED';
  constructor(
    readonly method: string,
    readonly url: string,
  ) {
    super(`msw-undici: unhandled request ${method} ${url} (no msw handler matched)`);
    this.name = 'MswUnhandledRequestError';
  }
}

type HeaderInput = Dispatcher.DispatchOptions['headers'];

function toHeaders(input: HeaderInput): Headers {
  const h = new Headers();
  if (input == null) return h;
  const add = (k: unknown, v: unknown): void => {
    if (v === undefined || v === null) return;
    if (Array.isArray(v)) for (const x of v) h.append(String(k), String(x));
    else h.append(String(k), String(v));
  };
  if (Array.isArray(input)) {
    if (input.length > 0 && Array.isArray(input[0])) {
      for (const pair of input as unknown as Array<[string, string]>) add(pair[0], pair[1]);
    } else {
      // flat form: [k1, v1, k2, v2, …] (strings or Buffers)
      for (let i = 0; i + 1 < input.length; i += 2) add(input[i], input[i + 1]);
    }
    return h;
  }
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of input as Iterable<[string, string | string[]]>) add(k, v);
    return h;
  }
  for (const [k, v] of Object.entries(input as Record<string, unknown>)) add(k, v);
  return h;
}

async function toBody(body: unknown): Promise<BodyInit | undefined> {
  if (body == null) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer) return body as BodyInit;
  if (body instanceof Blob || body instanceof FormData || body instanceof URLSearchParams) return body;
  if (body instanceof ReadableStream || body instanceof Readable || typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const chunks: Buffer[] = [];
    for await (const c of body as AsyncIterable<Uint8Array | string>) chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c));
    return Buffer.concat(chunks);
  }
  throw new TypeError(`msw-undici: unsupported request body type ${Object.prototype.toString.call(body)}`);
}

function headersObject(res: Response): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  res.headers.forEach((value, key) => {
    if (key === 'set-cookie') return;
    out[key] = value;
  });
  const cookies = res.headers.getSetCookie();
  if (cookies.length > 0) out['set-cookie'] = cookies;
  return out;
}

class BridgeController implements Dispatcher.DispatchController {
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;
  #resumeWaiters: Array<() => void> = [];
  #abortWaiters: Array<(reason: Error) => void> = [];
  rawHeaders: Buffer[] | null = null;
  rawTrailers: Buffer[] | null = null;

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason?: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason ?? new Error('aborted');
    for (const w of this.#abortWaiters.splice(0)) w(this.#reason);
    for (const w of this.#resumeWaiters.splice(0)) w();
  }
  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const w of this.#resumeWaiters.splice(0)) w();
  }
  /** Resolves when not paused (or aborted). */
  whenFlowing(): Promise<void> {
    if (!this.#paused || this.#aborted) return Promise.resolve();
    return new Promise((r) => this.#resumeWaiters.push(r));
  }
  /** Rejects-as-value when aborted. */
  readonly abortedPromise: Promise<Error> = new Promise((r) => this.#abortWaiters.push(r));
}

const ABORTED = Symbol('aborted');

export function createMswAgent(initialHandlers: RequestHandler[] = [], opts: MswAgentOptions = {}): MswAgent {
  const onUnhandled = opts.onUnhandled ?? 'error';
  let baseHandlers = [...initialHandlers];
  let runtimeHandlers: RequestHandler[] = [];
  const requests: Request[] = [];
  const networkError =
    opts.networkError ??
    ((req: Request) =>
      Object.assign(new TypeError(`msw-undici: network error (HttpResponse.error()) for ${req.method} ${req.url}`), {
        code: 'MSW_NETWORK_ERROR',
      }));

  const interceptor: Dispatcher.DispatcherComposeInterceptor =
    (dispatch) =>
    (dopts, handler): boolean => {
      const controller = new BridgeController();
      const method = (dopts.method ?? 'GET').toUpperCase();
      const url = new URL(dopts.path, dopts.origin ?? undefined).toString();
      let finished = false;
      const fail = (err: Error): void => {
        if (finished) return;
        finished = true;
        try {
          handler.onResponseError?.(controller, err);
        } catch {
          // the handler's own error path threw; nothing more we can do
        }
      };

      const run = async (): Promise<void> => {
        // Like a real connection: start asynchronously, hand the controller over first so an AbortSignal can
        // reach us even while msw is still resolving (e.g. `await delay('infinite')`).
        await Promise.resolve();
        handler.onRequestStart?.(controller, {});
        if (controller.aborted) return fail(controller.reason!);

        const body = method === 'GET' || method === 'HEAD' ? undefined : await toBody(dopts.body);
        const request = new Request(url, { method, headers: toHeaders(dopts.headers), body, duplex: 'half' } as RequestInit);
        requests.push(request.clone());

        const handlers = [...runtimeHandlers, ...baseHandlers];
        const response = await Promise.race([getResponse(handlers, request), controller.abortedPromise.then((): typeof ABORTED => ABORTED)]);
        if (response === ABORTED || controller.aborted) return fail(controller.reason!);

        if (!response) {
          if (onUnhandled === 'bypass') {
            finished = true;
            dispatch(dopts, handler);
            return;
          }
          return fail(new MswUnhandledRequestError(method, url));
        }
        if (response.type === 'error') return fail(networkError(request));

        handler.onResponseStart?.(controller, response.status, headersObject(response), response.statusText);
        if (controller.aborted) return fail(controller.reason!);

        if (response.body && method !== 'HEAD') {
          const reader = response.body.getReader();
          try {
            for (;;) {
              await controller.whenFlowing();
              if (controller.aborted) {
                void reader.cancel().catch(() => undefined);
                return fail(controller.reason!);
              }
              const next = await Promise.race([reader.read(), controller.abortedPromise.then((): typeof ABORTED => ABORTED)]);
              if (next === ABORTED) {
                void reader.cancel().catch(() => undefined);
                return fail(controller.reason!);
              }
              if (next.done) break;
              if (next.value.byteLength > 0) handler.onResponseData?.(controller, Buffer.from(next.value));
            }
          } finally {
            try {
              reader.releaseLock();
            } catch {
              // a read may still be pending after an abort
            }
          }
        }
        if (controller.aborted) return fail(controller.reason!);
        finished = true;
        handler.onResponseEnd?.(controller, {});
      };

      run().catch((err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
      return true;
    };

  const agent = new Agent(opts.agentOptions);
  const composed = agent.compose(interceptor) as unknown as MswAgent;
  // compose() returns a Proxy whose get() forwards everything but `dispatch` to the Agent: hang the extras there.
  Object.defineProperties(agent, {
    use: {
      value: (...h: RequestHandler[]) => {
        runtimeHandlers = [...h, ...runtimeHandlers];
      },
    },
    resetHandlers: {
      value: (...next: RequestHandler[]) => {
        runtimeHandlers = [];
        if (next.length > 0) baseHandlers = [...next];
      },
    },
    requests: { get: () => requests },
    handlers: { get: () => [...runtimeHandlers, ...baseHandlers] },
    clearRequests: {
      value: () => {
        requests.length = 0;
      },
    },
  });
  return composed;
}
