/**
 * The JSON Schema of what a service's client accepts FROM THE HUB (docs/fleet.md §2), derived from its
 * definition: zod 4's `z.toJSONSchema` (input side, 2020-12), then critical (env) paths removed and every
 * property the defaults or env supply no longer required; the parts JSON Schema cannot express listed in
 * `unrepresented`. Built from code only (the schema, its defaults, the env mapping's keys), never from
 * environment values, so the export — and its hash — is the same on every instance of one build.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import { canonicalJson } from '../hub/notice-signature.js';
import { valueExceedsDepth } from '../json-depth.js';
import { deepFreeze, isPlainObject, type PlainObject } from '../layers/paths.js';
import type { Logger } from '../logger.js';
import type { ServiceDefinition } from '../options.js';
import { MAX_SCHEMA_BYTES, type SchemaUpload, type Unrepresented } from './wire.js';
import { relaxSchema, UNCHECKED_MARK } from './schema-relax.js';
import { configPathOf, criticalTree, defOf, findUnrepresented, isCritical, isLoose } from './zod-walk.js';

export interface SchemaExport {
  upload: SchemaUpload;
  /** The upload as sent: its canonical JSON, the text the hash is taken of. */
  body: string;
  /** Lowercase hex SHA-256 of `body`. */
  hash: string;
}

/** The upload's bound on nesting (docs/fleet.md §2). */
const MAX_SCHEMA_DEPTH = 64;
/** Annotations a loosened node keeps. */
const KEPT_ON_LOOSE = new Set(['description', 'title']);

/**
 * The export of one schema with its defaults and critical paths. Throws when zod cannot convert the schema
 * or the result cannot be sent (not JSON, larger than 256 KiB, nested deeper than 64).
 */
export function exportSchema(schema: z.ZodType, defaults: unknown, criticalPaths: readonly string[]): SchemaExport {
  const critical = criticalTree(criticalPaths);
  const seenByZod: Unrepresented[] = [];
  const json = z.toJSONSchema(schema, {
    io: 'input',
    target: 'draft-2020-12',
    // As `unrepresentable: 'any'` (the node becomes `{}`), also noting where zod found it.
    unrepresentable: ({ path }) => {
      const at = configPathOf(path);
      if (!isCritical(at, critical)) seenByZod.push({ path: at.join('.'), kind: 'unrepresentable' });
      return 'any';
    },
    // `.meta({ id })` would move a schema to `$defs` (and its defaults with it): inlined instead.
    metadata: META_WITHOUT_IDS,
    override: ({ zodSchema, jsonSchema }) => {
      const node = jsonSchema as PlainObject;
      loosen(zodSchema as unknown as z.ZodType, node);
      const type = defOf(zodSchema as unknown as z.ZodType).type;
      if (type === 'string') keepReliablePatterns(zodSchema as unknown as z.ZodType, node);
      else if (type === 'number') keepIntegerMultipleOf(node);
    },
  }) as PlainObject;
  const relaxed = relaxSchema(json, defaults, critical);
  const upload: SchemaUpload = { schema: relaxed.schema, unrepresented: findUnrepresented(schema, critical, seenByZod, relaxed.unrepresented) };
  const body = canonicalJson(upload);
  if (Buffer.byteLength(body) > MAX_SCHEMA_BYTES) throw new Error(`the JSON Schema is larger than ${MAX_SCHEMA_BYTES} bytes`);
  if (valueExceedsDepth(upload, MAX_SCHEMA_DEPTH)) throw new Error(`the JSON Schema is nested deeper than ${MAX_SCHEMA_DEPTH} levels`);
  // Shared by the clients of the process (below): frozen, so that no one of them can change another's.
  return deepFreeze({ upload, body, hash: createHash('sha256').update(body).digest('hex') });
}

/**
 * The metadata zod writes (descriptions, examples…) without `id`s: an `id` makes zod write the schema once
 * in `$defs` and a `$ref` to it, which the relaxation (its defaults and critical paths differ per place)
 * would have to undo. zod only calls `get` of its metadata registry.
 */
const META_WITHOUT_IDS = {
  get(schema: z.ZodType): Record<string, unknown> | undefined {
    const meta = z.globalRegistry.get(schema) as Record<string, unknown> | undefined;
    if (meta === undefined || !Object.hasOwn(meta, 'id')) return meta;
    const { id: _id, ...rest } = meta;
    return Object.keys(rest).length > 0 ? rest : undefined;
  },
} as unknown as z.core.$ZodRegistry<Record<string, unknown>>;

/**
 * String formats whose zod check is exactly their pattern (`$ZodCheckStringFormat`'s `pattern.test`): the
 * others (`z.url()`, `z.ipv6()`, `z.base64()`, `z.jwt()`, credit cards, `includes` at a position, custom
 * formats…) check something else, and their pattern may refuse what zod accepts.
 */
const PATTERN_FORMATS = new Set([
  'regex', 'email', 'guid', 'uuid', 'nanoid', 'cuid', 'cuid2', 'ulid', 'xid', 'ksuid', 'datetime', 'date', 'time', 'duration',
  'ipv4', 'mac', 'cidrv4', 'e164', 'lowercase', 'uppercase', 'starts_with', 'ends_with', 'includes', 'emoji', 'hostname', 'hex',
]);
const HASH_FORMAT = /^(?:md5|sha1|sha256|sha384|sha512)_(?:hex|base64|base64url)$/;

