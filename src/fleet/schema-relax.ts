/**
 * From zod's JSON Schema of a service to the schema of what its client accepts FROM THE HUB (pure), by the
 * rule of docs/fleet.md §2: the hub's verdict on a hub document equals the client's (the document merged
 * over the defaults, critical paths dropped and the env values merged over it, then the zod schema) wherever
 * JSON Schema can say it; where it cannot, the result is LOOSER, never stricter, and the place is listed.
 *
 * What the client does to a hub document, and what this module writes for it:
 * - A critical (env) path: the hub's value is dropped. Its property is removed, or becomes `{}` in an object
 *   that constrains undeclared keys (`additionalProperties`), so that the key still passes.
 * - The defaults and env values merge under the hub's object, key by key: a property they supply is not
 *   required, and an object they supply part of is required exactly when what they leave out is (decided
 *   on the relaxed child: does it accept `{}`?). This holds for optional, nullable and defaulted children
 *   too: the merged result contains the object whatever zod says when it is absent.
 * - A hub value that is not an object where env values lie below is replaced by those values alone.
 * - Keys `__proto__`, `constructor`, `prototype` are dropped at every depth (src/layers/merge.ts).
 * - `$ref`s (recursive schemas) are inlined once along each path; where the recursion repeats, `{}`.
 * Assumed: the defaults and the env values are valid where they stand (the client reports them otherwise),
 * and the critical variables are set (an object that env values alone create is required like one the
 * defaults create; an instance without the variable may take less).
 */
import { isForbiddenKey } from '../hub/wire.js';
import { isPlainObject, type PlainObject } from '../layers/paths.js';
import type { Unrepresented } from './wire.js';
import type { CriticalTree } from './zod-walk.js';

/** Set (by the export's zod override) on a string node whose patterns were removed: zod checks more there. */
export const UNCHECKED_MARK = '~chc-unchecked';

export interface Relaxed {
  schema: PlainObject;
  /** Where the result is looser than the client, by config path (`*`: any item or record key). */
  unrepresented: Unrepresented[];
}

type Verdict = 'yes' | 'no' | 'maybe';
type Node = unknown;

interface Ctx {
  root: PlainObject;
  defs: PlainObject | undefined;
  /** The `$ref`s being inlined, outermost first. */
  refs: string[];
  budget: { left: number };
  found: Map<string, Unrepresented>;
}

