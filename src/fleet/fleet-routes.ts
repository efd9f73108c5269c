/**
 * The fleet routes of each hub (schema upload, report request): sent through the client's transport,
 * set aside for a hub that answers 404/405 (a hub without them) and asked again 10 minutes later (the hub
 * may have been upgraded), counted, and never thrown: their failures are not config errors, so they go to
 * `logger.debug` and the counters, not to `onError`.
 */
import { errorMessage } from '../errors.js';
import type { SendRequest } from '../hub/transport.js';
import type { Logger } from '../logger.js';

export interface FleetCounters {
  /** Schema uploads the hub accepted (200/201). */
  uploads: number;
  uploadFailures: number;
  /** Report requests the hub accepted (2xx). */
  reports: number;
  reportFailures: number;
}

export type Route = 'upload' | 'report';

/**
 * How a fleet request ended: `accepted` (2xx), `refused` (another 4xx: another hub would say the same),
 * `failed` (no answer, 5xx, 429: another hub may do better), `absent` (404/405: the hub has no such route).
 */
export type SendOutcome = 'accepted' | 'refused' | 'failed' | 'absent';

/** How long a route a hub answered 404/405 to is not asked again. */
export const ABSENT_RECHECK_MS = 10 * 60_000;

export type Send = (hubUrl: string, request: SendRequest) => Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>;

export interface FleetRoutesDeps {
  send: Send;
  logger: Logger;
  /** Sees the headers of every answer (a report's answer may name unknown schemas too). */
  onAnswer: (hubUrl: string, service: string, headers: Record<string, string | string[] | undefined>) => void;
  now: () => number;
}

export class FleetRoutes {
  readonly counters: FleetCounters = { uploads: 0, uploadFailures: 0, reports: 0, reportFailures: 0 };
  readonly #deps: FleetRoutesDeps;
  /** `<route>\n<hub URL>` of the routes a hub answered 404/405 to (an original hub), and when. */
  readonly #absent = new Map<string, number>();

  constructor(deps: FleetRoutesDeps) {
    this.#deps = deps;
  }

  usable(hubUrl: string, what: Route): boolean {
    const key = `${what}\n${hubUrl}`;
    const since = this.#absent.get(key);
    if (since === undefined) return true;
    if (this.#deps.now() - since < ABSENT_RECHECK_MS) return false;
    this.#absent.delete(key);
    return true;
  }

  /** Sends one fleet request (never rejects). */
  async send(hubUrl: string, request: SendRequest, what: Route, service: string): Promise<SendOutcome> {
    const failures = what === 'upload' ? 'uploadFailures' : 'reportFailures';
    let status: number;
    try {
      const answer = await this.#deps.send(hubUrl, request);
      status = answer.status;
      this.#deps.onAnswer(hubUrl, service, answer.headers);
    } catch (error) {
      this.counters[failures]++;
      this.#deps.logger.debug({ hubUrl, service, err: errorMessage(error) }, `fleet ${what} failed`);
      return 'failed';
    }
    if (status >= 200 && status < 300) {
      this.counters[what === 'upload' ? 'uploads' : 'reports']++;
      return 'accepted';
    }
    this.counters[failures]++;
    if (status === 404 || status === 405) {
      this.#absent.set(`${what}\n${hubUrl}`, this.#deps.now());
      this.#deps.logger.debug({ hubUrl, status }, `the hub has no fleet ${what} route: not used for this hub for 10 minutes`);
      return 'absent';
    }
    this.#deps.logger.debug({ hubUrl, service, status }, `fleet ${what} refused`);
    return status >= 500 || status === 429 ? 'failed' : 'refused';
  }
}
