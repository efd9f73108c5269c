/**
 * Fleet reporting of one client (docs/fleet.md): the `x-config-report` header of every hub request, the
 * schema uploads the hub asks for, and the report requests after a change or a rejection. The GET path
 * pays one status read and five comparisons per request: the encoded header is kept per service and
 * rebuilt only when the service's state changed.
 */
import type { Dispatcher } from 'undici';
import type { SendRequest } from '../hub/transport.js';
import type { Logger } from '../logger.js';
import type { ServiceDefinition } from '../options.js';
import type { RuntimeStatus } from '../runtime/types.js';
import type { FleetEvent } from './fleet-event.js';
import { type FleetCounters, FleetRoutes, type Send } from './fleet-routes.js';
import { encodeBounded, isNews, type ReportIdentity, reportIdentity, sameReport, serviceReport } from './report.js';
import { CHANGE_REPORT_SPREAD_MS, ReportScheduler } from './report-scheduler.js';
import { LazySchemaExport, type SchemaExport } from './schema-export.js';
import { SchemaUploader, unknownHashes } from './schema-uploader.js';
import { REPORT_ERROR_HEADER, REPORT_HEADER, SCHEMA_UNKNOWN_HEADER, type ServiceReport } from './wire.js';

export interface FleetReporterDeps {
  instanceId: string;
  pollIntervalMs: number | false;
  logger: Logger;
  random: () => number;
  /** The client's transport: one fleet request, and the hub that answered last. */
  send: Send;
  preferredHubUrl: () => string;
  now?: () => number;
}

interface Tracked {
  status: () => RuntimeStatus;
  schema: LazySchemaExport;
  /** The last header built, and the state it says. */
  header: { state: ServiceReport; value: string | undefined } | undefined;
  /** What the hub was last told (in a header or a report request). */
  told: ServiceReport | undefined;
}

type Headers = Dispatcher.ResponseData['headers'];

export class FleetReporter {
  readonly #identity: ReportIdentity;
  readonly #deps: FleetReporterDeps;
  readonly #services = new Map<string, Tracked>();
  readonly #routes: FleetRoutes;
  readonly #uploader: SchemaUploader;
  readonly #scheduler: ReportScheduler;
  /** Hubs whose `x-config-report-error` was logged: once per hub. */
  readonly #warnedHubs = new Set<string>();

  constructor(deps: FleetReporterDeps) {
    this.#deps = deps;
    this.#identity = reportIdentity(deps.instanceId, deps.pollIntervalMs);
    const now = deps.now ?? (() => Date.now());
    this.#routes = new FleetRoutes({ send: deps.send, logger: deps.logger, onAnswer: (hubUrl, service, headers) => this.#answered(hubUrl, service, headers) });
    this.#uploader = new SchemaUploader({ routes: this.#routes, exportFor: (hash) => this.#exportFor(hash), now });
    this.#scheduler = new ReportScheduler({ flush: (services) => this.#sendReport(services), now });
  }

  get counters(): Readonly<FleetCounters> {
    return this.#routes.counters;
  }

  /** Starts reporting a service (its runtime was just made); its schema is exported on first use. */
  track(service: string, definition: ServiceDefinition, status: () => RuntimeStatus): void {
    this.#services.set(service, { status, schema: new LazySchemaExport(service, definition, this.#deps.logger), header: undefined, told: undefined });
  }

