/**
 * Consumer schemas (docs/fleet.md §2): content-addressed uploads, stored in `config_schemas`, compiled
 * once per hash with Ajv (JSON Schema 2020-12) and kept in a bounded cache; hashes not in the cache are
 * loaded from the table on demand. Also answers, cheaply, which reported hashes the hub does not know.
 */
import { createHash } from 'node:crypto';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { LRUCache } from 'lru-cache';
import { type SchemaUpload, schemaUploadSchema, type Unrepresented } from '../../../src/fleet/wire.js';
import { canonicalJson } from '../../../src/hub/notice-signature.js';
import { HubError } from '../errors.js';
import type { SqlExecutor } from '../store/sql-driver.js';

export interface CompiledSchema {
  hash: string;
  validate: ValidateFunction;
  unrepresented: readonly Unrepresented[];
}

export interface SchemaRegistryOptions {
  db: SqlExecutor;
  /** Compiled validators kept. @default 256 */
  maxCompiled?: number | undefined;
  /** How long the hub trusts "not in the table" for a hash before it asks the table again. @default 10_000 */
  unknownRecheckMs?: number | undefined;
  now?: (() => number) | undefined;
}

/** Hashes remembered as known / as absent (each a bounded Map, oldest out first). */
const MAX_REMEMBERED = 10_000;

export const schemaHashOf = (upload: unknown): string => createHash('sha256').update(canonicalJson(upload), 'utf8').digest('hex');

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= MAX_REMEMBERED) map.delete(map.keys().next().value as string);
  map.set(key, value);
}

export class SchemaRegistry {
  readonly #db: SqlExecutor;
  // One Ajv for every schema: `addUsedSchema: false` keeps uploads' `$id`s out of its global registry (two
  // uploads may share one), and a validator evicted from the cache is removed from Ajv's own cache too.
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true, addUsedSchema: false, logger: false });
  readonly #compiled: LRUCache<string, CompiledSchema>;
  readonly #known = new Map<string, true>();
  readonly #absentAt = new Map<string, number>();
  readonly #recheckMs: number;
  readonly #now: () => number;
  #failedAt = Number.NEGATIVE_INFINITY;

  constructor(options: SchemaRegistryOptions) {
    this.#db = options.db;
    this.#recheckMs = options.unknownRecheckMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#compiled = new LRUCache<string, CompiledSchema>({
      max: options.maxCompiled ?? 256,
      dispose: (compiled) => this.#ajv.removeSchema(compiled.validate.schema as object),
    });
  }

  /**
   * `PUT /api/v1/schemas/{hash}`: checks the body and its hash, compiles the schema, stores it. A hash the
   * hub holds compiled is not compiled nor stored again (the content names itself).
   */
  async put(hash: string, body: unknown): Promise<{ created: boolean }> {
    const parsed = schemaUploadSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new HubError(400, `invalid schema upload: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
    }
    let actual: string;
    try {
      actual = schemaHashOf(body);
    } catch (error) {
      // canonicalJson refuses more than 128 levels (a hub configured with maxDepth above that).
      throw new HubError(400, `invalid schema upload: ${error instanceof Error ? error.message : 'not JSON'}`);
    }
    if (actual !== hash) throw new HubError(400, `hash mismatch: the body hashes to ${actual} (sha256 of its canonical JSON)`);
    if (this.#compiled.has(hash)) return { created: false };
    const compiled = this.#compile(hash, parsed.data);
    const rows = await this.#db.query<{ hash: string }>(
      'INSERT INTO config_schemas (hash, body) VALUES ($1, $2::jsonb) ON CONFLICT (hash) DO NOTHING RETURNING hash',
      [hash, JSON.stringify(body)],
    );
    this.#compiled.set(hash, compiled);
    this.#markKnown(hash);
    return { created: rows.length > 0 };
  }

  /** The compiled schemas of `hashes` (cache, then the table); a hash the hub does not hold is absent. */
  async load(hashes: readonly string[]): Promise<Map<string, CompiledSchema>> {
    const found = new Map<string, CompiledSchema>();
    const missing: string[] = [];
    for (const hash of hashes) {
      const hit = this.#compiled.get(hash);
      if (hit === undefined) missing.push(hash);
      else found.set(hash, hit);
    }
    if (missing.length === 0) return found;
    const rows = await this.#db.query<{ hash: string; body: SchemaUpload }>(
      'SELECT hash, body FROM config_schemas WHERE hash = ANY($1::text[])',
      [missing],
    );
    for (const row of rows) {
      const hash = row.hash.trim();
      try {
        const compiled = this.#compile(hash, schemaUploadSchema.parse(row.body));
        this.#compiled.set(hash, compiled);
        this.#markKnown(hash);
        found.set(hash, compiled);
      } catch {
        // Stored by another hub version and not compilable here: treated as unknown (not checked).
      }
    }
    return found;
  }

  /**
   * Which of `hashes` the hub does not know, without I/O: `unknown` (absent from the table when last
   * asked, within `unknownRecheckMs`) and `recheck` (not asked recently: `refresh` them first).
   */
  classify(hashes: Iterable<string>, now: number = this.#now()): { unknown: string[]; recheck: string[] } {
    const unknown: string[] = [];
    const recheck: string[] = [];
    // The table did not answer lately: say nothing (an upload would fail too) until it is asked again.
    const quiet = now - this.#failedAt < this.#recheckMs;
    for (const hash of hashes) {
      if (this.#known.has(hash)) continue;
      const at = this.#absentAt.get(hash);
      if (at !== undefined && now - at < this.#recheckMs) unknown.push(hash);
      else if (!quiet) recheck.push(hash);
    }
    return { unknown, recheck };
  }

  /**
   * Asks the table about `hashes`; each one is then known, or absent as of now. A failure rejects and
   * quiets `classify` for one recheck interval.
   */
  async refresh(hashes: readonly string[], now: number = this.#now()): Promise<void> {
    if (hashes.length === 0) return;
    for (const hash of hashes) remember(this.#absentAt, hash, now);
    let rows: { hash: string }[];
    try {
      rows = await this.#db.query<{ hash: string }>('SELECT hash FROM config_schemas WHERE hash = ANY($1::text[])', [[...hashes]]);
    } catch (error) {
      for (const hash of hashes) this.#absentAt.delete(hash);
      this.#failedAt = now;
      throw error;
    }
    for (const row of rows) this.#markKnown(row.hash.trim());
  }

  #markKnown(hash: string): void {
    this.#absentAt.delete(hash);
    if (!this.#known.has(hash)) remember(this.#known, hash, true);
  }

  #compile(hash: string, upload: SchemaUpload): CompiledSchema {
    let validate: ValidateFunction;
    try {
      validate = this.#ajv.compile(upload.schema);
    } catch (error) {
      // Ajv caches a schema before it compiles it: drop the failed one, or every refused upload stayed.
      try {
        this.#ajv.removeSchema(upload.schema);
      } catch {}
      const message = error instanceof Error ? error.message : String(error);
      throw new HubError(400, `schema does not compile (JSON Schema 2020-12): ${message.slice(0, 300)}`);
    }
    return { hash, validate, unrepresented: upload.unrepresented };
  }
}