/** Nodes the relaxed schema may have: far more than a config's, bounding an exponential inlining of `$ref`s. */
const MAX_NODES = 100_000;
const MAX_REF_DEPTH = 16;
const FORBIDDEN = ['__proto__', 'constructor', 'prototype'];
const FORBIDDEN_PATTERN = `^(?:${FORBIDDEN.join('|')})$`;
/** Sub-schema keywords the defaults and env do not reach (arrays replace whole; the rest are about keys or types). */
const SINGLE = ['items', 'contains', 'not', 'if', 'then', 'else', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties', 'contentSchema', 'additionalItems'];
const ITEM_PATHS = new Set(['items', 'contains', 'unevaluatedItems', 'additionalItems']);
/** Keywords that do not concern an object (an empty object passes them) or are annotations. */
const NOT_ABOUT_OBJECTS = new Set([
  '$schema', '$id', '$comment', '$anchor', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly',
  'format', 'contentEncoding', 'contentMediaType', 'contentSchema', 'minLength', 'maxLength', 'pattern',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
  'items', 'prefixItems', 'minItems', 'maxItems', 'uniqueItems', 'contains', 'minContains', 'maxContains', 'unevaluatedItems', 'additionalItems',
  'properties', 'patternProperties', 'additionalProperties', 'propertyNames', 'maxProperties', 'dependentSchemas', 'unevaluatedProperties',
  UNCHECKED_MARK,
]);

export function relaxSchema(json: PlainObject, defaults: unknown, critical: CriticalTree): Relaxed {
  const ctx: Ctx = {
    root: json,
    defs: isPlainObject(json.$defs) ? json.$defs : undefined,
    refs: [],
    budget: { left: MAX_NODES },
    found: new Map(),
  };
  const schema = relax(json, defaults, critical.size > 0 ? critical : undefined, [], ctx) as PlainObject;
  return { schema, unrepresented: [...ctx.found.values()] };
}

function add(ctx: Ctx, path: readonly string[], kind: Unrepresented['kind']): void {
  const dotted = path.join('.');
  ctx.found.set(`${dotted}\n${kind}`, { path: dotted, kind });
}

/** A new node (the input is never changed: a `$ref` target is inlined more than once). */
function relax(node: Node, defaults: unknown, critical: CriticalTree | undefined, path: readonly string[], ctx: Ctx): Node {
  if (!isPlainObject(node)) return node;
  if (--ctx.budget.left < 0) throw new Error('the JSON Schema is too large to export');
  if (typeof node.$ref === 'string') return inlineRef(node, defaults, critical, path, ctx);
  const out: PlainObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key !== '$defs' && key !== 'definitions' && key !== UNCHECKED_MARK) setOwn(out, key, value);
  }
  if (node[UNCHECKED_MARK] === true) add(ctx, path, 'custom');
  // A format the hub does not check, with no pattern that says it (`z.url()`, `z.jwt()`…).
  if (node.type === 'string' && typeof node.format === 'string' && node.pattern === undefined && !hasPatternMember(node.allOf)) add(ctx, path, 'custom');
  if (critical) {
    // A dev password written as an object default is still a critical value.
    if (node.default !== undefined) out.default = withoutCritical(node.default, critical);
    if (Array.isArray(node.examples)) out.examples = node.examples.map((example) => withoutCritical(example, critical));
  }
  for (const keyword of SINGLE) {
    if (node[keyword] !== undefined) out[keyword] = relax(node[keyword], undefined, undefined, ITEM_PATHS.has(keyword) ? [...path, '*'] : path, ctx);
  }
  if (Array.isArray(node.prefixItems)) out.prefixItems = node.prefixItems.map((item, i) => relax(item, undefined, undefined, [...path, String(i)], ctx));
  for (const keyword of ['patternProperties', 'dependentSchemas'] as const) {
    const map = node[keyword];
    if (isPlainObject(map)) out[keyword] = mapValues(map, (value) => relax(value, undefined, undefined, [...path, '*'], ctx));
  }
  relaxBranches(node, out, defaults, critical, path, ctx);
  if (isPlainObject(node.properties) || node.additionalProperties !== undefined || Array.isArray(node.required)) {
    relaxObject(node, out, defaults, critical, path, ctx);
  }
  return out;
}

function inlineRef(node: PlainObject, defaults: unknown, critical: CriticalTree | undefined, path: readonly string[], ctx: Ctx): Node {
  const ref = node.$ref as string;
  const target = resolveRef(ref, ctx);
  if (target === undefined || ctx.refs.includes(ref) || ctx.refs.length >= MAX_REF_DEPTH) {
    // Where a recursive schema recurs: anything (its checks there are the client's alone).
    add(ctx, path, 'unrepresentable');
    return keepAnnotations(node);
  }
  const { $ref: _ref, ...siblings } = node;
  const { $schema: _schema, $defs: _defs, ...body } = target;
  ctx.refs.push(ref);
  try {
    return relax({ ...body, ...siblings }, defaults, critical, path, ctx);
  } finally {
    ctx.refs.pop();
  }
}

function resolveRef(ref: string, ctx: Ctx): PlainObject | undefined {
  if (ref === '#') return ctx.root;
  const prefix = '#/$defs/';
  if (!ref.startsWith(prefix) || !ctx.defs) return undefined;
  const name = ref.slice(prefix.length).replace(/~1/g, '/').replace(/~0/g, '~');
  const target = Object.hasOwn(ctx.defs, name) ? ctx.defs[name] : undefined;
  return isPlainObject(target) ? target : undefined;
}

/**
 * `anyOf`/`oneOf` branches are relaxed with the same defaults and critical paths (the merged value is
 * checked against each). When these supply something below a union of two or more object branches, the
 * result is looser than the client where a branch's supplied values would not be valid in another branch,
 * so the union is listed; and a `oneOf` becomes an `anyOf` (two relaxed branches may both accept a document
 * whose merged value only one of them accepts).
 */