interface FormatCheckDef {
  check?: string;
  format?: string;
  pattern?: unknown;
  position?: number;
}

/**
 * Keeps the `pattern`s of a string node that say what zod checks, as the hub runs them (Ajv: `new
 * RegExp(source, 'u')`, or without a flag with `unicodeRegExp: false`): a regex with flags (zod writes its
 * source alone: `/^[a-z]+$/i` would refuse `ABC`), one that does not compile with the `u` flag, or one of a
 * format zod checks otherwise is removed, and the node marked (listed as `custom` by the relaxation).
 */
function keepReliablePatterns(schema: z.ZodType, json: PlainObject): void {
  const reliable = new Set<string>();
  const checks = [schema, ...((defOf(schema).checks ?? []) as unknown as z.ZodType[])];
  for (const check of checks) {
    const def = (check as unknown as { _zod: { def: FormatCheckDef } })._zod.def;
    if (def.check !== 'string_format' || !(def.pattern instanceof RegExp) || def.format === undefined) continue;
    const format = def.format;
    if (!PATTERN_FORMATS.has(format) && !HASH_FORMAT.test(format)) continue;
    if (format === 'includes' && def.position !== undefined) continue;
    if (def.pattern.flags === '' && compilesUnicode(def.pattern.source)) reliable.add(def.pattern.source);
  }
  let removed = false;
  if (typeof json.pattern === 'string' && !reliable.has(json.pattern)) {
    delete json.pattern;
    removed = true;
  }
  if (Array.isArray(json.allOf)) {
    const kept = json.allOf.filter((member) => !(isPlainObject(member) && typeof member.pattern === 'string' && !reliable.has(member.pattern)));
    if (kept.length !== json.allOf.length) removed = true;
    if (kept.length > 0) json.allOf = kept;
    else delete json.allOf;
  }
  if (removed) json[UNCHECKED_MARK] = true;
}

/**
 * A `multipleOf` that is not an integer: zod divides exactly (decimal), Ajv in floating point (within
 * `multipleOfPrecision`), which refuses large multiples of `0.1` that zod takes. Removed, the node marked.
 * An integer divisor of an integer is exact in both; Ajv may only take more (a fraction it rounds away).
 */
function keepIntegerMultipleOf(json: PlainObject): void {
  if (typeof json.multipleOf !== 'number' || Number.isInteger(json.multipleOf)) return;
  delete json.multipleOf;
  json[UNCHECKED_MARK] = true;
}

function compilesUnicode(source: string): boolean {
  try {
    new RegExp(source, 'u');
    return true;
  } catch {
    return false;
  }
}

/** Never stricter than the client: a node that accepts more than zod's JSON says becomes `{}`, and is not required. */
function loosen(schema: z.ZodType, json: PlainObject): void {
  if (isLoose(schema)) {
    for (const key of Object.keys(json)) if (!KEPT_ON_LOOSE.has(key)) delete json[key];
    return;
  }
  const def = defOf(schema);
  if (def.type !== 'object' || !Array.isArray(json.required)) return;
  const shape = def.shape ?? {};
  json.required = (json.required as string[]).filter((key) => {
    let field: z.ZodType | undefined = shape[key];
    while (field && (defOf(field).type === 'readonly' || defOf(field).type === 'nullable')) field = defOf(field).innerType;
    return !(field && isLoose(field));
  });
}

/**
 * One service's export, computed on first use and kept: `undefined` without a schema or when the schema
 * cannot be exported (warned once; the report then says `schema: null`). Clients of one process that share
 * a schema, its defaults and its critical paths share the work (a cold `get` per new client must not pay it).
 */
export class LazySchemaExport {
  readonly #service: string;
  readonly #definition: ServiceDefinition;
  readonly #logger: Logger;
  #done = false;
  #value: SchemaExport | undefined;

  constructor(service: string, definition: ServiceDefinition, logger: Logger) {
    this.#service = service;
    this.#definition = definition;
    this.#logger = logger;
  }

  get(): SchemaExport | undefined {
    if (this.#done) return this.#value;
    this.#done = true;
    const { schema, defaults, env } = this.#definition;
    if (!schema) return undefined;
    const result = cachedExport(schema, defaults, Object.keys(env ?? {}));
    if (result instanceof Error) {
      this.#logger.warn({ service: this.#service, err: result.message }, 'schema not exported to the hub (its write checks cannot include this instance): the report says schema null');
      return undefined;
    }
    this.#value = result;
    return result;
  }
}

const shared = new WeakMap<z.ZodType, Map<string, SchemaExport | Error>>();

function cachedExport(schema: z.ZodType, defaults: unknown, criticalPaths: readonly string[]): SchemaExport | Error {
  let key: string | undefined;
  try {
    key = JSON.stringify([[...criticalPaths].sort(), defaults ?? null]);
  } catch {
    // Defaults JSON cannot hold (a BigInt): not shared, computed for this runtime alone.
  }
  const bySchema = shared.get(schema);
  const hit = key === undefined ? undefined : bySchema?.get(key);
  if (hit) return hit;
  let result: SchemaExport | Error;
  try {
    result = exportSchema(schema, defaults, criticalPaths);
  } catch (error) {
    result = new Error(errorMessage(error));
  }
  if (key !== undefined) {
    const map = bySchema ?? new Map<string, SchemaExport | Error>();
    map.set(key, result);
    if (!bySchema) shared.set(schema, map);
  }
  return result;
}
