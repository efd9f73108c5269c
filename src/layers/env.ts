/**
 * The critical layer: values from environment variables, mapped per dotted path, coerced guided by the
 * schema (pure). A string stays a string wherever the schema accepts one; otherwise `"150"` becomes 150,
 * `"true"` true, and JSON text an array or object. Values that cannot be coerced stay strings, so the
 * schema reports them instead of this module guessing.
 */
import type { z } from 'zod';
import { type PlainObject, setPath, splitPath } from './paths.js';
import { acceptedKinds } from './schema-kinds.js';

/** Dotted config path → environment variable name. */
export type EnvMapping = Readonly<Record<string, string>>;
export type EnvSource = Readonly<Record<string, string | undefined>>;

export interface EnvLayer {
  /** The critical values that are set, as a nested object. */
  values: PlainObject;
  /** Dotted path → env var name, for the paths that are set. */
  sources: Map<string, string>;
  /** Dotted path → env var name, for the critical paths whose variable is not set. */
  missing: Map<string, string>;
}

export function readEnvLayer(mapping: EnvMapping | undefined, env: EnvSource, schema: z.ZodType | undefined): EnvLayer {
  const values: PlainObject = {};
  const sources = new Map<string, string>();
  const missing = new Map<string, string>();
  if (!mapping) return { values, sources, missing };
  for (const [path, variable] of Object.entries(mapping)) {
    const raw = env[variable];
    const parts = splitPath(path);
    if (raw === undefined) {
      missing.set(parts.join('.'), variable);
      continue;
    }
    setPath(values, parts, schema ? coerceEnvValue(raw, schema, parts) : raw);
    sources.set(parts.join('.'), variable);
  }
  return { values, sources, missing };
}

export function coerceEnvValue(raw: string, schema: z.ZodType, path: readonly string[]): unknown {
  const kinds = acceptedKinds(schema, path);
  if (kinds.size === 0 || kinds.has('string') || kinds.has('unknown')) return raw;
  const text = raw.trim();
  if (kinds.has('number') && text !== '' && Number.isFinite(Number(text))) return Number(text);
  if (kinds.has('boolean')) {
    const lower = text.toLowerCase();
    if (lower === 'true' || lower === '1') return true;
    if (lower === 'false' || lower === '0') return false;
  }
  if (kinds.has('null') && text === 'null') return null;
  if (kinds.has('array') || kinds.has('object')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}