function relaxBranches(node: PlainObject, out: PlainObject, defaults: unknown, critical: CriticalTree | undefined, path: readonly string[], ctx: Ctx): void {
  const supplied = (isPlainObject(defaults) && Object.keys(defaults).length > 0) || critical !== undefined;
  const allOf: unknown[] = [];
  if (Array.isArray(node.allOf)) {
    const relaxed = node.allOf.map((member) => relax(member, defaults, critical, path, ctx));
    if (relaxed.length > 1) {
      // zod pools the keys of an intersection's sides (a key is unknown only when every side refuses it);
      // an `allOf` of closed members refuses each other's keys: open them (zod folds what it can itself).
      for (const member of relaxed) {
        if (isPlainObject(member) && constrainsUndeclaredKeys(member.additionalProperties)) {
          delete member.additionalProperties;
          delete member.patternProperties;
          add(ctx, path, 'unrepresentable');
        }
      }
    }
    allOf.push(...relaxed);
  }
  for (const keyword of ['anyOf', 'oneOf'] as const) {
    const branches = node[keyword];
    if (!Array.isArray(branches)) continue;
    const relaxed = branches.map((branch) => relax(branch, defaults, critical, path, ctx));
    if (supplied && relaxed.filter(mayBeObject).length >= 2) add(ctx, path, 'unrepresentable');
    if (keyword === 'oneOf' && supplied && relaxed.length > 1) {
      delete out.oneOf;
      if (Array.isArray(node.anyOf)) allOf.push({ anyOf: relaxed });
      else out.anyOf = relaxed;
    } else {
      out[keyword] = relaxed;
    }
  }
  if (allOf.length > 0) out.allOf = allOf;
}

/**
 * An object node: critical properties out, what the defaults and env supply not required, objects they
 * supply part of required when the rest must come from the hub, records given the keys the defaults name.
 */
function relaxObject(node: PlainObject, out: PlainObject, defaults: unknown, critical: CriticalTree | undefined, path: readonly string[], ctx: Ctx): void {
  const declared = isPlainObject(node.properties) ? node.properties : undefined;
  const extra = node.additionalProperties;
  const closed = constrainsUndeclaredKeys(extra);
  const supplied = isPlainObject(defaults) ? defaults : undefined;
  const properties: PlainObject = {};
  /** The relaxed child of each key that defaults or env supply part of (what decides its requiredness). */
  const children = new Map<string, Node>();
  const keys = new Set<string>([...Object.keys(declared ?? {}), ...Object.keys(supplied ?? {}), ...(critical?.keys() ?? [])]);
  for (const key of keys) {
    const isDeclared = declared !== undefined && Object.hasOwn(declared, key);
    const below = critical?.get(key);
    const at = [...path, key];
    if (!isDeclared && isForbiddenKey(key)) continue;
    if (below === true) {
      // The client drops the hub's value: the key must pass where undeclared keys are constrained.
      if (closed) setOwn(properties, key, {});
      // A critical key a strict object does not declare: the env value makes every merged value fail.
      if (!isDeclared && extra === false) add(ctx, at, 'unrepresentable');
      continue;
    }
    const partial = supplied !== undefined && Object.hasOwn(supplied, key) ? supplied[key] : undefined;
    const envBelow = below instanceof Map;
    if (!isDeclared) {
      // Undeclared: stripped by an open object, refused by a strict one, checked by a record's value schema.
      if (extra === false && envBelow) add(ctx, at, 'unrepresentable');
      if (!isPlainObject(extra) || (!isPlainObject(partial) && !envBelow)) continue;
    }
    const schema = isDeclared ? declared[key] : extra;
    const child = relax(schema, partial, below instanceof Map ? below : undefined, at, ctx);
    if (isPlainObject(partial) || envBelow) children.set(key, child);
    setOwn(properties, key, envBelow ? envReplaced(schema, child, partial, below, at, ctx) : child);
  }
  if (declared !== undefined || Object.keys(properties).length > 0) out.properties = properties;
  if (isPlainObject(extra)) out.additionalProperties = relax(extra, undefined, undefined, [...path, '*'], ctx);
  if (closed) {
    // The client drops these keys before its check; the hub must let them pass too.
    const patterns = isPlainObject(out.patternProperties) ? out.patternProperties : {};
    out.patternProperties = { ...patterns, [FORBIDDEN_PATTERN]: {} };
  }
  const names = out.propertyNames;
  if (names !== undefined && !acceptsAnyName(names)) out.propertyNames = { anyOf: [names, { enum: FORBIDDEN }] };
  out.required = requiredOf(node, supplied, critical, children, path, ctx);
  if ((out.required as string[]).length === 0) delete out.required;
}

