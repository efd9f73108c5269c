import type { ChangeNotice } from './change-feed.js';
import type { ConfigRow } from './types.js';

/** A row as GET serves it: the ETag and the JSON body, computed once per revision. */
export interface CachedDocument {
  readonly row: ConfigRow;
  readonly etag: string;
  readonly body: string;
}

export interface ReadCacheOptions {
  /** A read that starts after the call (SqlStore.get): what a miss costs. */
  load(service: string): Promise<ConfigRow | null>;
  /** The ETag and the body of an active row (routes/context.ts). */
  render(row: ConfigRow): { etag: string; body: string };
  /** Services held (found or not); the oldest entry goes first. @default 10_000 */
  maxEntries?: number | undefined;
  /**
   * An entry older than this is read again, notice or not: the bound on what a change that notifies
   * nobody (a restore with `--disable-triggers`, a trigger dropped by hand) can leave behind. @default 30_000
   */
  maxAgeMs?: number | undefined;
  now?: (() => number) | undefined;
}

export interface ReadCacheStats {
  /** Whether reads are served from memory (the change feed is listening). */
  serving: boolean;
  entries: number;
  hits: number;
  misses: number;
  /** Reads that went to the database because the feed was not listening. */
  bypassed: number;
  /** Entries dropped by a change notice. */
  invalidations: number;
}

interface Entry {
  row: ConfigRow | null;
  /** Rendered at the first `document()` of the entry (`get()` callers need only the row); `null`: absent or deleted. */
  doc?: CachedDocument | null;
  /** `now()` when read. */
  at: number;
}

interface LastNotice {
  /** Clock value when it came. */
  at: number;
  /** Clock value of the notice before it (0: none). */
  before: number;
  /** `revision:updated_at` it named (`undefined`: not one row's commit). */
  commit: string | undefined;
}

const commitKey = (revision: number | null, updatedAt: number | null): string | undefined =>
  revision === null || updatedAt === null ? undefined : `${revision}:${updatedAt}`;

/** Loads that raced a change are retried this often, then answered uncached (a service written non-stop). */
const LOAD_ATTEMPTS = 3;

/**
 * The hub's reads from memory (issue 13): one entry per service, dropped by every change notice the
 * feed hears (a commit anywhere), replaced by the writer's own row (read-your-writes). Nothing is held
 * while the feed is not listening: a change it could not hear would be served for ever.
 *
 * Races are settled by a logical clock: a load installs its row only if no notice for the service (and
 * no reset) came after the load began; otherwise it reads again, so an answer given after a notice is
 * never older than that notice.
 */
export class ReadCache {
  readonly #load: (service: string) => Promise<ConfigRow | null>;
  readonly #render: (row: ConfigRow) => { etag: string; body: string };
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** The last notice per service (bounded by the services that exist: notices name rows). */
  readonly #changedAt = new Map<string, LastNotice>();
  #clock = 0;
  #resetAt = 0;
  #serving = false;
  #hits = 0;
  #misses = 0;
  #bypassed = 0;
  #invalidations = 0;

