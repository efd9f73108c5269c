/**
 * Turns the three layers of one service into its validated config (pure): critical (env) > hub >
 * defaults, hub values at critical paths dropped and reported, the result parsed by the schema.
 */
import type { z } from 'zod';
import { ConfigInvalidError, type ConfigIssue } from '../errors.js';
import type { EnvLayer } from './env.js';
import { type LayerName, mergeLayers, mergeValues, type Provenance, sanitizeOwned } from './merge.js';
import { deepFreeze, freezeShared, hasPath, isPlainObject, type PlainObject, splitPath, withoutPath } from './paths.js';

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
  /** The hub layer as applied: sanitized, critical paths removed (the input itself when it needed neither). */
  hub: PlainObject | undefined;
  /** Computed from the same layers on first read (only `explain()` reads it), then kept. */
  readonly provenance: Provenance;
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

/**
 * `input.hub` must be the caller's own (a parsed answer, a notice's private copy): it may be frozen in place.
 * When it carries no forbidden key and no critical path it becomes `hub` as it is, uncopied. The hub layer is
 * deeply frozen first, so the merged value shares its subtrees wherever defaults and env do not merge into
 * them: one copy of a config per change is saved, and the final freeze stops at what is frozen already.
 */
export function resolveConfig(input: ResolveInput): Resolved {
  const stripped = stripCriticalPaths(input.hub && sanitizeOwned(input.hub), input.criticalPaths);
  const hub = stripped.hub && freezeShared(stripped.hub);
  const dropped = stripped.dropped;
  const layers: Array<readonly [LayerName, PlainObject | undefined]> = [
    ['defaults', input.defaults],
    ['hub', hub],
    ['env', input.env.values],
  ];
  const plain = mergeValues(layers, 'hub');
  const value = deepFreeze(validate(input.service, input.schema, plain, input.env.missing));
  return new ResolvedLayers(value, plain, hub, dropped, layers);
}

/** A class rather than a literal with a getter: a literal with an accessor is slow to create, at every change. */
class ResolvedLayers implements Resolved {
  readonly #layers: ReadonlyArray<readonly [LayerName, PlainObject | undefined]>;
  #provenance: Provenance | undefined;

  constructor(
    readonly value: unknown,
    readonly plain: PlainObject,
    readonly hub: PlainObject | undefined,
    readonly droppedCriticalPaths: string[],
    layers: ReadonlyArray<readonly [LayerName, PlainObject | undefined]>,
  ) {
    this.#layers = layers;
  }

  get provenance(): Provenance {
    // The same merge again, recording where every leaf came from: paid by `explain()`, not by every change.
    this.#provenance ??= mergeLayers(this.#layers).provenance;
    return this.#provenance;
  }
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
