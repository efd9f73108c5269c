/**
 * The bounds of an untrusted consumer schema (docs/fleet.md §2 and "Limits"): any valid API key may
 * upload one and any read key may make it live, and the hub then runs it in every write of the service.
 * `boundSchema` refuses what it will not run (400: too many schema objects, too deep, a `$ref` that is not
 * local, a `$ref` cycle that does not descend into the value), and returns the copy that Ajv compiles:
 * patterns the hub does not dare to run (safe-pattern.ts) and `uniqueItems` over items that are not
 * scalars (quadratic) are removed and listed as unchecked. It also computes, per depth in a config, how
 * many schema objects (weighted) can be applied to one value there, `$ref`s expanded: the write check
 * multiplies that by the config's size at that depth and skips a consumer whose check would cost too much. Pure.
 */
import { HubError } from '../errors.js';
import { isSafePattern } from './safe-pattern.js';

/**
 * Schema objects (and boolean schemas) an upload may hold. Compiling costs ≈ 0.3 ms each on the event
 * loop (2 000: ≈ 0.6 s at worst, 5 000: ≈ 1.7 s on the reference machine; docs/fleet.md "Limits").
 */
export const MAX_SCHEMA_NODES = 2000;
/** Subschemas in one `anyOf` / `oneOf` / `allOf` / `prefixItems` at most: Ajv nests a block per `oneOf` branch (2 000 overflow the stack) and compiles them in quadratic time. */
export const MAX_LIST_SCHEMAS = 500;
/** Entries of one `patternProperties` at most (Ajv compiles them in quadratic time: 5 000 take 14 s). */
export const MAX_PATTERN_PROPERTIES = 100;
/** Schema objects nested in one another, at most (the root is depth 1; `$ref`s are not followed). */
export const MAX_SCHEMA_DEPTH = 32;
/** The config depths the cost is computed for (deeper configs are refused by the hub's body parser). */
export const COST_DEPTHS = 64;
/** Above this, a cost is "more than anyone will pay" (kept finite). */
const COST_CAP = 1e15;
/** Stack depth of the cost computation (`$ref` chains followed in place), at most. */
const MAX_LINKS = 500;

export type JsonSchemaNode = boolean | Record<string, unknown>;

/** A part the hub does not check, with the dotted config path where it sits (`*` for items and map values). */
export interface HubUnchecked {
  path: string;
  kind: 'unsafe-pattern' | 'unsafe-keyword';
}

export interface BoundedSchema {
  /** The copy Ajv compiles. */
  schema: Record<string, unknown>;
  /** What was removed from it. */
  unchecked: HubUnchecked[];
  /** `cost[k]`: weighted schema objects applied, at most, to one value `k` levels deep in a config. */
  cost: Float64Array;
  /** Schema objects in the upload. */
  nodes: number;
}

const refused = (detail: string): HubError => new HubError(400, `schema refused: ${detail}`);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSchema = (v: unknown): v is JsonSchemaNode => typeof v === 'boolean' || isObject(v);

// Where subschemas sit (JSON Schema 2020-12, and the draft-7 forms Ajv 2020 still compiles).
/** Applied to the same value. */
const IN_PLACE_ONE = ['not', 'if', 'then', 'else'] as const;
const IN_PLACE_LIST = ['allOf', 'anyOf', 'oneOf'] as const;
const IN_PLACE_MAP = ['dependentSchemas', 'dependencies'] as const;
/** Applied to property values, or to property names. */
const OBJECT_WILD_ONE = ['additionalProperties', 'unevaluatedProperties', 'propertyNames'] as const;
/** Applied to array items. */
const ARRAY_WILD_ONE = ['additionalItems', 'contains', 'unevaluatedItems'] as const;
/** Not applied by themselves: where `$ref`s point. */
const CONTAINERS = ['$defs', 'definitions'] as const;
const REF_KEYWORDS = ['$ref', '$dynamicRef'] as const;
const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null']);
/**
 * Subschemas whose failure does not fail the value, so that a check may run many failing ones (each
 * allocating Ajv errors it then drops): ≈ 16 × the time of a plain schema object (measured), hence weighed so.
 */