  /** The header of a request about `service` (the transport's `reportHeader`). */
  headerFor(service: string): string | undefined {
    const tracked = this.#services.get(service);
    if (!tracked) return undefined;
    const state = this.#stateOf(tracked);
    const cached = tracked.header;
    tracked.told = state;
    if (cached && sameReport(cached.state, state)) return cached.value;
    const value = encodeBounded(this.#identity, [[service, state]]);
    tracked.header = { state, value };
    return value;
  }

  /** The transport's `onAnswer`: every answer of the hub to a config request. */
  onAnswer(hubUrl: string, service: string, _status: number, headers: Headers): void {
    // Two lookups on the GET path; the rest only when the hub asked for something.
    if (headers[SCHEMA_UNKNOWN_HEADER] === undefined && headers[REPORT_ERROR_HEADER] === undefined) return;
    this.#answered(hubUrl, service, headers);
  }

  /** The runtime's transition ended: a report is due at once after a rejection, soon after news. */
  transitioned(service: string, event: FleetEvent | undefined): void {
    if (event === undefined) return;
    const tracked = this.#services.get(service);
    if (!tracked) return;
    if (event === 'rejected') this.#scheduler.due(service, 0);
    else if (isNews(this.#stateOf(tracked), tracked.told)) this.#scheduler.due(service, this.#deps.random() * CHANGE_REPORT_SPREAD_MS);
  }

  /** Cancels pending reports (requests in flight end with the transport). */
  close(): void {
    this.#scheduler.close();
  }

  #stateOf(tracked: Tracked): ServiceReport {
    return serviceReport(tracked.status(), tracked.schema.get()?.hash);
  }

  #answered(hubUrl: string, service: string, headers: Headers): void {
    try {
      const hashes = unknownHashes(headers[SCHEMA_UNKNOWN_HEADER]);
      // The header is built only for an upload that goes: building it records what the hub was told.
      if (hashes.length > 0) this.#uploader.unknown(hubUrl, service, hashes, () => this.headerFor(service));
      const problem = headers[REPORT_ERROR_HEADER];
      if (problem !== undefined && !this.#warnedHubs.has(hubUrl)) {
        this.#warnedHubs.add(hubUrl);
        const reason = (Array.isArray(problem) ? problem.join(', ') : problem).slice(0, 200);
        this.#deps.logger.warn({ hubUrl, reason }, 'the hub could not read the fleet report header (config delivery is not affected)');
      }
    } catch (error) {
      // Telemetry must never break a fetch; this is a bug of ours, worth a line in a debug log.
      this.#deps.logger.debug({ hubUrl, err: String(error) }, 'fleet answer not handled');
    }
  }

  #exportFor(hash: string): SchemaExport | undefined {
    for (const tracked of this.#services.values()) {
      const exported = tracked.schema.get();
      if (exported?.hash === hash) return exported;
    }
    return undefined;
  }

  /** One report request of the services that have news since the hub was last told (nothing if none has). */
  async #sendReport(services: string[]): Promise<void> {
    const hubUrl = this.#deps.preferredHubUrl();
    if (!this.#routes.usable(hubUrl, 'report')) return;
    const entries: Array<[string, ServiceReport]> = [];
    for (const service of services) {
      const tracked = this.#services.get(service);
      if (!tracked) continue;
      const state = this.#stateOf(tracked);
      if (isNews(state, tracked.told)) entries.push([service, state]);
    }
    const first = entries[0];
    if (!first) return;
    const report = { ...this.#identity, services: Object.fromEntries(entries) };
    for (const [service, state] of entries) this.#services.get(service)!.told = state;
    const header = encodeBounded(this.#identity, entries);
    const request: SendRequest = {
      method: 'POST',
      path: `api/v1/config/${encodeURIComponent(first[0])}/instances`,
      body: JSON.stringify(report),
      headers: header === undefined ? {} : { [REPORT_HEADER]: header },
    };
    await this.#routes.send(hubUrl, request, 'report', first[0]);
  }
}

/** The reporter of each client, for tests (the counters); nothing of it is public. */
const reporters = new WeakMap<object, FleetReporter>();

export function registerFleetReporter(client: object, reporter: FleetReporter): void {
  reporters.set(client, reporter);
}

/** The fleet counters of a client (`undefined` with `fleetReport: false`). */
export function fleetCountersOf(client: object): Readonly<FleetCounters> | undefined {
  return reporters.get(client)?.counters;
}
