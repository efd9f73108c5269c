/**
 * When report requests go (docs/fleet.md §3): a service is due at once after a rejected update, and after
 * a random delay below 1 s after an applied change (so that a fleet does not answer a change in one burst);
 * at most one request per second per client: what falls due sooner waits for the second to end, and all
 * that is due by then goes in one request. Timers are unref'd; `close()` cancels what is pending.
 */
import { MAX_REPORT_SERVICES } from './wire.js';

export const REPORT_INTERVAL_MS = 1_000;
export const CHANGE_REPORT_SPREAD_MS = 1_000;

export interface ReportSchedulerDeps {
  /** Sends one report of these services; never rejects. */
  flush: (services: string[]) => Promise<void>;
  now: () => number;
}

export class ReportScheduler {
  readonly #deps: ReportSchedulerDeps;
  readonly #pending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  /** The earliest time a pending service is due. */
  #dueAt = Number.POSITIVE_INFINITY;
  #lastSentAt = Number.NEGATIVE_INFINITY;
  #inFlight = false;
  #closed = false;

  constructor(deps: ReportSchedulerDeps) {
    this.#deps = deps;
  }

  /** `service` is to be reported in `delayMs` (0: at once, or as soon as the one-per-second bound allows). */
  due(service: string, delayMs: number): void {
    if (this.#closed) return;
    this.#pending.add(service);
    this.#dueAt = Math.min(this.#dueAt, this.#deps.now() + delayMs);
    this.#arm();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }

  #arm(): void {
    // A request in flight re-arms when it ends.
    if (this.#inFlight || this.#pending.size === 0) return;
    const at = Math.max(this.#dueAt, this.#lastSentAt + REPORT_INTERVAL_MS);
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - this.#deps.now()));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#closed || this.#pending.size === 0) return;
    const services = [...this.#pending].slice(0, MAX_REPORT_SERVICES);
    for (const service of services) this.#pending.delete(service);
    // What is left over (more than 100 services) is due at once, i.e. after this second.
    this.#dueAt = this.#pending.size > 0 ? this.#deps.now() : Number.POSITIVE_INFINITY;
    this.#lastSentAt = this.#deps.now();
    this.#inFlight = true;
    const settled = (): void => {
      this.#inFlight = false;
      if (!this.#closed) this.#arm();
    };
    this.#deps.flush(services).then(settled, settled);
  }
}
