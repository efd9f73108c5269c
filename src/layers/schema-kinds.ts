/**
 * What JSON kinds a zod schema accepts at a dotted path (pure). Env strings are coerced with this, so
 * the coercion follows the schema instead of guessing. Reads zod 4's public `_zod.def` descriptors.
 */
import type { z } from 'zod';

export type JsonKind = 'string' | 'number' | 'boolean' | 'array' | 'object' | 'null' | 'unknown';

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: readonly z.ZodType[];
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  values?: readonly unknown[];
  entries?: Record<string, unknown>;
  getter?: () => z.ZodType;
  left?: z.ZodType;
  right?: z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** Schemas reachable at `path` (unions fan out; wrappers are unwrapped). */
function schemasAt(schema: z.ZodType, path: readonly string[], depth = 0): z.ZodType[] {
  if (depth > 64) return [];
  const def = defOf(schema);
  // kindsOf needs to see `nullable` itself to know that null is accepted.
  if (path.length === 0 && def.type === 'nullable') return [schema];
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return schemasAt(def.innerType!, path, depth + 1);
    case 'pipe':
      return schemasAt(def.in!, path, depth + 1);
    case 'lazy':
      return schemasAt(def.getter!(), path, depth + 1);
    case 'union':
      return (def.options ?? []).flatMap((option) => schemasAt(option, path, depth + 1));
    case 'intersection':
      return [...schemasAt(def.left!, path, depth + 1), ...schemasAt(def.right!, path, depth + 1)];
  }
  if (path.length === 0) return [schema];
  const [head, ...rest] = path as [string, ...string[]];
  if (def.type === 'object') {
    const child = def.shape?.[head];
    return child ? schemasAt(child, rest, depth + 1) : [];
  }
  if (def.type === 'record' && def.valueType) return schemasAt(def.valueType, rest, depth + 1);
  if (def.type === 'any' || def.type === 'unknown') return [schema];
  return [];
}

function kindsOf(schema: z.ZodType, out: Set<JsonKind>, depth = 0): void {
  if (depth > 64) return;
  const def = defOf(schema);
  switch (def.type) {
    case 'string':
    case 'template_literal':
      out.add('string');
      return;
    case 'number':
    case 'int':
    case 'bigint':
      out.add('number');
      return;
    case 'boolean':
      out.add('boolean');
      return;
    case 'array':
    case 'tuple':
    case 'set':
      out.add('array');
      return;
    case 'object':
    case 'record':
    case 'map':
      out.add('object');
      return;
    case 'null':
      out.add('null');
      return;
    case 'nullable':
      out.add('null');
      kindsOf(def.innerType!, out, depth + 1);
      return;
    case 'literal':
    case 'enum':
      for (const v of def.values ?? Object.values(def.entries ?? {})) {
        out.add(typeof v === 'string' ? 'string' : typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'boolean' : 'unknown');
      }
      return;
    default: {
      const nested = schemasAt(schema, []);
      if (nested.length === 1 && nested[0] === schema) {
        out.add('unknown');
        return;
      }
      for (const n of nested) kindsOf(n, out, depth + 1);
    }
  }
}

/** The kinds accepted at `path`; empty when the schema says nothing about that path. */
export function acceptedKinds(schema: z.ZodType, path: readonly string[]): Set<JsonKind> {
  const out = new Set<JsonKind>();
  for (const s of schemasAt(schema, path)) kindsOf(s, out);
  return out;
}
