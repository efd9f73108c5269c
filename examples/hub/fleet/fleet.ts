/**
 * The hub's side of the fleet protocol (docs/fleet.md) in one object: the report cache, the instance
 * registry, the schema registry, and `observe`, the step of the `onRequest` hook that handles a report
 * header on an authenticated API request.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { REPORT_ERROR_HEADER, REPORT_HEADER, SCHEMA_UNKNOWN_HEADER } from '../../../src/fleet/wire.js';
import type { Principal } from '../auth.js';
import type { SqlExecutor } from '../store/sql-driver.js';
import { ConsumerCheck } from './consumer-check.js';
import { FLUSH_FAILURES_DEGRADED, type FleetHealth, InstanceRegistry } from './instance-registry.js';
import { ReportCache } from './report.js';
import { SchemaRegistry } from './schema-registry.js';

export interface FleetOptions {
  db: SqlExecutor;
  /** Write-behind interval of the instance registry. @default 1000 */
  flushIntervalMs?: number | undefined;
  onError?: ((message: string, error: unknown) => void) | undefined;
}

export class Fleet {
  readonly reports = new ReportCache();
  readonly instances: InstanceRegistry;
  readonly schemas: SchemaRegistry;
  readonly #onError: (message: string, error: unknown) => void;
  /** Requests whose report header was read (valid or not): a liveness counter. */
  reportsSeen = 0;

  constructor(options: FleetOptions) {
    this.#onError = options.onError ?? (() => {});
    this.instances = new InstanceRegistry({ db: options.db, flushIntervalMs: options.flushIntervalMs, onError: this.#onError });
    this.schemas = new SchemaRegistry({ db: options.db });
  }

  /**
   * For an API request that passed authentication: parses the report header (a bad one only adds
   * `x-config-report-error`). On a `GET` (or `HEAD`) of `/api/v1/config/{service}` it records that
   * service's entry of the report, if the caller may read it, and names its schema hash in
   * `x-config-schema-unknown` when the hub does not know it. Nothing else of a header is recorded: the
   * other services it lists were not asked for (a key could list any it may read, to crowd the views and
   * checks of others); a report `POST` records the services of its body (routes/fleet.ts).
   * Synchronous (a cached parse and Map updates) unless the hash needs a look in the table, at most once
   * per hash per recheck interval: then it returns a promise that never rejects.
   */
  observe(request: FastifyRequest, reply: FastifyReply, principal: Principal | undefined): Promise<void> | undefined {
    const raw = request.headers[REPORT_HEADER];
    if (raw === undefined) return undefined;
    this.reportsSeen++;
    const parsed = this.reports.parse(Array.isArray(raw) ? raw.join(', ') : raw);
    if (!parsed.ok) {
      reply.header(REPORT_ERROR_HEADER, parsed.reason);
      return undefined;
    }
    const service = request.method === 'GET' || request.method === 'HEAD' ? configGetService(request.url) : undefined;
    if (service === undefined || (principal !== undefined && !principal.can('read', service))) return undefined;
    const fields = parsed.entries.find((e) => e.service_name === service);
    if (fields === undefined) return undefined;
    const now = Date.now();
    this.instances.record(fields, now);
    if (fields.schema_hash === null) return undefined;
    const hashes = [fields.schema_hash];
    const first = this.schemas.classify(hashes, now);
    if (first.recheck.length === 0) {
      announceUnknown(reply, first.unknown);
      return undefined;
    }
    return this.schemas.refresh(first.recheck, now).then(
      () => announceUnknown(reply, this.schemas.classify(hashes, now).unknown),
      (error: unknown) => this.#onError('fleet: checking reported schema hashes failed', error),
    );
  }

  /** The fleet's state for `/health`: write-behind backlog, dropped ids, failing flushes. */
  health(): FleetHealth & { degraded: boolean } {
    const health = this.instances.health();
    return { ...health, degraded: health.failures >= FLUSH_FAILURES_DEGRADED };
  }

  /** The validators of the live consumers of `service`, loaded before a write's transaction. */
  prepareCheck(service: string): Promise<ConsumerCheck> {
    return ConsumerCheck.prepare(this.instances, this.schemas, service);
  }

  /** Flushes the unflushed instance records and stops the registry's timer. */
  close(): Promise<void> {
    return this.instances.close();
  }
}

/** `/api/v1/config/{service}` (query aside; a trailing slash allowed) → the service, else undefined. */
const CONFIG_GET = /^\/api\/v1\/config\/([a-z0-9-]{1,100})\/?(?:\?.*)?$/;
export function configGetService(url: string): string | undefined {
  return CONFIG_GET.exec(url)?.[1];
}

function announceUnknown(reply: FastifyReply, unknown: readonly string[]): void {
  if (unknown.length > 0) reply.header(SCHEMA_UNKNOWN_HEADER, unknown.join(', '));
}
