/**
 * The snapshot step of a transition: write the committed hub layer, or remove the file after a 404. The store
 * serializes per service (the newest issued wins); a failing write is reported once until one succeeds.
 */
import { ConfigError, errorMessage as describe } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SnapshotStore } from '../snapshot/file-store.js';
import type { Committed } from './service-runtime.js';

export class SnapshotWriter {
  readonly #service: string;
  readonly #store: SnapshotStore;
  readonly #logger: Logger;
  readonly #report: (error: ConfigError) => void;
  readonly #isClosed: () => boolean;
  #failing = false;

  constructor(service: string, store: SnapshotStore, logger: Logger, report: (error: ConfigError) => void, isClosed: () => boolean) {
    this.#service = service;
    this.#store = store;
    this.#logger = logger;
    this.#report = report;
    this.#isClosed = isClosed;
  }

  apply(kind: 'write' | 'remove', committed: Committed | undefined): void {
    const hub = committed?.hub;
    const service = this.#service;
    const done =
      kind === 'remove'
        ? this.#store.remove(service)
        : hub &&
          this.#store.write({
            service,
            config: hub.config,
            version: hub.version,
            updatedAt: hub.updatedAt,
            revision: hub.revision,
            etag: hub.etag,
            droppedCriticalPaths: committed?.droppedCriticalPaths ?? [],
          });
    done?.then(
      () => {
        this.#failing = false;
      },
      (cause: unknown) => this.#failed(cause),
    );
  }

  #failed(cause: unknown): void {
    this.#logger.warn({ service: this.#service, err: describe(cause) }, 'could not write last-known-good snapshot');
    if (this.#failing || this.#isClosed()) return;
    this.#failing = true;
    this.#report(
      new ConfigError('SNAPSHOT_WRITE_FAILED', `could not write the last-known-good snapshot of ${this.#service}: ${describe(cause)}`, {
        service: this.#service,
        cause,
      }),
    );
  }
}
