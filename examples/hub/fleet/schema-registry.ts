/**
 * Consumer schemas (docs/fleet.md §2): content-addressed uploads, stored in `config_schemas`, bounded
 * (schema-bounds.ts), compiled once per hash with Ajv (JSON Schema 2020-12) and kept in a bounded cache;
 * hashes not in the cache are loaded from the table on demand. Also answers, cheaply, which reported
 * hashes the hub does not know, and remembers for a while the hashes it refused (so that it does not ask
 * for them again).
 */
import { createHash } from 'node:crypto';
import { _, Ajv2020, Name, type ValidateFunction } from 'ajv/dist/2020.js';
import { LRUCache } from 'lru-cache';
import { type SchemaUpload, schemaUploadSchema, type Unrepresented } from '../../../src/fleet/wire.js';
import { canonicalJson } from '../../../src/hub/notice-signature.js';
import { HubError } from '../errors.js';
import type { SqlExecutor } from '../store/sql-driver.js';
import { boundSchema, type HubUnchecked, ISSUE_BUDGET_KEYWORD } from './schema-bounds.js';
import { boundedRegExp } from './safe-pattern.js';

export interface CompiledSchema {
  hash: string;
  validate: ValidateFunction;
  unrepresented: readonly Unrepresented[];
  /** What the hub removed from the schema before compiling it (unsafe patterns, quadratic keywords). */
  hubUnchecked: readonly HubUnchecked[];
  /** Weighted schema objects applied to one value at most, per config depth (schema-bounds.ts). */
  cost: Float64Array;
}

export interface SchemaRegistryOptions {
  db: SqlExecutor;
  /** Compiled validators kept. @default 64 */
  maxCompiled?: number | undefined;
  /** How long the hub trusts "not in the table" for a hash before it asks the table again. @default 10_000 */
  unknownRecheckMs?: number | undefined;
  /** How long a refused hash is not asked for again (nor compiled again). @default 600_000 */
  refusedMs?: number | undefined;
  now?: (() => number) | undefined;
}

/** The canonical JSON of an upload the hub accepts, at most (the protocol's body bound is 256 KiB). */
export const MAX_HUB_SCHEMA_BYTES = 64 * 1024;
/** Compiled validators kept by default (each is a generated function; see docs/fleet.md "Limits"). */
export const DEFAULT_MAX_COMPILED = 64;
export const DEFAULT_REFUSED_MS = 600_000;
/** Hashes remembered as known / as absent / as refused (each a bounded Map, oldest out first). */
const MAX_REMEMBERED = 10_000;

export const schemaHashOf = (upload: unknown): string => createHash('sha256').update(canonicalJson(upload), 'utf8').digest('hex');

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= MAX_REMEMBERED) map.delete(map.keys().next().value as string);
  map.set(key, value);
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One Ajv for every schema. `addUsedSchema: false` keeps uploads' `$id`s out of its global registry (two
 * uploads may share one), and a validator evicted from the cache is removed from Ajv's own cache too.
 * Settings chosen so that the hub is never stricter than the zod schema the client checks:
 * - `multipleOfPrecision: 9`: zod accepts `0.3` for `multipleOf(0.1)` (0.3 / 0.1 is 2.9999999999999996);
 * - patterns run as zod runs the client's (flagless) regexes: without `u` unless they need it (`\p{…}`,
 *   safe-pattern.ts compilePattern), and never on strings over 256 characters.
 * `allErrors` (every issue of a consumer) also keeps the generated code flat: without it Ajv nests a block
 * per property, and a schema of 2 000 properties overflows the stack. The errors it collects are bounded
 * by the cost a check may have (consumer-check.ts).
 */
function newAjv(): Ajv2020 {
  const ajv = new Ajv2020({
    strict: false,
    allErrors: true,
    addUsedSchema: false,
    logger: false,
    multipleOfPrecision: 9,
    code: { regExp: boundedRegExp },
  });
  // On every schema object of a compiled copy (schema-bounds.ts): stop a check that has collected more
  // than MAX_COLLECTED_ISSUES errors (Ajv's `errors` counter of the generated function).
  // Its value is `true`, or the most properties a valid object may have (`additionalProperties: false`
  // or `propertyNames: false`): an object with MAX_COLLECTED_ISSUES more is stopped before Ajv lists each.
  // Untyped: Ajv runs it before the schema object's other keywords.
  ajv.addKeyword({
    keyword: ISSUE_BUDGET_KEYWORD,
    schemaType: ['boolean', 'number'],
    code(cxt) {
      const stop = () => cxt.gen.throw(_`new Error(${ISSUE_LIMIT_MESSAGE})`);
      cxt.gen.if(_`${new Name('errors')} > ${MAX_COLLECTED_ISSUES}`, stop);
      if (typeof cxt.schema === 'number') {
        const { data } = cxt;
        cxt.gen.if(_`${data} && typeof ${data} == "object" && !Array.isArray(${data}) && Object.keys(${data}).length > ${cxt.schema + MAX_COLLECTED_ISSUES}`, stop);
      }
    },
  });
  return ajv;
}

