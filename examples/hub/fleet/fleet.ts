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
import { InstanceRegistry } from './instance-registry.js';
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
   * For an API request that passed authentication: records the reported services the caller may read,
   * and names the schema hashes the hub does not know in `x-config-schema-unknown`. A bad header only
   * adds `x-config-report-error`. Synchronous (a cached parse and Map updates) unless a hash needs a look
   * in the table, at most once per hash per recheck interval: then it returns a promise that never rejects.
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
    const now = Date.now();
    let hashes: Set<string> | undefined;
    for (const fields of parsed.entries) {
      if (principal !== undefined && !principal.can('read', fields.service_name)) continue;
      this.instances.record(fields, now);
      if (fields.schema_hash === null) continue;
      hashes ??= new Set();
      hashes.add(fields.schema_hash);
    }
    if (hashes === undefined) return undefined;
    const first = this.schemas.classify(hashes, now);
    if (first.recheck.length === 0) {
      announceUnknown(reply, first.unknown);
      return undefined;
    }
    const found = hashes;
    return this.schemas.refresh(first.recheck, now).then(
      () => announceUnknown(reply, this.schemas.classify(found, now).unknown),
      (error: unknown) => this.#onError('fleet: checking reported schema hashes failed', error),
    );
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

function announceUnknown(reply: FastifyReply, unknown: readonly string[]): void {
  if (unknown.length > 0) reply.header(SCHEMA_UNKNOWN_HEADER, unknown.join(', '));
}
