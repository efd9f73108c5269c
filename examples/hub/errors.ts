/** HTTP errors of the reference hub: every one is rendered as `{ "detail": ... }` (+ extra fields). */
export class HubError extends Error {
  readonly status: number;
  readonly detail: unknown;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    detail: unknown,
    options: { extra?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(typeof detail === 'string' ? detail : `hub error ${status}`);
    this.status = status;
    this.detail = detail;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }

  override get name(): string {
    return 'HubError';
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Whether an error from the store means "the database is unavailable right now" (→ 503 + Retry-After):
 * network errors, pool/statement timeouts, SQLSTATE classes 08 (connection), 53 (resources),
 * 57 (operator intervention, incl. statement timeout), 40 (serialization/deadlock), 55P03 (lock timeout).
 */
export function isDbUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return /^(08|53|57|40)/.test(code) || code === '55P03';
  }
  const message = (error as { message?: unknown }).message;
  return (
    typeof message === 'string' &&
    /timeout|timed out|terminated|connection|closed|not queryable|ECONNREFUSED/i.test(message) &&
    (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code))
  );
}
