/**
 * A database read for the scrape: single-flight, cached for `cacheMs` (a failure too), bounded by
 * `timeoutMs`. A scrape storm costs one query per `cacheMs`; a down or hung database costs a scrape at
 * most `timeoutMs` and never fails it (the caller reports `…_up 0`).
 */
export type ReadResult<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface CachedReadOptions {
  cacheMs: number;
  timeoutMs: number;
  now?: (() => number) | undefined;
}

export class CachedRead<T> {
  readonly #read: () => Promise<T>;
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #last: { at: number; result: ReadResult<T> } | undefined;
  #inflight: Promise<ReadResult<T>> | undefined;

  constructor(read: () => Promise<T>, options: CachedReadOptions) {
    this.#read = read;
    this.#cacheMs = options.cacheMs;
    this.#timeoutMs = options.timeoutMs;
    this.#now = options.now ?? Date.now;
  }

  /** The cached result while fresh, else the one read in flight, else a new read. Never rejects. */
  get(): Promise<ReadResult<T>> {
    const last = this.#last;
    if (last !== undefined && this.#now() - last.at < this.#cacheMs) return Promise.resolve(last.result);
    this.#inflight ??= this.#run().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #run(): Promise<ReadResult<T>> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`read timed out after ${this.#timeoutMs} ms`)), this.#timeoutMs);
      timer.unref();
    });
    let result: ReadResult<T>;
    try {
      result = { ok: true, value: await Promise.race([this.#read(), timeout]) };
    } catch (error) {
      result = { ok: false, error };
    } finally {
      clearTimeout(timer);
    }
    this.#last = { at: this.#now(), result };
    return result;
  }
}
