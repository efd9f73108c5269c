/**
 * Turns the three layers of one service into its validated config (pure): critical (env) > hub >
 * defaults, hub values at critical paths dropped and reported, the result parsed by the schema.
 */
import type { z } from 'zod';
import { ConfigInvalidError, type ConfigIssue } from '../errors.js';
import type { EnvLayer } from './env.js';
import { type LayerName, mergeLayers, type Provenance, sanitize } from './merge.js';
import { deepFreeze, hasPath, isPlainObject, type PlainObject, splitPath, withoutPath } from './paths.js';

export interface ResolveInput {
  service: string;
  schema: z.ZodType | undefined;
  defaults: PlainObject | undefined;
  /** The hub layer; `undefined` when the hub has no config (or is out of reach). */
  hub: PlainObject | undefined;
  env: EnvLayer;
  /** Dotted paths declared critical (the keys of the service's `env` mapping). */
  criticalPaths: readonly string[];
}

export interface Resolved {
  /** The validated, deeply frozen config. */
  value: unknown;
  /**
   * The merged plain JSON before the schema ran: changes are detected on this, not on `value`, because
   * schema transforms (`z.coerce.date()`, URLs, class instances) make output values incomparable.
   */
  plain: PlainObject;
  /** The hub layer as applied: sanitized, critical paths removed. */
  hub: PlainObject | undefined;
  provenance: Provenance;
  /** Critical paths the hub tried to set; they were dropped. */
  droppedCriticalPaths: string[];
}

/** Removes critical paths from a hub layer; returns what is left and which paths were present. */
export function stripCriticalPaths(
  hub: PlainObject | undefined,
  criticalPaths: readonly string[],
): { hub: PlainObject | undefined; dropped: string[] } {
  if (!hub) return { hub, dropped: [] };
  let out = hub;
  const dropped: string[] = [];
  for (const path of criticalPaths) {
    const parts = splitPath(path);
    if (hasPath(out, parts)) {
      dropped.push(path);
      out = withoutPath(out, parts);
    }
  }
  return { hub: out, dropped };
}

export function resolveConfig(input: ResolveInput): Resolved {
  const { hub, dropped } = stripCriticalPaths(input.hub && sanitize(input.hub), input.criticalPaths);
  const layers: Array<readonly [LayerName, PlainObject | undefined]> = [
    ['defaults', input.defaults],
    ['hub', hub],
    ['env', input.env.values],
  ];
  const merged = mergeLayers(layers);
  const value = validate(input.service, input.schema, merged.value, input.env.missing);
  return { value: deepFreeze(value), plain: merged.value, hub, provenance: merged.provenance, droppedCriticalPaths: dropped };
}

/** The unset environment variable behind an issue at `path` (at, above or below a critical path). */
function missingVariable(path: string, missing: ReadonlyMap<string, string> | undefined): string | undefined {
  if (!missing) return undefined;
  for (const [critical, variable] of missing) {
    if (path === critical || critical.startsWith(`${path}.`) || path.startsWith(`${critical}.`) || path === '') return variable;
  }
  return undefined;
}

export function validate(
  service: string,
  schema: z.ZodType | undefined,
  value: PlainObject,
  missingEnv?: ReadonlyMap<string, string>,
): unknown {
  if (!schema) return value;
  const result = schema.safeParse(value);
  if (result.success) {
    if (!isPlainObject(result.data) && typeof result.data !== 'object') {
      throw new ConfigInvalidError(`config of ${service} did not validate to an object`, [], { service });
    }
    return result.data;
  }
  const issues: ConfigIssue[] = result.error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const variable = missingVariable(path, missingEnv);
    // Zod messages name expected types, never received values, so a secret cannot leak through them.
    return { path, message: variable ? `${issue.message} (critical value: environment variable ${variable} is not set)` : issue.message };
  });
  const summary = issues
    .slice(0, 5)
    .map((i) => `${i.path || '(root)'}: ${i.message}`)
    .join('; ');
  throw new ConfigInvalidError(`config of ${service} failed its schema: ${summary}`, issues, {
    service,
    cause: result.error,
  });
}
