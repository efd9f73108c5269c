/**
 * What JSON Schema cannot say about a zod schema (pure): the parts the client checks that the exported
 * JSON Schema does not (refinements, transforms and pipes, coercion, `z.custom`, unrepresentable types),
 * found by walking zod 4's public `_zod.def` descriptors, with the dotted config path of each (`*` for
 * array items and record values, `''` for the root). Also which nodes the export must loosen to `{}`.
 */
import type { z } from 'zod';
import type { Unrepresented } from './wire.js';

export type UnrepresentedKind = Unrepresented['kind'];

interface Def {
  type: string;
  coerce?: boolean;
  checks?: ReadonlyArray<{ _zod: { def: { check: string } } }>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  options?: readonly z.ZodType[];
  left?: z.ZodType;
  right?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  element?: z.ZodType;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  items?: readonly z.ZodType[];
  rest?: z.ZodType | null;
  values?: readonly unknown[];
  getter?: () => z.ZodType;
}

export function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** Types `z.toJSONSchema` can only write as `{}` (with `unrepresentable: 'any'`). */
const UNREPRESENTABLE = new Set(['bigint', 'symbol', 'undefined', 'void', 'date', 'nan', 'function', 'map', 'set', 'promise']);
const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional']);
/** Far deeper and larger than a config; bound a pathological (or recursive) schema. */
const MAX_WALK_DEPTH = 64;
const MAX_WALK_NODES = 20_000;
/** The upload's bound on `unrepresented` (src/fleet/wire.ts). */
export const MAX_UNREPRESENTED = 1000;
const MAX_PATH_LENGTH = 1000;

/**
 * Nodes whose JSON Schema would be STRICTER than what the client accepts, so the export writes `{}` (and
 * the field is not required) instead: coercion (`z.coerce.number()` takes `"5"`, zod writes `type: number`),
 * `.catch()` (takes anything, missing included), `z.preprocess` (zod writes the output's schema).
 */
export function isLoose(schema: z.ZodType): boolean {
  const def = defOf(schema);
  return def.coerce === true || def.type === 'catch' || (def.type === 'pipe' && def.in !== undefined && defOf(def.in).type === 'transform');
}

/** A critical (env) path tree: `true` marks a critical path, a map the critical paths below a key. */
export type CriticalTree = Map<string, CriticalTree | true>;

export function criticalTree(paths: readonly string[]): CriticalTree {
  const root: CriticalTree = new Map();
  for (const path of paths) {
    const parts = path.split('.').filter((p) => p.length > 0);
    let node = root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const existing = node.get(part);
      // Below a critical path everything is critical already.
      if (existing === true) break;
      if (i === parts.length - 1) {
        node.set(part, true);
        break;
      }
      const next: CriticalTree = existing ?? new Map();
      node.set(part, next);
      node = next;
    }
  }
  return root;
}

/**
 * What the walk found, sorted by path then kind (the hash must not depend on the walk's order), with zod's
 * own verdicts (`extra`, at paths the walk did not name) and the places the relaxation of the JSON Schema
 * left looser than the client (`loosened`).
 */
export function findUnrepresented(
  schema: z.ZodType,
  critical: CriticalTree,
  extra: readonly Unrepresented[] = [],
  loosened: readonly Unrepresented[] = [],
): Unrepresented[] {
  const found = new Map<string, Unrepresented>();
  const add = (path: readonly string[], kind: UnrepresentedKind): void => {
    const dotted = path.join('.').slice(0, MAX_PATH_LENGTH);
    found.set(`${dotted}\n${kind}`, { path: dotted, kind });
  };
  walk(schema, [], critical, add, new Set(), { left: MAX_WALK_NODES });
  const paths = new Set([...found.values()].map((u) => u.path));
  // zod's own verdicts (e.g. a multipleOf of 0, a literal `undefined`) at paths the walk did not name.
  for (const u of extra) if (!paths.has(u.path)) found.set(`${u.path}\n${u.kind}`, u);
  for (const u of loosened) if (!isCritical(u.path === '' ? [] : u.path.split('.'), critical)) add(u.path === '' ? [] : u.path.split('.'), u.kind);
  return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)).slice(0, MAX_UNREPRESENTED);
}

