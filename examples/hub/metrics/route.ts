/**
 * `GET /metrics` (README "Metrics"): Prometheus text. Open by default, as scrape targets on a private
 * network usually are; with `metricsApiKey` (`HUB_METRICS_KEY`) it needs `Authorization: Bearer <key>` or
 * `X-API-Key: <key>` (that key only: the API keys do not open it), compared like the API keys (SHA-256 +
 * `timingSafeEqual`) with the same failed-attempt limits (429).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Authenticator } from '../auth.js';
import { HubError } from '../errors.js';
import type { HubMetrics } from './hub-metrics.js';

export const METRICS_PATH = '/metrics';

export interface MetricsRouteOptions {
  metrics: HubMetrics;
  /** Unset: no key needed. */
  apiKey?: string | undefined;
}

const BEARER = /^Bearer[ \t]+(\S+)\s*$/i;

/** The key a scraper presents: `Authorization: Bearer <key>` (Prometheus `authorization`/`bearer_token`), else `X-API-Key`. */
function presentedKey(request: FastifyRequest): string | string[] | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) return BEARER.exec(authorization)?.[1] ?? '';
  return request.headers['x-api-key'];
}

export const metricsRoutes: FastifyPluginAsync<MetricsRouteOptions> = async (app, { metrics, apiKey }) => {
  const auth = apiKey === undefined ? undefined : new Authenticator({ keys: [{ name: 'metrics', key: apiKey, scopes: [] }] });

  app.get(METRICS_PATH, async (request, reply) => {
    if (auth !== undefined) {
      try {
        auth.authenticate(presentedKey(request), request.ip);
      } catch (error) {
        if (error instanceof HubError && error.status === 401) {
          throw new HubError(401, 'missing or invalid metrics key', { headers: { 'www-authenticate': 'Bearer realm="hub metrics"' } });
        }
        throw error;
      }
    }
    const text = await metrics.scrape();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
};
