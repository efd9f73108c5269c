/**
 * Last-known-good snapshots on disk: the hub layer of one service per file (never env values), written
 * atomically (temp file + rename) with mode 0600. Writes and removals of one service run one at a time in
 * the order they were issued, so the newest issued one is what lands on disk. Reading never throws and never
 * hangs: a corrupt, truncated, foreign, oversize, too deeply nested or non-regular file (a FIFO, a symlink to
 * /dev/zero) is reported as `SNAPSHOT_INVALID` and ignored, and a read past its deadline gives up the same way.
 */
import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { epochMsSchema, serviceNameSchema, wireConfigSchema } from '../hub/wire.js';
import { jsonTextExceedsDepth, MAX_CONFIG_DEPTH, valueExceedsDepth } from '../json-depth.js';
import { sanitize } from '../layers/merge.js';

const SNAPSHOT_FORMAT = 1;

/** Largest snapshot file read (the transport's default `maxResponseBytes`). */
export const DEFAULT_SNAPSHOT_MAX_BYTES = 4 * 1024 * 1024;
/** Deadline of one `read()`; well inside the default 3 s startup budget. */
export const DEFAULT_SNAPSHOT_READ_TIMEOUT_MS = 1_000;

// Not defined on Windows: there a FIFO cannot sit at the path and symlinks need privileges.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0);
const READ_CHUNK_BYTES = 64 * 1024;

export interface SnapshotStoreOptions {
  /** A larger file is ignored (`SNAPSHOT_INVALID`); no more than this many bytes (+1) are ever read. @default 4 MiB */
  maxBytes?: number;
  /** A `read()` still unfinished after this long reports `SNAPSHOT_INVALID` (the file is left alone). @default 1000 */
  readTimeoutMs?: number;
}

export interface SnapshotReadOptions {
  /** Deadline of this read (e.g. what is left of the startup budget) instead of the store's `readTimeoutMs`. */
  timeoutMs?: number | undefined;
  /** Ends the read early (e.g. when the client closes): it then reports `SNAPSHOT_INVALID`. */
  signal?: AbortSignal | undefined;
}

export interface Snapshot {
  service: string;
  /** The hub layer, critical paths already removed. */
  config: Record<string, unknown>;
  version: string;
  updatedAt: number;
  revision: number | undefined;
  etag: string | undefined;
  savedAt: number;
  /** Critical paths whose hub value was dropped (paths only, never values); absent in older files. */
  droppedCriticalPaths?: string[] | undefined;
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
  dropped_critical_paths: z.array(z.string()).optional(),
});

export interface SnapshotReadResult {
  snapshot: Snapshot | undefined;
  /** Why a file that exists was ignored. */
  problem?: ConfigError;
}

/** The writes and removals of one service, chained; `latest` is the id of the newest one issued. */
interface ServiceQueue {
  tail: Promise<void>;
  latest: number;
}

export class SnapshotStore {
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #readTimeoutMs: number;
  readonly #queues = new Map<string, ServiceQueue>();
  #nextOp = 0;
  /** Writes and removals in progress or queued; `idle()` waits for them so `close()` never leaves a temp file being written. */
  readonly #pending = new Set<Promise<void>>();

  constructor(dir: string, options: SnapshotStoreOptions = {}) {
    this.#dir = dir;
    this.#maxBytes = positiveInteger('maxBytes', options.maxBytes, DEFAULT_SNAPSHOT_MAX_BYTES);
    this.#readTimeoutMs = positiveInteger('readTimeoutMs', options.readTimeoutMs, DEFAULT_SNAPSHOT_READ_TIMEOUT_MS);
  }

  #file(service: string): string {
    // The name was validated against ^[a-z0-9-]+$, so it cannot walk out of the directory.
    return join(this.#dir, `${serviceNameSchema.parse(service)}.json`);
  }

