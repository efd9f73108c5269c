/**
 * Schema uploads (docs/fleet.md §2): when a hub answers `x-config-schema-unknown` naming a hash this client
 * holds, `PUT /api/v1/schemas/{hash}` to that hub. At most one attempt per hash and hub every 30 s: a failed
 * upload is retried at the next such answer after that, and so is one that succeeded (the hub lost it: a
 * restore, a purge, another database). Never awaited by a `get`.
 */
import type { FleetRoutes } from './fleet-routes.js';
import type { SchemaExport } from './schema-export.js';
import { REPORT_HEADER, SCHEMA_HASH_PATTERN } from './wire.js';

export const UPLOAD_RETRY_MS = 30_000;

/** The report header of a fleet request, and what to do once the hub accepted it. */
export interface BuiltHeader {
  value: string | undefined;
  /** The hub accepted the request: it has heard this state. */
  commit: () => void;
}

export interface SchemaUploaderDeps {
  routes: FleetRoutes;
  /** The export this client holds with that hash, if any. */
  exportFor: (hash: string) => SchemaExport | undefined;
  now: () => number;
}

interface UploadState {
  inFlight: boolean;
  lastAttemptAt: number;
}

/** The hashes of an `x-config-schema-unknown` header (comma-separated; repeated headers too). */
export function unknownHashes(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => SCHEMA_HASH_PATTERN.test(part));
}

/**
 * Uploads in flight in this process, by `<hub URL>\n<hash>`. Clients of one process usually hold the same
 * schemas, and a fleet starting at once hears "unknown" in every first answer (bench figure 5: 250 clients per
 * process): one PUT per process and hub, not one per client. The others skip it; if it fails, the hub names
 * the hash again in their next answer and they upload it then.
 */
const inFlightInProcess = new Set<string>();

export class SchemaUploader {
  readonly #deps: SchemaUploaderDeps;
  /** By `<hub URL>\n<hash>`. */
  readonly #uploads = new Map<string, UploadState>();

  constructor(deps: SchemaUploaderDeps) {
    this.#deps = deps;
  }

  /** A hub answered naming these hashes unknown: upload those this client holds and that are due. */
  unknown(hubUrl: string, service: string, hashes: readonly string[], reportHeader: () => BuiltHeader | undefined): void {
    for (const hash of hashes) {
      const schema = this.#deps.exportFor(hash);
      if (!schema || !this.#deps.routes.usable(hubUrl, 'upload')) continue;
      const key = `${hubUrl}\n${hash}`;
      const state = this.#uploads.get(key);
      const now = this.#deps.now();
      // An answer that names the hash while its upload is in flight (or just done) is not a new request.
      if (state && (state.inFlight || now - state.lastAttemptAt < UPLOAD_RETRY_MS)) continue;
      if (inFlightInProcess.has(key)) continue;
      const next: UploadState = { inFlight: true, lastAttemptAt: now };
      this.#uploads.set(key, next);
      inFlightInProcess.add(key);
      const header = reportHeader();
      const headers: Record<string, string> = header?.value === undefined ? {} : { [REPORT_HEADER]: header.value };
      const request = { method: 'PUT', path: `api/v1/schemas/${hash}`, body: schema.body, headers } as const;
      // Sent after the answer that asked for it is handled: the upload is not on the path of that `get`.
      setImmediate(() => {
        void this.#deps.routes.send(hubUrl, request, 'upload', service).then((outcome) => {
          next.inFlight = false;
          inFlightInProcess.delete(key);
          if (outcome === 'accepted') header?.commit();
        });
      });
    }
  }
}