const BRANCH_KEYWORDS = new Set(['anyOf', 'oneOf', 'not', 'if', 'contains']);
const BRANCH_WEIGHT = 16;
/** A pattern tested (on a string of up to 256 characters, safe-pattern.ts), weighed as this many schema objects. */
const PATTERN_WEIGHT = 256;
/** `uniqueItems` over scalar items (a hash per item), weighed per item. */
const UNIQUE_ITEM_WEIGHT = 32;
/**
 * Marks every schema object of the compiled copy: Ajv runs it as a check of the errors collected so far
 * (schema-registry.ts), so that an untrusted schema cannot make a check collect millions of them.
 */
export const ISSUE_BUDGET_KEYWORD = 'hubIssueBudget';

/** A JSON value's size in values (for `enum` / `const`), bounded by the upload's size. */
function valueCount(v: unknown): number {
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + valueCount(x), 1);
  if (isObject(v)) return Object.values(v).reduce((n: number, x) => n + valueCount(x), 1);
  return 1;
}

interface Node {
  schema: JsonSchemaNode;
  weight: number;
  inPlace: JsonSchemaNode[];
  refs: string[];
  objectKeyed: Map<string, JsonSchemaNode[]>;
  objectWild: JsonSchemaNode[];
  arrayKeyed: Map<number, JsonSchemaNode[]>;
  arrayWild: JsonSchemaNode[];
}

const emptyNode = (schema: JsonSchemaNode): Node => ({
  schema,
  weight: 1,
  inPlace: [],
  refs: [],
  objectKeyed: new Map(),
  objectWild: [],
  arrayKeyed: new Map(),
  arrayWild: [],
});

const push = <K>(map: Map<K, JsonSchemaNode[]>, key: K, s: JsonSchemaNode) => {
  const list = map.get(key);
  if (list === undefined) map.set(key, [s]);
  else list.push(s);
};

/** `#` or `#/$defs/…` (a JSON pointer into the root's `$defs`, percent- and `~`-escaped); anything else is refused. */
export function isLocalRef(ref: unknown): ref is string {
  return typeof ref === 'string' && (ref === '#' || ref.startsWith('#/$defs/'));
}

function resolvePointer(root: JsonSchemaNode, ref: string): unknown {
  if (ref === '#') return root;
  let at: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    } catch {
      return undefined;
    }
    if (Array.isArray(at)) at = /^(0|[1-9]\d*)$/.test(segment) ? at[Number(segment)] : undefined;
    else if (isObject(at)) at = Object.hasOwn(at, segment) ? at[segment] : undefined;
    else return undefined;
  }
  return at;
}

/**
 * Checks `schema` against the bounds and returns the copy to compile with what it leaves unchecked, and
 * its cost per config depth. Throws a 400 `HubError` for a schema the hub will not run.
 */