/**
 * Which keys the hub must send. A key nothing supplies is required as zod says; a scalar or array default
 * supplies its key whole; a key the defaults or env supply part of is required when its relaxed child does
 * not accept `{}` (the merged value holds the object then, whatever zod says of an absent one).
 */
function requiredOf(
  node: PlainObject,
  supplied: PlainObject | undefined,
  critical: CriticalTree | undefined,
  children: Map<string, Node>,
  path: readonly string[],
  ctx: Ctx,
): string[] {
  const zodRequired = new Set(Array.isArray(node.required) ? (node.required as string[]) : []);
  const required: string[] = [];
  for (const key of new Set([...zodRequired, ...children.keys()])) {
    const below = critical?.get(key);
    if (below === true) continue;
    const partial = supplied !== undefined && Object.hasOwn(supplied, key) ? supplied[key] : undefined;
    const envBelow = below instanceof Map;
    if (partial === undefined && !envBelow) {
      if (zodRequired.has(key)) required.push(key);
      continue;
    }
    if (!isPlainObject(partial) && !envBelow) continue;
    const child = children.get(key);
    if (child === undefined) continue;
    const verdict = acceptsEmptyObject(child);
    if (verdict === 'no') required.push(key);
    else if (verdict === 'maybe') add(ctx, [...path, key], 'unrepresentable');
  }
  // A set: sorted, so that declaring the same fields in another order gives the same hash.
  return required.sort();
}

/**
 * A hub value that is not an object at a key with env values below is replaced by those values alone (the
 * defaults' object too). When that env-only object passes, the client takes any such value: the property
 * then also accepts every non-object. When it fails and the property accepts some non-object (a nullable
 * object), instances without the variable take it: looser, listed.
 */
function envReplaced(schema: Node, child: Node, partial: unknown, below: CriticalTree, at: readonly string[], ctx: Ctx): Node {
  const envOnly = isPlainObject(partial) ? relax(schema, undefined, below, at, ctx) : child;
  const verdict = acceptsEmptyObject(envOnly);
  if (verdict === 'no') {
    if (mayBeNonObject(child)) add(ctx, at, 'unrepresentable');
    return child;
  }
  if (verdict === 'maybe') add(ctx, at, 'unrepresentable');
  if (isEmptySchema(child)) return child;
  return { anyOf: [child, { not: { type: 'object' } }] };
}

/** Whether `{}` passes a (relaxed) schema: `maybe` where this static look cannot tell. */
export function acceptsEmptyObject(schema: Node): Verdict {
  if (schema === true) return 'yes';
  if (!isPlainObject(schema)) return schema === false ? 'no' : 'maybe';
  let verdict = 'yes' as Verdict;
  const also = (v: Verdict): void => {
    if (v === 'no') verdict = 'no';
    else if (v === 'maybe' && verdict === 'yes') verdict = 'maybe';
  };
  for (const [keyword, value] of Object.entries(schema)) {
    if (verdict === 'no') return 'no';
    if (NOT_ABOUT_OBJECTS.has(keyword)) continue;
    switch (keyword) {
      case 'type':
        if (!(value === 'object' || (Array.isArray(value) && value.includes('object')))) return 'no';
        break;
      case 'required':
        if (Array.isArray(value) && value.length > 0) return 'no';
        break;
      case 'minProperties':
        if (typeof value === 'number' && value > 0) return 'no';
        break;
      case 'const':
        if (!isEmptyObject(value)) return 'no';
        break;
      case 'enum':
        if (!Array.isArray(value) || !value.some(isEmptyObject)) return 'no';
        break;
      case 'anyOf': {
        const all = Array.isArray(value) ? value.map(acceptsEmptyObject) : ['maybe' as const];
        also(all.includes('yes') ? 'yes' : all.every((v) => v === 'no') ? 'no' : 'maybe');
        break;
      }
      case 'oneOf': {
        const all = Array.isArray(value) ? value.map(acceptsEmptyObject) : ['maybe' as const];
        const yes = all.filter((v) => v === 'yes').length;
        const no = all.filter((v) => v === 'no').length;
        also(no === all.length ? 'no' : yes === 1 && no === all.length - 1 ? 'yes' : 'maybe');
        break;
      }
      case 'allOf':
        if (Array.isArray(value)) for (const member of value) also(acceptsEmptyObject(member));
        else also('maybe');
        break;
      case 'not': {
        const inner = acceptsEmptyObject(value);
        also(inner === 'yes' ? 'no' : inner === 'no' ? 'yes' : 'maybe');
        break;
      }
      case 'dependentRequired':
        break;
      default:
        // `$ref`, `if`/`then`/`else`, … (Ajv ignores keywords it does not know: those do not matter).
        if (keyword === '$ref' || keyword === 'if' || keyword === 'then' || keyword === 'else' || keyword === '$dynamicRef') also('maybe');
    }
  }
  return verdict;
}