  constructor(options: ReadCacheOptions) {
    this.#load = options.load;
    this.#render = options.render;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#maxAgeMs = options.maxAgeMs ?? 30_000;
    this.#now = options.now ?? performance.now.bind(performance);
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1) throw new TypeError('maxEntries must be a positive integer');
    if (!Number.isFinite(this.#maxAgeMs) || this.#maxAgeMs <= 0) throw new TypeError('maxAgeMs must be a positive number');
  }

  /**
   * The feed's state: `true` once it listens (again), `false` when it stops. Either way what is held is
   * dropped: while not listening nothing is held; coming back, changes made in the gap were not heard.
   */
  setServing(serving: boolean): void {
    this.#serving = serving;
    this.#resetAt = ++this.#clock;
    this.#entries.clear();
    this.#changedAt.clear();
  }

  /** A committed change, from the feed. */
  changed(notice: ChangeNotice): void {
    if (notice.kind === 'all') {
      this.setServing(this.#serving);
      return;
    }
    const held = this.#entries.get(notice.service)?.row;
    // The notice of the row this replica wrote and already holds (read-your-writes): nothing to drop.
    if (held != null && held.revision === notice.revision && held.updated_at === notice.updatedAt) return;
    this.#noteChange(notice.service, commitKey(notice.revision, notice.updatedAt));
    if (this.#entries.delete(notice.service)) this.#invalidations++;
  }

  /** Taken before a write of `service` starts; handed to `written` with its result. */
  ticket(): number {
    return this.#clock;
  }

  /**
   * The row a write of this replica committed. Held unless a notice came since the write began (that
   * notice may be a later commit elsewhere: the next read goes to the database).
   */
  written(row: ConfigRow, ticket: number): void {
    const service = row.service_name;
    const last = this.#changedAt.get(service);
    const own = commitKey(row.revision, row.updated_at);
    // The one notice since the write began may be this very commit's (PGlite delivers it before the
    // write returns): that is no race.
    const raced = this.#resetAt > ticket || (last !== undefined && last.at > ticket && !(last.commit === own && last.before <= ticket));
    // In-flight loads began before this commit: none of them may install its (older) row.
    this.#noteChange(service, own);
    this.#entries.delete(service);
    if (this.#serving && !raced) this.#hold(service, row);
  }

  /** The row (`null` when absent). `minRevision`: a held row older than that is read again. */
  async get(service: string, minRevision?: number): Promise<ConfigRow | null> {
    return (await this.#entry(service, minRevision)).row;
  }

  /** The active row as GET serves it (`null`: absent or deleted). */
  async document(service: string, minRevision?: number): Promise<CachedDocument | null> {
    const entry = await this.#entry(service, minRevision);
    if (entry.doc === undefined) entry.doc = entry.row === null || !entry.row.active ? null : { row: entry.row, ...this.#render(entry.row) };
    return entry.doc;
  }

  stats(): ReadCacheStats {
    return {
      serving: this.#serving,
      entries: this.#entries.size,
      hits: this.#hits,
      misses: this.#misses,
      bypassed: this.#bypassed,
      invalidations: this.#invalidations,
    };
  }

  #entry(service: string, minRevision: number | undefined): Entry | Promise<Entry> {
    if (!this.#serving) {
      this.#bypassed++;
      return this.#load(service).then((row) => this.#entryOf(row));
    }
    const held = this.#entries.get(service);
    if (
      held !== undefined &&
      (minRevision === undefined || (held.row?.revision ?? 0) >= minRevision) &&
      this.#now() - held.at < this.#maxAgeMs
    ) {
      this.#hits++;
      return held;
    }
    this.#misses++;
    return this.#loadAndHold(service);
  }

  async #loadAndHold(service: string): Promise<Entry> {
    for (let attempt = 1; ; attempt++) {
      const began = this.#clock;
      const row = await this.#load(service);
      if (this.#serving && !this.#racedSince(service, began)) return this.#hold(service, row);
      // A notice came while the query ran: the row may predate it. Read again (a read that starts now).
      if (attempt >= LOAD_ATTEMPTS || !this.#serving) return this.#entryOf(row);
    }
  }

  #racedSince(service: string, since: number): boolean {
    return this.#resetAt > since || (this.#changedAt.get(service)?.at ?? 0) > since;
  }

  #noteChange(service: string, commit: string | undefined): void {
    const before = this.#changedAt.get(service)?.at ?? 0;
    this.#changedAt.set(service, { at: ++this.#clock, before, commit });
  }

  #hold(service: string, row: ConfigRow | null): Entry {
    const entry = this.#entryOf(row);
    this.#entries.delete(service);
    this.#entries.set(service, entry);
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return entry;
  }

  #entryOf(row: ConfigRow | null): Entry {
    return { row, at: this.#now() };
  }
}
