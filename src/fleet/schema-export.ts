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
import { configPathOf, type CriticalTree, criticalTree, defOf, findUnrepresented, isCritical, isLoose } from './zod-walk.js';

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
    override: ({ zodSchema, jsonSchema }) => loosen(zodSchema as unknown as z.ZodType, jsonSchema as PlainObject),
  }) as PlainObject;
  relax(json, defaults, critical);
  const upload: SchemaUpload = { schema: json, unrepresented: findUnrepresented(schema, critical, seenByZod) };
  const body = canonicalJson(upload);
  if (Buffer.byteLength(body) > MAX_SCHEMA_BYTES) throw new Error(`the JSON Schema is larger than ${MAX_SCHEMA_BYTES} bytes`);
  if (valueExceedsDepth(upload, MAX_SCHEMA_DEPTH)) throw new Error(`the JSON Schema is nested deeper than ${MAX_SCHEMA_DEPTH} levels`);
  // Shared by the clients of the process (below): frozen, so that no one of them can change another's.
  return deepFreeze({ upload, body, hash: createHash('sha256').update(body).digest('hex') });
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
 * Removes critical paths (from `properties`, `required`, and from `default`/`examples` values above them:
 * a dev password written as an object default is still a critical value), and drops from `required` what
 * the defaults or env supply. Recurses through `properties` and `anyOf`/`oneOf`/`allOf` branches; `$ref`s
 * (recursive schemas) are left as zod wrote them.
 */
function relax(node: unknown, defaults: unknown, critical: CriticalTree | undefined): void {
  if (!isPlainObject(node)) return;
  if (critical && critical.size > 0) {
    if (node.default !== undefined) node.default = withoutCritical(node.default, critical);
    if (Array.isArray(node.examples)) node.examples = node.examples.map((example) => withoutCritical(example, critical));
  }
  for (const keyword of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = node[keyword];
    if (Array.isArray(branches)) for (const branch of branches) relax(branch, defaults, critical);
  }
  const properties = node.properties;
  if (!isPlainObject(properties)) return;
  const supplied = isPlainObject(defaults) ? defaults : undefined;
  for (const key of Object.keys(properties)) {
    const below = critical?.get(key);
    if (below === true) {
      delete properties[key];
      continue;
    }
    relax(properties[key], supplied?.[key], below);
  }
  if (!Array.isArray(node.required)) return;
  const required = (node.required as string[]).filter((key) => {
    const below = critical?.get(key);
    if (below === true) return false;
    const fromDefaults = supplied !== undefined && Object.hasOwn(supplied, key) && supplied[key] !== undefined;
    // Env supplies the key when some critical path lies below it; its other required children must then
    // come from the defaults too.
    if (!fromDefaults && below === undefined) return true;
    if (fromDefaults && !isPlainObject(supplied[key])) return false;
    const child = properties[key];
    return isPlainObject(child) && Array.isArray(child.required) && child.required.length > 0;
  });
  // A set: sorted, so that declaring the same fields in another order gives the same hash.
  required.sort();
  if (required.length > 0) node.required = required;
  else delete node.required;
}

/** A copy of `value` without the critical paths below it (only plain objects are walked). */
function withoutCritical(value: unknown, critical: CriticalTree): unknown {
  if (!isPlainObject(value)) return value;
  const out: PlainObject = {};
  for (const [key, child] of Object.entries(value)) {
    const below = critical.get(key);
    if (below === true) continue;
    out[key] = below ? withoutCritical(child, below) : child;
  }
  return out;
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
