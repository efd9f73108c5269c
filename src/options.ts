/**
 * Options of `ConfigClient`, with their defaults, and `resolveOptions()`, which checks them and returns
 * a new frozen object (the caller's options are never mutated).
 */
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { ConnectionOptions, NatsConnection } from 'nats';
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import { ConfigError } from './errors.js';
import { INSTANCE_ID_PATTERN } from './fleet/wire.js';
import { processInstanceId } from './fleet/instance-id.js';
import { DEFAULT_SUBJECT_PREFIX, isValidServiceName } from './hub/wire.js';
import type { EnvMapping, EnvSource } from './layers/env.js';
import { type Logger, safeLogger } from './logger.js';
import { METER_METHODS, type MetricsMeter, type MetricsOptions } from './metrics/meter.js';
import { noticeVerifier } from './watch/notice.js';

export const DEFAULT_CACHE_TTL_MS = 300_000;
export const DEFAULT_STARTUP_TIMEOUT_MS = 3_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
export const DEFAULT_RETRIES = 2;
export const DEFAULT_RETRY_BASE_DELAY_MS = 100;
export const DEFAULT_RETRY_MAX_DELAY_MS = 2_000;
export const DEFAULT_MAX_RETRY_AFTER_MS = 10_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_RECOVERY_MIN_DELAY_MS = 500;
export const DEFAULT_RECOVERY_MAX_DELAY_MS = 30_000;
export const DEFAULT_UNAUTHORIZED_DELAY_MS = 60_000;
export const DEFAULT_POLL_INTERVAL_MS = 60_000;
export const DEFAULT_SNAPSHOT_DIR = '.central-hub-config';

/** Deep partial of a config's input type, for `defaults`. */
export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** How one service is resolved. */
export interface ServiceDefinition<Schema extends z.ZodType = z.ZodType> {
  /** Validates (and types) the merged config. Without one, `get` returns the merged JSON object. */
  schema?: Schema;
  /** Safe fallbacks written in code; the lowest layer. */
  defaults?: DeepPartial<z.input<Schema>>;
  /**
   * Critical paths: dotted config path → environment variable. These values come from the environment
   * only; a hub value at such a path is dropped and reported. Env strings are coerced as the schema asks.
   */
  env?: EnvMapping;
}

export type ServicesMap = Record<string, ServiceDefinition>;

export interface TransportOptions {
  /** TCP connect timeout. @default 2000 */
  connectTimeoutMs?: number;
  /** Deadline of one HTTP attempt, headers and body included. @default 5000 */
  requestTimeoutMs?: number;
  /** Extra rounds after the first on network errors, 408, 429 and 5xx (each round tries every hub). @default 2 */
  retries?: number;
  /** Base of the full-jitter exponential backoff between rounds. @default 100 */
  retryBaseDelayMs?: number;
  /** Cap of that backoff. @default 2000 */
  retryMaxDelayMs?: number;
  /** A `Retry-After` longer than this ends the retries (the background recovery takes over). @default 10000 */
  maxRetryAfterMs?: number;
  /** How long an idle keep-alive socket stays open. @default 30000 */
  keepAliveTimeoutMs?: number;
  /** Responses larger than this are refused. @default 4 MiB */
  maxResponseBytes?: number;
  /** An undici dispatcher to use instead of the client's own `Agent` (it is not closed by `close()`). */
  dispatcher?: Dispatcher;
}

export interface RecoveryOptions {
  /** First delay of the background retry after the hub failed. @default 500 */
  minDelayMs?: number;
  /** Cap of the background retry delay. @default 30000 */
  maxDelayMs?: number;
  /** Delay between retries while the hub answers 401/403: back off hard, but never give up. @default 60000 */
  unauthorizedDelayMs?: number;
}

export interface NatsOptions {
  /** Servers to connect to; the client owns (and closes) that connection. */
  servers?: string | string[];
  /** A connection the service already has; the client subscribes on it and never closes it. */
  connection?: NatsConnection;
  /** Subject prefix; the client subscribes to `<prefix>.<service>` for each configured service. @default 'config.update' */
  subjectPrefix?: string;
  /**
   * Apply a notice's payload directly (still validated) instead of refetching from the hub. Off by default:
   * the hub is authoritative and authenticated, a notice is only a hint.
   * @default false
   */
  applyPayload?: boolean;
  /** Extra nats connection options (the client forces unlimited reconnects). */
  connectOptions?: Partial<ConnectionOptions>;
  /**
   * The hub's Ed25519 public keys for signed notices, by key id (the notice's `kid`): a PEM
   * (`-----BEGIN PUBLIC KEY-----`), base64 of the SPKI DER, or a `KeyObject`. List two during a key
   * rotation. With keys, a notice whose signature verifies is marked verified (its payload may be applied
   * without a refetch); one that is unsigned, signed with an unknown kid or a bad signature is reported
   * (`NOTICE_UNVERIFIED`) and stays a hint. Without keys nothing is checked and every notice is a hint.
   * Invalid keys are `INVALID_OPTIONS`.
   */
  verifyKeys?: Readonly<Record<string, string | KeyObject>>;
}