function walk(
  schema: z.ZodType,
  path: string[],
  critical: CriticalTree | undefined,
  add: (path: readonly string[], kind: UnrepresentedKind) => void,
  stack: Set<z.ZodType>,
  budget: { left: number },
): void {
  // A recursive (z.lazy) schema is walked down to where it recurs (its parts are listed at their first
  // path: the hub learns that the check exists), never too deep nor too long.
  if (stack.has(schema) || stack.size >= MAX_WALK_DEPTH || budget.left-- <= 0) return;
  stack.add(schema);
  try {
    visit(schema, path, critical, add, stack, budget);
  } finally {
    stack.delete(schema);
  }
}

function visit(
  schema: z.ZodType,
  path: string[],
  critical: CriticalTree | undefined,
  add: (path: readonly string[], kind: UnrepresentedKind) => void,
  stack: Set<z.ZodType>,
  budget: { left: number },
): void {
  const def = defOf(schema);
  const child = (next: z.ZodType | undefined, key?: string): void => {
    if (!next) return;
    if (key === undefined) {
      walk(next, path, critical, add, stack, budget);
      return;
    }
    // Nothing at or below a critical path is exported, its checks included.
    const below = key === '*' ? undefined : critical?.get(key);
    if (below !== true) walk(next, [...path, key], below, add, stack, budget);
  };
  for (const check of def.checks ?? []) {
    const kind = check._zod.def.check;
    // `.refine`, `.superRefine`, `.check(fn)` are `custom` checks; `.trim()`, `.toLowerCase()`… `overwrite` ones.
    if (kind === 'custom') add(path, 'refinement');
    else if (kind === 'overwrite') add(path, 'transform');
  }
  if (def.coerce === true) add(path, 'transform');
  if (UNREPRESENTABLE.has(def.type)) {
    add(path, 'unrepresentable');
    return;
  }
  if (WRAPPERS.has(def.type)) {
    child(def.innerType);
    return;
  }
  switch (def.type) {
    case 'custom':
      add(path, 'custom');
      break;
    case 'transform':
      add(path, 'transform');
      break;
    case 'pipe':
      add(path, 'transform');
      // The input side is what the hub sends: a preprocess's input is its transform, so walk its output.
      child(def.in && defOf(def.in).type === 'transform' ? def.out : def.in);
      break;
    case 'literal':
      if ((def.values ?? []).some((v) => v === undefined || typeof v === 'bigint')) add(path, 'unrepresentable');
      break;
    case 'lazy':
      // zod resolves a lazy schema once and keeps it (`_zod.innerType`): the same object, so recursion stops.
      child((schema as unknown as { _zod: { innerType?: z.ZodType } })._zod.innerType ?? def.getter?.());
      break;
    case 'union':
      for (const option of def.options ?? []) child(option);
      break;
    case 'intersection':
      child(def.left);
      child(def.right);
      break;
    case 'object':
      for (const key of Object.keys(def.shape ?? {})) child(def.shape![key], key);
      if (def.catchall && defOf(def.catchall).type !== 'never') child(def.catchall, '*');
      break;
    case 'record':
      child(def.keyType);
      child(def.valueType, '*');
      break;
    case 'array':
      child(def.element, '*');
      break;
    case 'tuple':
      for (const [i, item] of (def.items ?? []).entries()) child(item, String(i));
      if (def.rest) child(def.rest, '*');
      break;
  }
}

/** The config path of a JSON Schema location (`['properties', 'a', 'items']` → `a.*`), as zod reports it. */
export function configPathOf(jsonPath: readonly (string | number)[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < jsonPath.length; i++) {
    const segment = jsonPath[i];
    if (segment === 'properties' || segment === 'prefixItems') out.push(String(jsonPath[++i]));
    else if (segment === 'items' || segment === 'additionalProperties') out.push('*');
    else if (segment === 'anyOf' || segment === 'oneOf' || segment === 'allOf') i++;
  }
  return out;
}

/** Whether a dotted path is at or below a critical path. */
export function isCritical(path: readonly string[], critical: CriticalTree): boolean {
  let node: CriticalTree | true | undefined = critical;
  for (const key of path) {
    if (node === true) return true;
    node = node.get(key);
    if (node === undefined) return false;
  }
  return node === true;
}
