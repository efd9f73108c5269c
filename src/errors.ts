/**
 * Errors the client raises. One base class with a stable `code`; callers branch on `code` (or on
 * `isConfigError`), never on messages. The brand uses `Symbol.for` so the check holds across the ESM
 * and CJS copies of this package loaded in one process.
 */

const BRAND = Symbol.for('@central-hub/config.ConfigError');

export type ConfigErrorCode =
  | 'INVALID_OPTIONS'
  | 'INVALID_SERVICE_NAME'
  | 'HUB_UNREACHABLE'
  | 'HUB_ERROR'
  | 'HUB_RESPONSE_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'CONFIG_INVALID'
  | 'CONFIG_UNAVAILABLE'
  | 'UNAUTHORIZED'
  | 'CLIENT_CLOSED'
  | 'NOTICE_INVALID'
  | 'NOTICE_UNVERIFIED'
  | 'NATS_PERMISSION_DENIED'
  | 'NATS_SUBSCRIPTION_FAILED'
  | 'LISTENER_FAILED'
  | 'SNAPSHOT_INVALID'
  | 'SNAPSHOT_WRITE_FAILED'
  | 'HUB_REVISION_REGRESSED'
  | 'SERVICE_NOT_DECLARED';

export interface ConfigErrorOptions {
  /** The service the error is about, when there is one. */
  service?: string | undefined;
  /** The underlying error. */
  cause?: unknown;
}

export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly service: string | undefined;

  constructor(code: ConfigErrorCode, message: string, options: ConfigErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.service = options.service;
    Object.defineProperty(this, BRAND, { value: true });
  }

  override get name(): string {
    return 'ConfigError';
  }
}

/** One issue of a schema validation, path in dotted form. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** The merged config (or a hub document) failed the service's schema. */
export class ConfigInvalidError extends ConfigError {
  readonly issues: readonly ConfigIssue[];

  constructor(message: string, issues: readonly ConfigIssue[], options: ConfigErrorOptions = {}) {
    super('CONFIG_INVALID', message, options);
    this.issues = issues;
  }

  override get name(): string {
    return 'ConfigInvalidError';
  }
}

/** The hub answered with an HTTP status the client does not turn into a value. */
export class HubHttpError extends ConfigError {
  readonly status: number;
  /** The hub's `detail`, when the body carried one. */
  readonly detail: unknown;

  constructor(
    code: 'HUB_ERROR' | 'CONFIG_NOT_FOUND' | 'UNAUTHORIZED',
    status: number,
    detail: unknown,
    options: ConfigErrorOptions = {},
  ) {
    super(code, `hub answered ${status}${detail === undefined ? '' : `: ${describeDetail(detail)}`}`, options);
    this.status = status;
    this.detail = detail;
  }

  override get name(): string {
    return 'HubHttpError';
  }
}

function describeDetail(detail: unknown): string {
  const text = typeof detail === 'string' ? detail : JSON.stringify(detail);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

export function isConfigError(value: unknown): value is ConfigError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** The message of an error, or the thrown value as text (for logs and wrapping messages). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
