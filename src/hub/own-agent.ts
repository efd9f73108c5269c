/**
 * The client's own undici `Agent`, loaded at its first request and at the smallest cost.
 *
 * `import('undici')` evaluates all of undici — fetch, WebSocket, EventSource, the cache, the mock agents,
 * every interceptor — about 120 ms of CPU on the bench machine, before the first value of a service that
 * restarts during a hub outage (bench figure 7). The transport needs the `Agent` and `request` only: those
 * two files of the installed undici are loaded alone (a third of that cost), and nothing at all until a
 * request is made (a client that never fetches, or that was handed a dispatcher, never loads it). They are
 * internal paths of undici: an undici whose layout differs falls back to its public entry point, and a
 * bundler sees both (literal specifiers).
 */
import type { Agent, Dispatcher } from 'undici';

/** What the transport asks of a dispatcher: an undici `Dispatcher` (one it was handed) or an `OwnAgent`. */
export interface RequestDispatcher {
  request(options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
  close(): Promise<void>;
}

/** An undici `Agent` with `options`, made at the first `request`; `close()` before any request loads nothing. */
export class OwnAgent implements RequestDispatcher {
  readonly #options: Agent.Options;
  #agent: RequestDispatcher | undefined;
  #loading: Promise<RequestDispatcher> | undefined;
  #closed = false;

  constructor(options: Agent.Options) {
    this.#options = options;
  }

  request(options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    // Once loaded, a direct call: no promise hop on the fetch path (bench figure 3).
    if (this.#agent) return this.#agent.request(options);
    if (this.#closed) return Promise.reject(new Error('the agent is closed'));
    return this.#load().then((agent) => agent.request(options));
  }

  close(): Promise<void> {
    this.#closed = true;
    // An agent still loading is closed once made (after the requests already waiting on it were dispatched).
    return this.#loading ? this.#loading.then((agent) => agent.close(), () => undefined) : Promise.resolve();
  }

  #load(): Promise<RequestDispatcher> {
    this.#loading ??= loadAgent(this.#options).then((agent) => {
      this.#agent = agent;
      return agent;
    });
    return this.#loading;
  }
}

/** undici's `Agent` and `request` from their own files; the public entry point if they are not what they were. */
export async function loadAgent(options: Agent.Options): Promise<RequestDispatcher> {
  const parts = await Promise.all([import('undici/lib/dispatcher/agent.js'), import('undici/lib/api/api-request.js')]).catch(() => undefined);
  const AgentClass = parts?.[0].default;
  const request = parts?.[1].default;
  if (typeof AgentClass === 'function' && typeof request === 'function') {
    const agent = new (AgentClass as typeof Agent)(options);
    // `agent.request` is `Object.assign`ed onto undici's Dispatcher prototype by its entry point, which is not
    // loaded here: the same function, called on the agent.
    const requestOn = request as (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
    return { request: (opts) => requestOn.call(agent, opts), close: () => agent.close() };
  }
  const undici = await import('undici');
  return new undici.Agent(options);
}
