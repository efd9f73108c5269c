/**
 * `hub_http_requests_total{route,method,status}` and `hub_http_request_duration_seconds{route,method}`,
 * from one `onResponse` hook. `route` is the Fastify route pattern (`/api/v1/config/:service`), never the
 * URL, and `unmatched` for a request no route matched (404, a malformed URL): cardinality is bounded by
 * the routes, Node's fixed list of methods and the status codes.
 *
 * The hook is on every request, the fleet's GET path included (bench figure 4): the label objects are
 * built once per (route, method, status) and kept, so a request costs a few Map lookups plus
 * prom-client's own label hashing, and no allocation of ours.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';

export const UNMATCHED_ROUTE = 'unmatched';

/** Seconds; finer than prom-client's default at the low end, where a cached GET lives. */
export const HTTP_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type RequestLabels = { route: string; method: string; status: string };
type DurationLabels = { route: string; method: string };

interface Cell {
  duration: DurationLabels;
  byStatus: Map<number, RequestLabels>;
}

export class HttpMetrics {
  readonly #requests: Counter<'route' | 'method' | 'status'>;
  readonly #duration: Histogram<'route' | 'method'>;
  /** route → method → labels. */
  readonly #cells = new Map<string, Map<string, Cell>>();

  constructor(registry: Registry) {
    this.#requests = new Counter({
      name: 'hub_http_requests_total',
      help: 'HTTP requests answered, by route pattern (unmatched: no route), method and status.',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    });
    this.#duration = new Histogram({
      name: 'hub_http_request_duration_seconds',
      help: 'Time from receiving a request to having sent the answer, by route pattern and method.',
      labelNames: ['route', 'method'],
      buckets: HTTP_DURATION_BUCKETS,
      registers: [registry],
    });
  }

  /** The `onResponse` hook (a callback hook: no promise per request). */
  readonly onResponse = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    // `routeOptions.url` is undefined for the not-found handler (and for errors raised before routing).
    this.observe(request.routeOptions.url ?? UNMATCHED_ROUTE, request.method, reply.statusCode, reply.elapsedTime);
    done();
  };

  observe(route: string, method: string, status: number, elapsedMs: number): void {
    let byMethod = this.#cells.get(route);
    if (byMethod === undefined) {
      byMethod = new Map();
      this.#cells.set(route, byMethod);
    }
    let cell = byMethod.get(method);
    if (cell === undefined) {
      cell = { duration: { route, method }, byStatus: new Map() };
      byMethod.set(method, cell);
    }
    let labels = cell.byStatus.get(status);
    if (labels === undefined) {
      labels = { route, method, status: String(status) };
      cell.byStatus.set(status, labels);
    }
    this.#requests.inc(labels);
    this.#duration.observe(cell.duration, elapsedMs / 1000);
  }
}
