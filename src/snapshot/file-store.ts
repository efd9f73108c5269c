/**
 * Last-known-good snapshots on disk: the hub layer of one service per file (never env values), written
 * atomically (temp file + rename) with mode 0600. A corrupt, truncated or foreign file is reported and
 * ignored; reading never throws.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { sanitize } from '../layers/merge.js';
import { epochMsSchema, serviceNameSchema, wireConfigSchema } from '../hub/wire.js';

const SNAPSHOT_FORMAT = 1;

export interface Snapshot {
  service: string;
  /** The hub layer, critical paths already removed. */
  config: Record<string, unknown>;
  version: string;
  updatedAt: number;
  revision: number | undefined;
  etag: string | undefined;
  savedAt: number;
}

const snapshotFileSchema = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  service: serviceNameSchema,
  config: wireConfigSchema,
  version: z.string(),
  updated_at: epochMsSchema,
  revision: z.number().int().nonnegative().optional(),
  etag: z.string().optional(),
  saved_at: z.number(),
});

export interface SnapshotReadResult {
  snapshot: Snapshot | undefined;
  /** Why a file that exists was ignored. */
  problem?: ConfigError;
}

export class SnapshotStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  #file(service: string): string {
    // The name was validated against ^[a-z0-9-]+$, so it cannot walk out of the directory.
    return join(this.#dir, `${serviceNameSchema.parse(service)}.json`);
  }

  async read(service: string): Promise<SnapshotReadResult> {
    let text: string;
    try {
      text = await readFile(this.#file(service), 'utf8');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { snapshot: undefined };
      return { snapshot: undefined, problem: invalid(service, 'snapshot unreadable', cause) };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      return { snapshot: undefined, problem: invalid(service, 'snapshot is not valid JSON (truncated?)', cause) };
    }
    const parsed = snapshotFileSchema.safeParse(json);
    if (!parsed.success) {
      return { snapshot: undefined, problem: invalid(service, 'snapshot has the wrong shape', parsed.error) };
    }
    if (parsed.data.service !== service) {
      return { snapshot: undefined, problem: invalid(service, `snapshot belongs to ${parsed.data.service}`) };
    }
    const d = parsed.data;
    return {
      snapshot: {
        service,
        config: sanitize(d.config),
        version: d.version,
        updatedAt: d.updated_at,
        revision: d.revision,
        etag: d.etag,
        savedAt: d.saved_at,
      },
    };
  }

  /** Writes in progress; `idle()` waits for them so `close()` never leaves a temp file being written. */
  readonly #pending = new Set<Promise<void>>();

  write(snapshot: Omit<Snapshot, 'savedAt'>): Promise<void> {
    const run = this.#write(snapshot);
    this.#pending.add(run);
    const forget = (): void => {
      this.#pending.delete(run);
    };
    run.then(forget, forget);
    return run;
  }

  /** Resolves once every write started so far has settled (successfully or not). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  async #write(snapshot: Omit<Snapshot, 'savedAt'>): Promise<void> {
    const file = this.#file(snapshot.service);
    const body = JSON.stringify({
      format: SNAPSHOT_FORMAT,
      service: snapshot.service,
      config: snapshot.config,
      version: snapshot.version,
      updated_at: snapshot.updatedAt,
      revision: snapshot.revision,
      etag: snapshot.etag,
      saved_at: Date.now(),
    });
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temp, body, { mode: 0o600 });
      await rename(temp, file);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw error;
    }
  }
}

function invalid(service: string, message: string, cause?: unknown): ConfigError {
  return new ConfigError('SNAPSHOT_INVALID', `${message}; ignored`, { service, cause });
}
