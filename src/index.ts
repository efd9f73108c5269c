/** Public surface of `@central-hub/config`. Everything exported is listed here by name. */
export { ConfigClient } from './client.js';
export type { ConfigOf, ConfigStatus, ErrorListener, Explanation } from './client.js';
export { ConfigError, ConfigInvalidError, HubHttpError, isConfigError } from './errors.js';
export type { ConfigErrorCode, ConfigErrorOptions, ConfigIssue } from './errors.js';
export {
  DEFAULT_CACHE_TTL_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_STARTUP_TIMEOUT_MS,
} from './options.js';
export type {
  ConfigClientOptions,
  DeepPartial,
  NatsOptions,
  RecoveryOptions,
  ServiceDefinition,
  ServicesMap,
  TransportOptions,
} from './options.js';
export type { ChangeListener, ChangeSource, ConfigChange, ConfigSource } from './runtime/types.js';
export type { ChangeEvent, ChangeStreamOptions } from './change-stream.js';
export type { LayerName } from './layers/merge.js';
export type { EnvMapping, EnvSource } from './layers/env.js';
export type { Logger } from './logger.js';
export type { MetricAttributes, MetricsMeter, MetricsOptions } from './metrics/meter.js';
export type { NatsState } from './watch/nats-watcher.js';
export { defineService } from './define-service.js';