/** Errors a check may collect (including those of failing `anyOf` branches it will drop): ≈ 10–25 ms, 1.5 MB. */
export const MAX_COLLECTED_ISSUES = 5000;
/** What a check stopped at `MAX_COLLECTED_ISSUES` throws. */
export const ISSUE_LIMIT_MESSAGE = 'central-hub: the check collected too many issues';

export class SchemaRegistry {
  readonly #db: SqlExecutor;
  readonly #ajv = newAjv();
  readonly #compiled: LRUCache<string, CompiledSchema>;
  readonly #known = new Map<string, true>();
  readonly #absentAt = new Map<string, number>();
  readonly #refused = new Map<string, { at: number; error: HubError }>();
  readonly #recheckMs: number;
  readonly #refusedMs: number;
  readonly #now: () => number;
  #failedAt = Number.NEGATIVE_INFINITY;

  constructor(options: SchemaRegistryOptions) {
    this.#db = options.db;
    this.#recheckMs = options.unknownRecheckMs ?? 10_000;
    this.#refusedMs = options.refusedMs ?? DEFAULT_REFUSED_MS;
    this.#now = options.now ?? Date.now;
    this.#compiled = new LRUCache<string, CompiledSchema>({
      max: options.maxCompiled ?? DEFAULT_MAX_COMPILED,
      dispose: (compiled) => this.#ajv.removeSchema(compiled.validate.schema as object),
    });
  }

  /** Compiled validators held now. */
  get compiledCount(): number {
    return this.#compiled.size;
  }

  /**
   * `PUT /api/v1/schemas/{hash}`: checks the body and its hash, bounds and compiles the schema, stores it.
   * A hash the hub holds compiled is not compiled nor stored again (the content names itself); a hash it
   * refused lately is refused again at once, with the same answer.
   */
  async put(hash: string, body: unknown): Promise<{ created: boolean }> {
    let canonical: string;
    try {
      canonical = canonicalJson(body);
    } catch (error) {
      // canonicalJson refuses more than 128 levels (a hub configured with maxDepth above that).
      throw new HubError(400, `invalid schema upload: ${error instanceof Error ? error.message : 'not JSON'}`);
    }
    const actual = createHash('sha256').update(canonical, 'utf8').digest('hex');
    if (actual !== hash) throw new HubError(400, `hash mismatch: the body hashes to ${actual} (sha256 of its canonical JSON)`);
    if (this.#compiled.has(hash)) return { created: false };
    const now = this.#now();
    const refused = this.#refused.get(hash);
    if (refused !== undefined && now - refused.at < this.#refusedMs) throw refused.error;
    let compiled: CompiledSchema;
    try {
      const bytes = Buffer.byteLength(canonical, 'utf8');
      if (bytes > MAX_HUB_SCHEMA_BYTES) {
        throw new HubError(413, `schema refused: its canonical JSON is ${bytes} bytes, more than this hub's ${MAX_HUB_SCHEMA_BYTES}`);
      }
      const parsed = schemaUploadSchema.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new HubError(400, `invalid schema upload: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
      }
      compiled = this.#compile(hash, parsed.data);
    } catch (error) {
      // The content names itself: the same hash is refused again, for the same reason.
      if (error instanceof HubError) this.#refuse(hash, error, now);
      throw error;
    }
    const rows = await this.#db.query<{ hash: string }>(
      'INSERT INTO config_schemas (hash, body) VALUES ($1, $2::jsonb) ON CONFLICT (hash) DO NOTHING RETURNING hash',
      [hash, JSON.stringify(body)],
    );
    this.#compiled.set(hash, compiled);
    this.#markKnown(hash);
    return { created: rows.length > 0 };
  }

  /**
   * The compiled schemas of `hashes` (cache, then the table); a hash the hub does not hold, or refused,
   * is absent. Compiling yields to the event loop between schemas.
   */
  async load(hashes: readonly string[]): Promise<Map<string, CompiledSchema>> {
    const found = new Map<string, CompiledSchema>();
    const missing: string[] = [];
    const now = this.#now();
    for (const hash of hashes) {
      const hit = this.#compiled.get(hash);
      if (hit !== undefined) found.set(hash, hit);
      else if (!this.#isRefused(hash, now)) missing.push(hash);
    }
    if (missing.length === 0) return found;
    const rows = await this.#db.query<{ hash: string; body: SchemaUpload }>(
      'SELECT hash, body FROM config_schemas WHERE hash = ANY($1::text[])',
      [missing],
    );
    let compiledOne = false;
    for (const row of rows) {
      const hash = row.hash.trim();
      // Another write may have compiled it while this one waited.
      const hit = this.#compiled.get(hash);
      if (hit !== undefined) {
        found.set(hash, hit);
        continue;
      }
      if (compiledOne) await yieldToEventLoop();
      compiledOne = true;
      try {
        const compiled = this.#compile(hash, schemaUploadSchema.parse(row.body));
        this.#compiled.set(hash, compiled);
        this.#markKnown(hash);
        found.set(hash, compiled);
      } catch (error) {
        // Stored by another hub version (or before these bounds) and not compilable here: treated as
        // unknown (not checked), and not compiled again for a while.
        this.#refuse(hash, error instanceof HubError ? error : new HubError(400, 'schema refused: not a valid upload'), now);
      }
    }
    return found;
  }

  /**
   * Which of `hashes` the hub does not know, without I/O: `unknown` (absent from the table when last
   * asked, within `unknownRecheckMs`) and `recheck` (not asked recently: `refresh` them first). A hash
   * refused within `refusedMs` is neither: asking for it again would only bring the same upload.
   */
  classify(hashes: Iterable<string>, now: number = this.#now()): { unknown: string[]; recheck: string[] } {
    const unknown: string[] = [];
    const recheck: string[] = [];
    // The table did not answer lately: say nothing (an upload would fail too) until it is asked again.
    const quiet = now - this.#failedAt < this.#recheckMs;
    for (const hash of hashes) {
      if (this.#known.has(hash) || this.#isRefused(hash, now)) continue;
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

  #isRefused(hash: string, now: number): boolean {
    const refused = this.#refused.get(hash);
    if (refused === undefined) return false;
    if (now - refused.at < this.#refusedMs) return true;
    this.#refused.delete(hash);
    return false;
  }

  #refuse(hash: string, error: HubError, now: number): void {
    remember(this.#refused, hash, { at: now, error });
    this.#absentAt.delete(hash);
  }

  #markKnown(hash: string): void {
    this.#absentAt.delete(hash);
    if (!this.#known.has(hash)) remember(this.#known, hash, true);
  }

  #compile(hash: string, upload: SchemaUpload): CompiledSchema {
    let bounded: ReturnType<typeof boundSchema>;
    try {
      bounded = boundSchema(upload.schema);
    } catch (error) {
      if (error instanceof HubError) throw error;
      // A stack overflow on a pathological shape the bounds did not foresee: refused all the same.
      throw new HubError(400, 'schema refused: too complex to bound');
    }
    // Without a root `$id`, Ajv cannot resolve `"$ref": "#"` (zod's recursion at the root) when schemas
    // are kept out of its registry (`addUsedSchema: false`): give the copy one, named after the content.
    if (!Object.hasOwn(bounded.schema, '$id')) bounded.schema.$id = `urn:central-hub:schema:${hash}`;
    let validate: ValidateFunction;
    try {
      validate = this.#ajv.compile(bounded.schema);
    } catch (error) {
      // Ajv caches a schema before it compiles it: drop the failed one, or every refused upload stayed.
      try {
        this.#ajv.removeSchema(bounded.schema);
      } catch {}
      const message = error instanceof Error ? error.message : String(error);
      throw new HubError(400, `schema does not compile (JSON Schema 2020-12): ${message.slice(0, 300)}`);
    }
    // V8 compiles the generated function on its first call (tens of ms for a large one): here, not in a write.
    try {
      validate(null);
    } catch {}
    return { hash, validate, unrepresented: upload.unrepresented, hubUnchecked: bounded.unchecked, cost: bounded.cost };
  }
}
