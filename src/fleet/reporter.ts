/**
 * Fleet reporting of one client (docs/fleet.md): the `x-config-report` header of every hub request, the
 * schema uploads the hub asks for, the report requests after a change or a rejection, and (without polling)
 * a heartbeat report each minute. The GET path pays one status read and five comparisons per request: the
 * encoded header is kept per service and rebuilt only when the service's state changed. What the hub has
 * heard (`told`) moves only when it answered: a failed report goes again with the next one.
 */
import type { Dispatcher } from 'undici';
import type { SendRequest } from '../hub/transport.js';
import type { Logger } from '../logger.js';
import type { ServiceDefinition } from '../options.js';
import type { RuntimeStatus } from '../runtime/types.js';
import type { FleetEvent } from './fleet-event.js';
import { type FleetCounters, FleetRoutes, type Send } from './fleet-routes.js';
import { encodeBounded, HEARTBEAT_MS, isNews, type ReportIdentity, reportIdentity, sameReport, serviceReport } from './report.js';
import { CHANGE_REPORT_SPREAD_MS, ReportScheduler } from './report-scheduler.js';
import { LazySchemaExport, type SchemaExport } from './schema-export.js';
import { type BuiltHeader, SchemaUploader, unknownHashes } from './schema-uploader.js';
import { MAX_REPORT_SERVICES, REPORT_ERROR_HEADER, REPORT_HEADER, SCHEMA_UNKNOWN_HEADER, type ServiceReport } from './wire.js';

export interface FleetReporterDeps {
  instanceId: string;
  pollIntervalMs: number | false;
  /** The recovery backoff's bound (`recovery.maxDelayMs`): a failing instance's longest silence. */
  recoveryMaxDelayMs?: number | undefined;
  logger: Logger;
  random: () => number;
  /** The client's transport: one fleet request, the hub that answered last, and every hub in order. */
  send: Send;
  preferredHubUrl: () => string;
  hubUrls?: readonly string[] | undefined;
  now?: () => number;
}

interface Tracked {
  status: () => RuntimeStatus;
  schema: LazySchemaExport;
  /** The last header built, and the state it says. */
  header: { state: ServiceReport; value: string | undefined } | undefined;
  /** What the hub has heard (a request carrying it was answered 2xx, or 304 for a GET). */
  told: ServiceReport | undefined;
  /** The state the last GET's header said, until its answer. */
  sent: ServiceReport | undefined;
}

type Headers = Dispatcher.ResponseData['headers'];

/**
 * Services named like the hub's history and rollback routes: `POST /api/v1/config/rollback/instances` is
 * the rollback of a service named `instances` (examples/hub/routes/history.ts), so a report request never
 * goes to such a path.
 */
const RESERVED_PATH_SERVICES: ReadonlySet<string> = new Set(['history', 'rollback']);

export class FleetReporter {
  readonly #identity: ReportIdentity;
  readonly #deps: FleetReporterDeps;
  readonly #services = new Map<string, Tracked>();
  readonly #routes: FleetRoutes;
  readonly #uploader: SchemaUploader;
  readonly #scheduler: ReportScheduler;
  /** Hubs whose `x-config-report-error` was logged: once per hub. */
  readonly #warnedHubs = new Set<string>();
  /** Services whose last report request failed: they go with the next one (if the hub has not heard them since). */
  readonly #unsent = new Set<string>();
  /** Without polling: a report request of every service each HEARTBEAT_MS, so that the hub keeps the instance. */
  #heartbeat: NodeJS.Timeout | undefined;
  /** The next report request is the heartbeat's: every service, news or not. */
  #heartbeatDue = false;
  #closed = false;

  constructor(deps: FleetReporterDeps) {
    this.#deps = deps;
    this.#identity = reportIdentity(deps.instanceId, deps.pollIntervalMs, deps.recoveryMaxDelayMs);
    const now = deps.now ?? (() => Date.now());
    this.#routes = new FleetRoutes({ send: deps.send, logger: deps.logger, now, onAnswer: (hubUrl, service, headers) => this.#answered(hubUrl, service, headers) });
    this.#uploader = new SchemaUploader({ routes: this.#routes, exportFor: (hash) => this.#exportFor(hash), now });
    this.#scheduler = new ReportScheduler({ flush: (services) => this.#sendReport(services), now });
  }

  get counters(): Readonly<FleetCounters> {
    return this.#routes.counters;
  }