export interface ConfigClientOptions<S extends ServicesMap = ServicesMap> {
  /** Central Hub base URL, or several for failover in order. */
  hubUrl: string | readonly string[];
  /** Sent as `X-API-Key`. */
  apiKey?: string | undefined;
  /**
   * The services this client serves. Once any is declared, only declared names are accepted
   * (`SERVICE_NOT_DECLARED`); with none declared, any name is (untyped, no schema, no hot reload: `nats`
   * then refuses to start with `INVALID_OPTIONS`).
   */
  services?: S;
  /** How long a fetched config is fresh; after that it is served stale while one refresh runs. @default 300000 */
  cacheTtlMs?: number;
  /** How long the first `get` of a service waits for the hub before falling back. @default 3000 */
  startupTimeoutMs?: number;
  /**
   * Strict startup: the first `get` of a service rejects (`CONFIG_UNAVAILABLE`, the hub's error as `cause`)
   * when the hub gives no config within the retry and startup budgets, instead of falling back to the
   * snapshot or defaults. A 404 still resolves to defaults + env (the hub answered). Background retries go on.
   * @default false
   */
  strictStartup?: boolean;
  /** Directory for last-known-good snapshots, or `false` for none. @default '<cwd>/.central-hub-config' */
  snapshotDir?: string | false;
  /** HTTP transport settings. */
  transport?: TransportOptions;
  /** Background retry after a failed refresh. */
  recovery?: RecoveryOptions;
  /** Hot reload through NATS notices; omit for polling only. */
  nats?: NatsOptions | undefined;
  /** Safety-net poll interval (±20 % jitter), or `false` to disable. Runs even with NATS. @default 60000 */
  pollIntervalMs?: number | false;
  /** Where env-critical values are read from. @default process.env */
  env?: EnvSource;
  /** A pino-compatible logger. @default silent */
  logger?: Partial<Logger>;
  /**
   * This instance's id in the fleet report (docs/fleet.md): `^[A-Za-z0-9._:-]{1,64}$`, e.g. a pod name.
   * @default one random id per process, shared by every client of the process
   */
  instanceId?: string;
  /**
   * Fleet reporting: each hub request carries an `x-config-report` header (instance id, host, pid, client
   * version, poll interval, and per service its revision, source, staleness, last error code and schema
   * hash — never a config value), the schemas are uploaded when the hub asks for them, and a report is
   * sent after a change or a rejected update. `false` sends none of it.
   * @default true
   */
  fleetReport?: boolean;
  /**
   * OpenTelemetry metrics (README "Metrics (OpenTelemetry)"): `central_hub.fetch.duration`, `central_hub.errors`,
   * `central_hub.changes.applied` / `.rejected`, and the gauges `central_hub.config.age` / `.revision`, per
   * service. `true` records through the global meter provider of `@opentelemetry/api` (an optional peer
   * dependency): nothing happens, at no cost, when the API is not installed, and the API's no-op meter is
   * used until an SDK is registered (register it before constructing the client). `{ meter }` records
   * through that meter instead. `false` creates no instrument.
   * @default true
   */
  metrics?: boolean | MetricsOptions;
}

export interface ResolvedOptions {
  readonly hubUrls: readonly string[];
  readonly apiKey: string | undefined;
  readonly services: Readonly<ServicesMap>;
  readonly cacheTtlMs: number;
  readonly startupTimeoutMs: number;
  readonly strictStartup: boolean;
  readonly snapshotDir: string | false;
  readonly transport: Readonly<Required<Omit<TransportOptions, 'dispatcher'>>> & { dispatcher: Dispatcher | undefined };
  readonly recovery: Readonly<Required<RecoveryOptions>>;
  readonly nats: Readonly<NatsOptions & { subjectPrefix: string; applyPayload: boolean }> | undefined;
  readonly pollIntervalMs: number | false;
  readonly env: EnvSource;
  readonly logger: Logger;
  readonly instanceId: string;
  readonly fleetReport: boolean;
  /** `false`, or the meter to use (`undefined`: the global one, if `@opentelemetry/api` is installed). */
  readonly metrics: false | { readonly meter: MetricsMeter | undefined };
}

function invalid(message: string): ConfigError {
  return new ConfigError('INVALID_OPTIONS', message);
}

/*
 * The keys each options object accepts. `satisfies Record<keyof …, true>` keeps these lists in step with the
 * interfaces above: adding an option to an interface without listing it here is a type error.
 */
