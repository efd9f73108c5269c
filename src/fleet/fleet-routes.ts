/**
 * The fleet routes of each hub (schema upload, report request): sent through the client's transport,
 * given up for a hub that answers 404/405 (a hub without them), counted, and never thrown: their failures
 * are not config errors, so they go to `logger.debug` and the counters, not to `onError`.
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

export type Send = (hubUrl: string, request: SendRequest) => Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>;

export interface FleetRoutesDeps {
  send: Send;
  logger: Logger;
  /** Sees the headers of every answer (a report's answer may name unknown schemas too). */
  onAnswer: (hubUrl: string, service: string, headers: Record<string, string | string[] | undefined>) => void;
}

export class FleetRoutes {
  readonly counters: FleetCounters = { uploads: 0, uploadFailures: 0, reports: 0, reportFailures: 0 };
  readonly #deps: FleetRoutesDeps;
  /** `<route>\n<hub URL>` of the routes a hub answered 404/405 to (an original hub): asked no more. */
  readonly #absent = new Set<string>();

  constructor(deps: FleetRoutesDeps) {
    this.#deps = deps;
  }

  usable(hubUrl: string, what: Route): boolean {
    return !this.#absent.has(`${what}\n${hubUrl}`);
  }

  /** Sends one fleet request; resolves `true` when the hub accepted it, `false` otherwise (never rejects). */
  async send(hubUrl: string, request: SendRequest, what: Route, service: string): Promise<boolean> {
    const failures = what === 'upload' ? 'uploadFailures' : 'reportFailures';
    let status: number;
    try {
      const answer = await this.#deps.send(hubUrl, request);
      status = answer.status;
      this.#deps.onAnswer(hubUrl, service, answer.headers);
    } catch (error) {
      this.counters[failures]++;
      this.#deps.logger.debug({ hubUrl, service, err: errorMessage(error) }, `fleet ${what} failed`);
      return false;
    }
    if (status >= 200 && status < 300) {
      this.counters[what === 'upload' ? 'uploads' : 'reports']++;
      return true;
    }
    this.counters[failures]++;
    if (status === 404 || status === 405) {
      this.#absent.add(`${what}\n${hubUrl}`);
      this.#deps.logger.debug({ hubUrl, status }, `the hub has no fleet ${what} route: not used for this hub any more`);
    } else {
      this.#deps.logger.debug({ hubUrl, service, status }, `fleet ${what} refused`);
    }
    return false;
  }
}