  /** Starts reporting a service (its runtime was just made); its schema is exported on first use. */
  track(service: string, definition: ServiceDefinition, status: () => RuntimeStatus): void {
    this.#services.set(service, { status, schema: new LazySchemaExport(service, definition, this.#deps.logger), header: undefined, told: undefined, sent: undefined });
    if (this.#deps.pollIntervalMs === false) this.#startHeartbeat();
  }

  /** The header of a GET about `service` (the transport's `reportHeader`); never throws. */
  headerFor(service: string): string | undefined {
    try {
      const tracked = this.#services.get(service);
      if (!tracked) return undefined;
      const header = this.#header(service, tracked);
      tracked.sent = header.state;
      return header.value;
    } catch (error) {
      this.#deps.logger.debug({ service, err: String(error) }, 'fleet report header not built');
      return undefined;
    }
  }

  /** The transport's `onAnswer`: every answer of the hub to a config request; never throws. */
  onAnswer(hubUrl: string, service: string, status: number, headers: Headers): void {
    try {
      if ((status >= 200 && status < 300) || status === 304) {
        const tracked = this.#services.get(service);
        if (tracked?.sent) {
          tracked.told = tracked.sent;
          tracked.sent = undefined;
        }
      }
      // Two lookups on the GET path; the rest only when the hub asked for something.
      if (headers[SCHEMA_UNKNOWN_HEADER] === undefined && headers[REPORT_ERROR_HEADER] === undefined) return;
      this.#answered(hubUrl, service, headers);
    } catch (error) {
      this.#deps.logger.debug({ hubUrl, err: String(error) }, 'fleet answer not handled');
    }
  }

  /** The runtime's transition ended: a report is due at once after a rejection, soon after news. */
  transitioned(service: string, event: FleetEvent | undefined): void {
    if (event === undefined) return;
    const tracked = this.#services.get(service);
    if (!tracked) return;
    if (event === 'rejected') this.#scheduler.due(service, 0);
    else if (isNews(this.#stateOf(tracked), tracked.told)) this.#scheduler.due(service, this.#deps.random() * CHANGE_REPORT_SPREAD_MS);
  }

  /** Cancels pending reports and the heartbeat (requests in flight end with the transport). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#scheduler.close();
  }

  #startHeartbeat(): void {
    if (this.#heartbeat !== undefined || this.#closed) return;
    this.#heartbeat = setInterval(() => {
      const first = this.#services.keys().next();
      if (first.done) return;
      this.#heartbeatDue = true;
      this.#scheduler.due(first.value, 0);
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  #stateOf(tracked: Tracked): ServiceReport {
    return serviceReport(tracked.status(), tracked.schema.get()?.hash);
  }

  /** The header of `service`'s current state: rebuilt only when the state changed. */
  #header(service: string, tracked: Tracked): { state: ServiceReport; value: string | undefined } {
    const state = this.#stateOf(tracked);
    const cached = tracked.header;
    if (cached && sameReport(cached.state, state)) return cached;
    tracked.header = { state, value: encodeBounded(this.#identity, [[service, state]]) };
    return tracked.header;
  }

  #answered(hubUrl: string, service: string, headers: Headers): void {
    try {
      const hashes = unknownHashes(headers[SCHEMA_UNKNOWN_HEADER]);
      // The header is built only for an upload that goes; the hub has heard it once it accepted the upload.
      if (hashes.length > 0) this.#uploader.unknown(hubUrl, service, hashes, () => this.#uploadHeader(service));
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

  #uploadHeader(service: string): BuiltHeader | undefined {
    const tracked = this.#services.get(service);
    if (!tracked) return undefined;
    const header = this.#header(service, tracked);
    return {
      value: header.value,
      commit: () => {
        tracked.told = header.state;
      },
    };
  }

  #exportFor(hash: string): SchemaExport | undefined {
    for (const tracked of this.#services.values()) {
      const exported = tracked.schema.get();
      if (exported?.hash === hash) return exported;
    }
    return undefined;
  }

  /**
   * One report request of the services that have news since the hub last heard them (those of a failed
   * request included; every service for the heartbeat), nothing if none has. Tried at the hub that answered
   * last, then at the others in order, until one answers; the states count as heard only when one accepts.
   */
  async #sendReport(services: string[]): Promise<void> {
    const heartbeat = this.#heartbeatDue;
    this.#heartbeatDue = false;
    const names = heartbeat ? [...this.#services.keys()] : [...new Set([...services, ...this.#unsent])];
    this.#unsent.clear();
    const entries: Array<[string, ServiceReport]> = [];
    for (const service of names) {
      const tracked = this.#services.get(service);
      if (!tracked) continue;
      const state = this.#stateOf(tracked);
      if (heartbeat || isNews(state, tracked.told)) entries.push([service, state]);
    }
    // More than 100 services with news: the rest go with the next request.
    for (const [service] of entries.splice(MAX_REPORT_SERVICES)) this.#unsent.add(service);
    const at = entries.find(([service]) => !RESERVED_PATH_SERVICES.has(service))?.[0];
    if (at === undefined) {
      // Only services named `history` or `rollback`: no safe path. They go with the next report of another
      // service; until then their GETs' headers report them.
      for (const [service] of entries) this.#unsent.add(service);
      return;
    }
    const report = { ...this.#identity, services: Object.fromEntries(entries) };
    const header = encodeBounded(this.#identity, entries);
    const request: SendRequest = {
      method: 'POST',
      path: `api/v1/config/${encodeURIComponent(at)}/instances`,
      body: JSON.stringify(report),
      headers: header === undefined ? {} : { [REPORT_HEADER]: header },
    };
    for (const hubUrl of this.#hubOrder()) {
      if (this.#closed) return;
      if (!this.#routes.usable(hubUrl, 'report')) continue;
      const outcome = await this.#routes.send(hubUrl, request, 'report', at);
      if (outcome === 'accepted') {
        for (const [service, state] of entries) this.#services.get(service)!.told = state;
        return;
      }
      // The hub answered and refused (400, 403): another hub would say the same.
      if (outcome === 'refused') break;
    }
    for (const [service] of entries) this.#unsent.add(service);
    if (heartbeat) this.#heartbeatDue = true;
  }

  /** The hub that answered last first, then the others in their order. */
  #hubOrder(): string[] {
    const preferred = this.#deps.preferredHubUrl();
    return [preferred, ...(this.#deps.hubUrls ?? []).filter((url) => url !== preferred)];
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