  /**
   * The snapshot of `service`, or why the file there was ignored. Never rejects, and settles within
   * `readTimeoutMs` or when `options.signal` aborts, whichever comes first.
   */
  read(service: string, options: SnapshotReadOptions = {}): Promise<SnapshotReadResult> {
    const { signal } = options;
    const timeoutMs = Math.max(0, options.timeoutMs ?? this.#readTimeoutMs);
    const gaveUp = (why: string): SnapshotReadResult => ({ snapshot: undefined, problem: invalid(service, why, signal?.reason) });
    if (signal?.aborted) return Promise.resolve(gaveUp('snapshot read abandoned'));
    return new Promise<SnapshotReadResult>((resolve) => {
      const stop = { requested: false };
      const finish = (result: SnapshotReadResult): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        stop.requested = true;
        resolve(result);
      };
      const timer = setTimeout(() => finish(gaveUp(`snapshot not read within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      const onAbort = (): void => finish(gaveUp('snapshot read abandoned'));
      signal?.addEventListener('abort', onAbort, { once: true });
      // Goes on in the background after a deadline only to close its file; its result is then dropped.
      this.#read(service, stop).then(finish, (cause: unknown) => finish({ snapshot: undefined, problem: invalid(service, 'snapshot unreadable', cause) }));
    });
  }

  async #read(service: string, stop: { requested: boolean }): Promise<SnapshotReadResult> {
    const problem = (message: string, cause?: unknown): SnapshotReadResult => ({ snapshot: undefined, problem: invalid(service, message, cause) });
    let handle: FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever (in a libuv pool thread).
      handle = await open(this.#file(service), OPEN_FLAGS);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { snapshot: undefined };
      // Our own writes rename a regular file into place; a symlink there is somebody else's.
      if (code === 'ELOOP') return problem('snapshot is a symbolic link', cause);
      return problem('snapshot unreadable', cause);
    }
    let text: string;
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) return problem('snapshot is not a regular file');
      if (stat.size > this.#maxBytes) return problem(`snapshot is larger than ${this.#maxBytes} bytes`);
      const read = await readAtMost(handle, this.#maxBytes + 1, stat.size + 1, stop);
      if (read === undefined) return problem('snapshot read abandoned');
      if (read.length > this.#maxBytes) return problem(`snapshot is larger than ${this.#maxBytes} bytes`);
      text = read.toString('utf8');
    } catch (cause) {
      return problem('snapshot unreadable', cause);
    } finally {
      await handle.close().catch(() => undefined);
    }
    // Config at level 2 under the file's own object; checked before parsing, as the text of a
    // 2-million-level file parses for half a second and sanitize() would overflow the stack on it.
    if (jsonTextExceedsDepth(text, MAX_CONFIG_DEPTH + 1)) return problem(`snapshot is nested deeper than ${MAX_CONFIG_DEPTH} levels`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      return problem('snapshot is not valid JSON (truncated?)', cause);
    }
    const parsed = snapshotFileSchema.safeParse(json);
    if (!parsed.success) return problem('snapshot has the wrong shape', parsed.error);
    if (parsed.data.service !== service) return problem(`snapshot belongs to ${parsed.data.service}`);
    const d = parsed.data;
    // A config stored as a JSON string escaped the text scan.
    if (valueExceedsDepth(d.config, MAX_CONFIG_DEPTH)) return problem(`snapshot is nested deeper than ${MAX_CONFIG_DEPTH} levels`);
    return {
      snapshot: {
        service,
        config: sanitize(d.config),
        version: d.version,
        updatedAt: d.updated_at,
        revision: d.revision,
        etag: d.etag,
        savedAt: d.saved_at,
        ...(d.dropped_critical_paths === undefined ? {} : { droppedCriticalPaths: d.dropped_critical_paths }),
      },
    };
  }

  /**
   * Persists `snapshot` after every write or removal of the same service issued before it; the newest
   * issued one is what stays on disk. Rejects when the write fails. A write superseded by a newer one while
   * it waits is skipped and resolves when its turn comes (the newer one reports for both).
   */
  write(snapshot: Omit<Snapshot, 'savedAt'>): Promise<void> {
    let file: string;
    try {
      file = this.#file(snapshot.service);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#enqueue(snapshot.service, () => this.#write(file, snapshot));
  }

  /**
   * Deletes the snapshot of `service` (e.g. the hub answered 404: a deleted config must not come back from
   * disk after a restart), in the same per-service order as writes. A missing file is not an error.
   */
  remove(service: string): Promise<void> {
    let file: string;
    try {
      file = this.#file(service);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#enqueue(service, () => rm(file, { force: true }));
  }

  /** Resolves once every write and removal issued so far has settled (successfully or not). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  #enqueue(service: string, operation: () => Promise<void>): Promise<void> {
    const id = ++this.#nextOp;
    let queue = this.#queues.get(service);
    if (!queue) {
      queue = { tail: Promise.resolve(), latest: id };
      this.#queues.set(service, queue);
    }
    queue.latest = id;
    const current = queue;
    // Each operation leaves the file fully determined, so one superseded while it waits has nothing to add.
    const run = current.tail.then(() => (current.latest === id ? operation() : undefined));
    current.tail = run.catch(() => undefined);
    this.#pending.add(run);
    const forget = (): void => {
      this.#pending.delete(run);
      if (current.latest === id && this.#queues.get(service) === current) this.#queues.delete(service);
    };
    run.then(forget, forget);
    return run;
  }

  async #write(file: string, snapshot: Omit<Snapshot, 'savedAt'>): Promise<void> {
    const body = JSON.stringify({
      format: SNAPSHOT_FORMAT,
      service: snapshot.service,
      config: snapshot.config,
      version: snapshot.version,
      updated_at: snapshot.updatedAt,
      revision: snapshot.revision,
      etag: snapshot.etag,
      saved_at: Date.now(),
      dropped_critical_paths: snapshot.droppedCriticalPaths,
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

/**
 * Up to `limit` bytes of the file, read in chunks (the first sized to the file, so a normal snapshot is one
 * read); `undefined` once `stop.requested`. Bounded even if the file grows while it is read.
 */
async function readAtMost(handle: FileHandle, limit: number, expected: number, stop: { requested: boolean }): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    if (stop.requested) return undefined;
    const want = Math.min(limit - total, Math.max(READ_CHUNK_BYTES, expected - total));
    const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(want), 0, want, null);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    total += bytesRead;
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) throw new TypeError(`SnapshotStore: ${name} must be a positive integer`);
  return value;
}

function invalid(service: string, message: string, cause?: unknown): ConfigError {
  return new ConfigError('SNAPSHOT_INVALID', `${message}; ignored`, { service, cause });
}