/** Whether a (relaxed) schema may accept something that is not an object (null, a scalar, an array). */
function mayBeNonObject(schema: Node): boolean {
  if (!isPlainObject(schema)) return schema !== false;
  const type = schema.type;
  if (type === 'object' || (Array.isArray(type) && type.length === 1 && type[0] === 'object')) return false;
  if (Array.isArray(schema.allOf) && schema.allOf.some((member) => !mayBeNonObject(member))) return false;
  if (Array.isArray(schema.anyOf) && schema.anyOf.every((branch) => !mayBeNonObject(branch))) return false;
  if (Array.isArray(schema.oneOf) && schema.oneOf.every((branch) => !mayBeNonObject(branch))) return false;
  return true;
}

function mayBeObject(schema: Node): boolean {
  if (!isPlainObject(schema)) return schema !== false;
  const type = schema.type;
  if (type === undefined) return schema.const === undefined && schema.enum === undefined ? true : [schema.const, ...(Array.isArray(schema.enum) ? schema.enum : [])].some(isPlainObject);
  return type === 'object' || (Array.isArray(type) && type.includes('object'));
}

/** `additionalProperties` that refuses (or checks) some key: `false` or a schema with a constraint. */
function constrainsUndeclaredKeys(extra: unknown): boolean {
  return extra === false || (isPlainObject(extra) && !isEmptySchema(extra));
}

/** Accepts every value: `true`, or an object of annotations only. */
function isEmptySchema(schema: Node): boolean {
  if (schema === true) return true;
  if (!isPlainObject(schema)) return false;
  return Object.keys(schema).every((key) => key === 'title' || key === 'description' || key === '$comment' || key === 'examples' || key === 'default');
}

/** A `propertyNames` that every string passes (zod writes `{ type: 'string' }` for `z.record(z.string(), …)`). */
function acceptsAnyName(names: Node): boolean {
  if (isEmptySchema(names)) return true;
  return isPlainObject(names) && names.type === 'string' && Object.keys(names).every((key) => key === 'type' || key === 'title' || key === 'description');
}

function hasPatternMember(allOf: unknown): boolean {
  return Array.isArray(allOf) && allOf.some((member) => isPlainObject(member) && member.pattern !== undefined);
}

function isEmptyObject(value: unknown): boolean {
  return isPlainObject(value) && Object.keys(value).length === 0;
}

function keepAnnotations(node: PlainObject): PlainObject {
  const out: PlainObject = {};
  for (const key of ['title', 'description'] as const) if (node[key] !== undefined) out[key] = node[key];
  return out;
}

function mapValues(map: PlainObject, f: (value: unknown) => unknown): PlainObject {
  const out: PlainObject = {};
  for (const [key, value] of Object.entries(map)) setOwn(out, key, f(value));
  return out;
}

/** A copy of `value` without the critical paths below it (only plain objects are walked). */
function withoutCritical(value: unknown, critical: CriticalTree): unknown {
  if (!isPlainObject(value)) return value;
  const out: PlainObject = {};
  for (const [key, child] of Object.entries(value)) {
    const below = critical.get(key);
    if (below === true) continue;
    setOwn(out, key, below ? withoutCritical(child, below) : child);
  }
  return out;
}

/** `obj[key] = value` that makes an own property of any key (`__proto__` included). */
function setOwn(obj: PlainObject, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