const CLIENT_KEYS = {
  hubUrl: true,
  apiKey: true,
  services: true,
  cacheTtlMs: true,
  startupTimeoutMs: true,
  strictStartup: true,
  snapshotDir: true,
  transport: true,
  recovery: true,
  nats: true,
  pollIntervalMs: true,
  env: true,
  logger: true,
  instanceId: true,
  fleetReport: true,
  metrics: true,
} as const satisfies Record<keyof ConfigClientOptions, true>;
const TRANSPORT_KEYS = {
  connectTimeoutMs: true,
  requestTimeoutMs: true,
  retries: true,
  retryBaseDelayMs: true,
  retryMaxDelayMs: true,
  maxRetryAfterMs: true,
  keepAliveTimeoutMs: true,
  maxResponseBytes: true,
  dispatcher: true,
} as const satisfies Record<keyof TransportOptions, true>;
const RECOVERY_KEYS = { minDelayMs: true, maxDelayMs: true, unauthorizedDelayMs: true } as const satisfies Record<
  keyof RecoveryOptions,
  true
>;
// `connectOptions` is passed to nats as it is; nats checks its own options.
const NATS_KEYS = {
  servers: true,
  connection: true,
  subjectPrefix: true,
  applyPayload: true,
  connectOptions: true,
  verifyKeys: true,
} as const satisfies Record<keyof NatsOptions, true>;
const METRICS_KEYS = { meter: true } as const satisfies Record<keyof MetricsOptions, true>;
const SERVICE_KEYS = { schema: true, defaults: true, env: true } as const satisfies Record<keyof ServiceDefinition, true>;

/** Edit distance, for "did you mean"; option names are short, so the quadratic table is cheap. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const c = candidate.toLowerCase();
    // A case slip (`pollIntervalMS`) is the nearest miss; a short prefix (`snapshot` → `snapshotDir`) a near one.
    const prefix = c.startsWith(lower) || lower.startsWith(c);
    const d = c === lower ? 0 : Math.min(distance(lower, c), prefix ? Math.max(1, Math.ceil(Math.abs(c.length - lower.length) / 4)) : Infinity);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/**
 * Refuses keys an options object does not know (a typo or a removed option would otherwise be ignored and
 * the default silently used), naming the key and, when one is close, the option meant.
 */
function refuseUnknownKeys(prefix: string, value: object, known: Record<string, true>): void {
  for (const key of Object.keys(value)) {
    if (Object.hasOwn(known, key)) continue;
    const suggestion = closest(key, Object.keys(known));
    const hint = suggestion === undefined ? '' : ` (did you mean ${JSON.stringify(prefix + suggestion)}?)`;
    throw invalid(`unknown option ${JSON.stringify(prefix + key)}${hint}`);
  }
}

/** An options section must be an object when given. */
function expectObject(name: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw invalid(`${name} must be an object`);
  }
}