export function boundSchema(schema: Record<string, unknown>): BoundedSchema {
  const nodes = new Map<JsonSchemaNode, Node>();
  const unchecked: HubUnchecked[] = [];
  let count = 0;

  // Pass 1: copy, count, check depth, `$id` and `$ref`s, drop what is not run; record the edges.
  const copy = (original: JsonSchemaNode, path: readonly string[], depth: number, root: boolean, branch = false): JsonSchemaNode => {
    count++;
    if (count > MAX_SCHEMA_NODES) throw refused(`more than ${MAX_SCHEMA_NODES} schema objects`);
    if (depth > MAX_SCHEMA_DEPTH) throw refused(`schema objects nested deeper than ${MAX_SCHEMA_DEPTH} levels`);
    if (typeof original === 'boolean' && !branch) return original;
    // A branch is weighed as a node: `true` and `false` are `{}` and `{ not: {} }` to Ajv.
    const s: Record<string, unknown> = original === true ? {} : original === false ? { not: {} } : original;
    const out: Record<string, unknown> = {};
    const node: Node = { ...emptyNode(out), weight: branch ? BRANCH_WEIGHT : 1 };
    nodes.set(out, node);
    const dotted = path.join('.');
    const sub = (v: unknown, at: readonly string[], isBranch = false): JsonSchemaNode => {
      if (!isSchema(v)) throw refused(`${dotted || 'the root'}: a subschema is not an object or a boolean`);
      return copy(v, at, depth + 1, false, isBranch);
    };
    for (const [key, value] of Object.entries(s)) {
      if ((IN_PLACE_ONE as readonly string[]).includes(key)) {
        const c = sub(value, path, BRANCH_KEYWORDS.has(key));
        out[key] = c;
        node.inPlace.push(c);
      } else if ((IN_PLACE_LIST as readonly string[]).includes(key)) {
        if (!Array.isArray(value)) throw refused(`${dotted || 'the root'}: ${key} is not an array`);
        if (value.length > MAX_LIST_SCHEMAS) throw refused(`${dotted || 'the root'}: ${key} holds more than ${MAX_LIST_SCHEMAS} schemas`);
        const list = value.map((v) => sub(v, path, BRANCH_KEYWORDS.has(key)));
        out[key] = list;
        node.inPlace.push(...list);
      } else if ((IN_PLACE_MAP as readonly string[]).includes(key) && isObject(value)) {
        const map: Record<string, unknown> = {};
        for (const [name, v] of Object.entries(value)) {
          // `dependencies` also holds lists of property names (dependentRequired's draft-7 form).
          if (Array.isArray(v)) map[name] = v;
          else {
            const c = sub(v, path);
            map[name] = c;
            node.inPlace.push(c);
          }
        }
        out[key] = map;
      } else if (key === 'properties' && isObject(value)) {
        const map: Record<string, unknown> = {};
        for (const [name, v] of Object.entries(value)) {
          const c = sub(v, [...path, name]);
          map[name] = c;
          push(node.objectKeyed, name, c);
        }
        // Each listed property is looked up in the value, present or not.
        node.weight += Object.keys(map).length;
        out[key] = map;
      } else if (key === 'patternProperties' && isObject(value)) {
        if (Object.keys(value).length > MAX_PATTERN_PROPERTIES) {
          throw refused(`${dotted || 'the root'}: patternProperties holds more than ${MAX_PATTERN_PROPERTIES} patterns`);
        }
        const map: Record<string, unknown> = {};
        for (const [pattern, v] of Object.entries(value)) {
          const c = sub(v, [...path, '*']);
          if (isSafePattern(pattern)) {
            map[pattern] = c;
            node.objectWild.push(c);
          } else {
            unchecked.push({ path: dotted, kind: 'unsafe-pattern' });
          }
        }
        // A property the removed pattern matched must not become "additional" (refused by
        // additionalProperties / unevaluatedProperties): a pattern that matches every name, checking nothing.
        if (Object.keys(map).length < Object.keys(value).length && !Object.hasOwn(map, '')) map[''] = true;
        node.weight += PATTERN_WEIGHT * Object.keys(map).length;
        out[key] = map;
      } else if ((OBJECT_WILD_ONE as readonly string[]).includes(key)) {
        const c = sub(value, [...path, '*']);
        out[key] = c;
        node.objectWild.push(c);
      } else if (key === 'items') {
        if (Array.isArray(value)) {
          if (value.length > MAX_LIST_SCHEMAS) throw refused(`${dotted || 'the root'}: items holds more than ${MAX_LIST_SCHEMAS} schemas`);
          const list = value.map((v, i) => sub(v, [...path, String(i)]));
          for (const [i, c] of list.entries()) push(node.arrayKeyed, i, c);
          out[key] = list;
        } else {
          const c = sub(value, [...path, '*']);
          out[key] = c;
          node.arrayWild.push(c);
        }
      } else if (key === 'prefixItems') {
        if (!Array.isArray(value)) throw refused(`${dotted || 'the root'}: prefixItems is not an array`);
        if (value.length > MAX_LIST_SCHEMAS) throw refused(`${dotted || 'the root'}: prefixItems holds more than ${MAX_LIST_SCHEMAS} schemas`);
        const list = value.map((v, i) => sub(v, [...path, String(i)]));
        for (const [i, c] of list.entries()) push(node.arrayKeyed, i, c);
        out[key] = list;
      } else if ((ARRAY_WILD_ONE as readonly string[]).includes(key)) {
        const c = sub(value, [...path, '*'], BRANCH_KEYWORDS.has(key));
        out[key] = c;
        node.arrayWild.push(c);
      } else if ((CONTAINERS as readonly string[]).includes(key) && isObject(value)) {
        const map: Record<string, unknown> = {};
        for (const [name, v] of Object.entries(value)) map[name] = sub(v, [key, name]);
        out[key] = map;
      } else if ((REF_KEYWORDS as readonly string[]).includes(key)) {
        if (!isLocalRef(value)) throw refused(`${dotted || 'the root'}: ${key} must be "#" or point into "#/$defs/" (got ${JSON.stringify(value).slice(0, 80)})`);
        out[key] = value;
        node.refs.push(value);
      } else if (key === '$id' && !root) {
        // A nested $id would change what "#/$defs/…" below it means.
        throw refused(`${dotted || 'the root'}: $id is allowed at the root only`);
      } else if (key === 'pattern' && typeof value === 'string') {
        if (isSafePattern(value)) {
          out[key] = value;
          node.weight += PATTERN_WEIGHT;
        } else {
          unchecked.push({ path: dotted, kind: 'unsafe-pattern' });
        }
      } else if (key === 'contentSchema' || key === ISSUE_BUDGET_KEYWORD) {
        // contentSchema is not applied by Ajv; the budget mark is the hub's own (set below).
      } else {
        out[key] = value;
        if ((key === 'enum' && Array.isArray(value)) || key === 'const') node.weight += valueCount(value);
        if (key === 'required' && Array.isArray(value)) node.weight += value.length;
        if (key === 'dependentRequired' && isObject(value)) node.weight += valueCount(value);
      }
    }
    // The budget mark (schema-registry.ts): with the most properties a valid object may have, when
    // closed, so that a config object with thousands of extra names stops before an error per name.
    const onlyProperties =
      out.patternProperties === undefined &&
      (out.additionalProperties === false || (out.unevaluatedProperties === false && node.inPlace.length === 0 && node.refs.length === 0));
    const closedNames =
      out.propertyNames === false ? 0 : onlyProperties ? Object.keys(isObject(out.properties) ? out.properties : {}).length : undefined;
    out[ISSUE_BUDGET_KEYWORD] = closedNames ?? true;
    // uniqueItems is O(n) in Ajv only for items of a scalar `type`; otherwise it compares every pair.
    if (out.uniqueItems === true) {
      const items = out.items;
      const types = isObject(items) ? (Array.isArray(items.type) ? items.type : [items.type]) : [];
      if (types.length === 0 || !types.every((t) => typeof t === 'string' && SCALAR_TYPES.has(t))) {
        delete out.uniqueItems;
        unchecked.push({ path: dotted, kind: 'unsafe-keyword' });
      } else {
        // Not a schema object, but work per item: a node of the cost graph only.
        const perItem = {};
        nodes.set(perItem, { ...emptyNode(perItem), weight: UNIQUE_ITEM_WEIGHT });
        node.arrayWild.push(perItem);
      }
    }
    return out;
  };
  const compiled = copy(schema, [], 1, true) as Record<string, unknown>;

  // `$ref` targets, in the copy (a pointer into it resolves to the copied node).
  const targetOf = (ref: string): JsonSchemaNode => {
    const target = resolvePointer(compiled, ref);
    if (!isSchema(target) || (typeof target !== 'boolean' && !nodes.has(target))) {
      throw refused(`$ref ${JSON.stringify(ref).slice(0, 80)} does not point at a schema`);
    }
    return target;
  };
  for (const node of nodes.values()) for (const ref of node.refs) node.inPlace.push(targetOf(ref));

  // Pass 2: the cost. here(s): weighted schema objects applied to the value s applies to; a cycle of
  // in-place edges never ends (Ajv would recurse on one value until the stack overflows).
  const hereMemo = new Map<JsonSchemaNode, number>();
  const visiting = new Set<JsonSchemaNode>();
  let links = 0;
  const enter = () => {
    if (++links > MAX_LINKS) throw refused(`$ref chains longer than ${MAX_LINKS} links`);
  };
  const here = (s: JsonSchemaNode): number => {
    if (typeof s === 'boolean') return 1;
    const known = hereMemo.get(s);
    if (known !== undefined) return known;
    if (visiting.has(s)) throw refused('a $ref cycle that does not descend into the value');
    visiting.add(s);
    enter();
    const node = nodes.get(s) as Node;
    let n = node.weight;
    for (const c of node.inPlace) n = Math.min(COST_CAP, n + here(c));
    links--;
    visiting.delete(s);
    hereMemo.set(s, n);
    return n;
  };
  // exact(s, k): at most how many are applied to one value exactly k levels below the value s applies to.
  // An upper bound: the children of sibling in-place subschemas are summed, whatever their names.
  const exactMemo = new Map<JsonSchemaNode, Float64Array>();
  const sum = (list: readonly JsonSchemaNode[], k: number) => {
    let n = 0;
    for (const c of list) n = Math.min(COST_CAP, n + exact(c, k));
    return n;
  };
  const exact = (s: JsonSchemaNode, k: number): number => {
    if (k === 0) return here(s);
    if (typeof s === 'boolean') return 0;
    let row = exactMemo.get(s);
    if (row === undefined) {
      row = new Float64Array(COST_DEPTHS + 1).fill(-1);
      exactMemo.set(s, row);
    }
    const known = row[k] as number;
    if (known >= 0) return known;
    enter();
    const node = nodes.get(s) as Node;
    let n = 0;
    for (const c of node.inPlace) n = Math.min(COST_CAP, n + exact(c, k));
    const objectWild = sum(node.objectWild, k - 1);
    const arrayWild = sum(node.arrayWild, k - 1);
    let widest = Math.max(objectWild, arrayWild);
    for (const list of node.objectKeyed.values()) widest = Math.max(widest, objectWild + sum(list, k - 1));
    for (const list of node.arrayKeyed.values()) widest = Math.max(widest, arrayWild + sum(list, k - 1));
    n = Math.min(COST_CAP, n + widest);
    links--;
    row[k] = n;
    return n;
  };
  const cost = new Float64Array(COST_DEPTHS + 1);
  for (let k = 0; k <= COST_DEPTHS; k++) cost[k] = exact(compiled, k);
  return { schema: compiled, unchecked, cost, nodes: count };
}

/** What the cost multiplies: per depth, a config's values plus its strings' characters (names included) by 16. */
export type ConfigSize = Float64Array;

function measure(v: unknown, d: number, size: Float64Array): void {
  const k = Math.min(d, COST_DEPTHS);
  size[k] = (size[k] as number) + 1;
  if (typeof v === 'string') size[k] = (size[k] as number) + v.length / 16;
  else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) measure(v[i], d + 1, size);
  else if (isObject(v)) {
    for (const key of Object.keys(v)) {
      const below = Math.min(k + 1, COST_DEPTHS);
      size[below] = (size[below] as number) + key.length / 16;
      measure(v[key], d + 1, size);
    }
  }
}

/** A config's size per depth (recursive: configs are at most the hub's body depth, 64 by default, deep). */
export function configSize(config: unknown): ConfigSize {
  const size = new Float64Array(COST_DEPTHS + 1);
  measure(config, 0, size);
  return size;
}

/** The cost of checking a config of `size` against a schema of `cost`: Σ per depth of values × schema objects. */
export function checkCost(cost: Float64Array, size: ConfigSize): number {
  let n = 0;
  for (let k = 0; k <= COST_DEPTHS; k++) n += (size[k] as number) * (cost[k] as number);
  return n;
}