function positive(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw invalid(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number of milliseconds, got ${String(value)}`);
  }
  return value;
}

export function resolveOptions(options: ConfigClientOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  refuseUnknownKeys('', options, CLIENT_KEYS);
  expectObject('transport', options.transport);
  expectObject('recovery', options.recovery);
  expectObject('services', options.services);
  if (options.transport) refuseUnknownKeys('transport.', options.transport, TRANSPORT_KEYS);
  if (options.recovery) refuseUnknownKeys('recovery.', options.recovery, RECOVERY_KEYS);
  const hubUrls = (typeof options.hubUrl === 'string' ? [options.hubUrl] : [...(options.hubUrl ?? [])]).map((url) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalid(`hubUrl ${JSON.stringify(url)} is not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalid(`hubUrl ${url} must be http(s)`);
    return parsed.href;
  });
  if (hubUrls.length === 0) throw invalid('hubUrl is required');
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey === '')) {
    throw invalid('apiKey must be a non-empty string');
  }

  const services: ServicesMap = {};
  for (const [name, def] of Object.entries(options.services ?? {})) {
    if (!isValidServiceName(name)) throw invalid(`service name ${JSON.stringify(name)} must match ^[a-z0-9-]+$ (≤ 100 chars)`);
    if (typeof def !== 'object' || def === null) throw invalid(`service ${name}: definition must be an object`);
    refuseUnknownKeys(`services.${name}.`, def, SERVICE_KEYS);
    if (def.schema !== undefined && typeof (def.schema as { safeParse?: unknown }).safeParse !== 'function') {
      throw invalid(`service ${name}: schema must be a zod schema`);
    }
    for (const [path, variable] of Object.entries(def.env ?? {})) {
      if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(path)) throw invalid(`service ${name}: env path ${JSON.stringify(path)} is not a dotted path`);
      if (typeof variable !== 'string' || variable === '') throw invalid(`service ${name}: env ${path} must name a variable`);
    }
    services[name] = { ...def };
  }

  const t = options.transport ?? {};
  const r = options.recovery ?? {};
  const retries = t.retries ?? DEFAULT_RETRIES;
  if (!Number.isInteger(retries) || retries < 0 || retries > 10) throw invalid('transport.retries must be an integer in 0..10');

  let nats: ResolvedOptions['nats'];
  if (options.nats) {
    expectObject('nats', options.nats);
    const n = options.nats;
    refuseUnknownKeys('nats.', n, NATS_KEYS);
    if (!n.servers && !n.connection) throw invalid('nats needs servers or a connection');
    if (n.servers && n.connection) throw invalid('nats takes servers or a connection, not both');
    const subjectPrefix = n.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(subjectPrefix)) throw invalid('nats.subjectPrefix must be a plain subject (no wildcards)');
    if (n.verifyKeys !== undefined) noticeVerifier(n.verifyKeys); // throws INVALID_OPTIONS naming the key id
    nats = Object.freeze({ ...n, subjectPrefix, applyPayload: n.applyPayload ?? false });
  }

  if (options.instanceId !== undefined && (typeof options.instanceId !== 'string' || !INSTANCE_ID_PATTERN.test(options.instanceId))) {
    throw invalid(`instanceId must match ${INSTANCE_ID_PATTERN}`);
  }
  if (options.fleetReport !== undefined && typeof options.fleetReport !== 'boolean') throw invalid('fleetReport must be a boolean');

  const metrics = resolveMetrics(options.metrics);

  const poll = options.pollIntervalMs;
  return Object.freeze({
    hubUrls: Object.freeze(hubUrls),
    apiKey: options.apiKey,
    services: Object.freeze(services),
    cacheTtlMs: positive('cacheTtlMs', options.cacheTtlMs, DEFAULT_CACHE_TTL_MS),
    startupTimeoutMs: positive('startupTimeoutMs', options.startupTimeoutMs, DEFAULT_STARTUP_TIMEOUT_MS, true),
    strictStartup: options.strictStartup ?? false,
    snapshotDir:
      options.snapshotDir === false ? false : (options.snapshotDir ?? join(process.cwd(), DEFAULT_SNAPSHOT_DIR)),
    transport: Object.freeze({
      connectTimeoutMs: positive('transport.connectTimeoutMs', t.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
      requestTimeoutMs: positive('transport.requestTimeoutMs', t.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
      retries,
      retryBaseDelayMs: positive('transport.retryBaseDelayMs', t.retryBaseDelayMs, DEFAULT_RETRY_BASE_DELAY_MS, true),
      retryMaxDelayMs: positive('transport.retryMaxDelayMs', t.retryMaxDelayMs, DEFAULT_RETRY_MAX_DELAY_MS, true),
      maxRetryAfterMs: positive('transport.maxRetryAfterMs', t.maxRetryAfterMs, DEFAULT_MAX_RETRY_AFTER_MS, true),
      keepAliveTimeoutMs: positive('transport.keepAliveTimeoutMs', t.keepAliveTimeoutMs, DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
      maxResponseBytes: positive('transport.maxResponseBytes', t.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES),
      dispatcher: t.dispatcher,
    }),
    recovery: Object.freeze({
      minDelayMs: positive('recovery.minDelayMs', r.minDelayMs, DEFAULT_RECOVERY_MIN_DELAY_MS),
      maxDelayMs: positive('recovery.maxDelayMs', r.maxDelayMs, DEFAULT_RECOVERY_MAX_DELAY_MS),
      unauthorizedDelayMs: positive('recovery.unauthorizedDelayMs', r.unauthorizedDelayMs, DEFAULT_UNAUTHORIZED_DELAY_MS),
    }),
    nats,
    pollIntervalMs: poll === false ? false : positive('pollIntervalMs', poll, DEFAULT_POLL_INTERVAL_MS),
    env: options.env ?? process.env,
    logger: safeLogger(options.logger),
    instanceId: options.instanceId ?? processInstanceId(),
    fleetReport: options.fleetReport ?? true,
    metrics,
  });
}

function resolveMetrics(option: ConfigClientOptions['metrics']): ResolvedOptions['metrics'] {
  if (option === false) return false;
  if (option === undefined || option === true) return Object.freeze({ meter: undefined });
  if (typeof option !== 'object' || option === null || Array.isArray(option)) throw invalid('metrics must be a boolean or an object');
  refuseUnknownKeys('metrics.', option, METRICS_KEYS);
  const { meter } = option;
  if (meter !== undefined) {
    const missing = METER_METHODS.find((method) => typeof (meter as unknown as Record<string, unknown> | null)?.[method] !== 'function');
    if (missing !== undefined) throw invalid(`metrics.meter must be an OpenTelemetry Meter (no ${missing}())`);
  }
  return Object.freeze({ meter });
}
