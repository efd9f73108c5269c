/**
 * Deep merge of the three layers with provenance (pure). Objects merge key by key; arrays and scalars
 * replace. Every leaf of the result remembers which layer it came from.
 */
import { isForbiddenKey } from '../hub/wire.js';
import { isPlainObject, isSharedFrozen, type PlainObject } from './paths.js';

export type LayerName = 'defaults' | 'hub' | 'env';

/** Leaf path (dotted) → the layer that supplied it. */
export type Provenance = Map<string, LayerName>;

export interface MergeResult {
  value: PlainObject;
  provenance: Provenance;
}

/** Merges layers in order of increasing precedence; later layers win. Inputs are never mutated. */
export function mergeLayers(layers: ReadonlyArray<readonly [LayerName, PlainObject | undefined]>): MergeResult {
  const provenance: Provenance = new Map();
  return { value: merge(layers, provenance), provenance };
}

/**
 * The value of `mergeLayers` without its provenance: what every change needs. Provenance (a path string and a
 * map entry per leaf) is only read by `explain()`, so the runtime derives it from the same layers when asked.
 * `shared` names a layer that is deeply frozen, free of forbidden keys and the caller's own (the hub layer as
 * `resolveConfig` prepares it): where no other layer merges into one of its subtrees, the result takes that
 * subtree as it is instead of a copy. Every other layer is copied, as by `mergeLayers`.
 */
export function mergeValues(layers: ReadonlyArray<readonly [LayerName, PlainObject | undefined]>, shared?: LayerName): PlainObject {
  return merge(layers, undefined, shared);
}

function merge(
  layers: ReadonlyArray<readonly [LayerName, PlainObject | undefined]>,
  provenance: Provenance | undefined,
  shared?: LayerName,
): PlainObject {
  if (provenance === undefined && shared !== undefined) {
    // Only the shared layer has keys (no defaults, no env values): it is the merged value, uncopied.
    const only = soleLayer(layers);
    if (only !== undefined && only[0] === shared) return only[1];
  }
  let value: PlainObject = {};
  for (const [name, layer] of layers) {
    if (layer) value = mergeInto(value, layer, name, '', provenance, name === shared);
  }
  return value;
}

/** The one layer that has keys, when every other is absent or empty. */
function soleLayer(layers: ReadonlyArray<readonly [LayerName, PlainObject | undefined]>): readonly [LayerName, PlainObject] | undefined {
  let only: readonly [LayerName, PlainObject] | undefined;
  for (const entry of layers) {
    const layer = entry[1];
    if (layer === undefined) continue;
    let empty = true;
    for (const _ in layer) {
      empty = false;
      break;
    }
    if (empty) continue;
    if (only !== undefined) return undefined;
    only = entry as readonly [LayerName, PlainObject];
  }
  return only;
}

/**
 * One pass, one copy: every object of the result is a fresh ordinary object and every leaf taken from a
 * layer is a sanitized copy (`convert`), so the result shares nothing with the inputs. Ordinary objects are
 * safe here because forbidden keys (`__proto__`, …) are never assigned.
 */
function mergeInto(
  base: PlainObject,
  layer: PlainObject,
  name: LayerName,
  prefix: string,
  provenance: Provenance | undefined,
  shared = false,
): PlainObject {
  const out: PlainObject = {};
  for (const key of Object.keys(base)) out[key] = base[key];
  for (const key of Object.keys(layer)) {
    // Dropped, not merged: a `__proto__` key from the network must never reach a prototype.
    if (isForbiddenKey(key)) continue;
    // Without provenance no path is needed: no string is built per key.
    const path = provenance === undefined ? '' : prefix ? `${prefix}.${key}` : key;
    const incoming = layer[key];
    const current = out[key];
    const currentIsObject = isPlainObject(current);
    const incomingIsObject = isPlainObject(incoming);
    if (incomingIsObject && currentIsObject) {
      out[key] = mergeInto(current, incoming, name, path, provenance, shared);
    } else if (shared) {
      // Frozen and clean all the way down: nothing to drop, nothing anyone can change.
      out[key] = incoming;
    } else {
      // Leaves below `path` exist only while the merged value there is an object: otherwise only `path`
      // itself can be recorded, and the sweep over every recorded path (quadratic in leaves) is skipped.
      if (provenance !== undefined) {
        if (currentIsObject) dropUnder(provenance, path);
        else provenance.delete(path);
      }
      if (incomingIsObject) {
        out[key] = mergeInto({}, incoming, name, path, provenance);
      } else {
        out[key] = convert(incoming);
        provenance?.set(path, name);
      }
    }
  }
  return out;
}

function dropUnder(provenance: Provenance, path: string): void {
  provenance.delete(path);
  const prefix = `${path}.`;
  for (const key of provenance.keys()) if (key.startsWith(prefix)) provenance.delete(key);
}

function convert(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(convert);
  const out: PlainObject = {};
  for (const key of Object.keys(value)) {
    if (isForbiddenKey(key)) continue;
    out[key] = convert((value as PlainObject)[key]);
  }
  return out;
}

/** A copy of a JSON value with forbidden keys removed at every depth (for data from outside). */
export function sanitize<T>(value: T): T {
  return convert(value) as T;
}

/**
 * `value` itself when no forbidden key is at any depth (a scan: nothing is allocated), else `sanitize(value)`.
 * Only for a value nobody else holds or changes (a parsed answer, a private notice copy): the result may be it.
 */
export function sanitizeOwned<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (scannedClean.has(value)) return value;
  if (hasForbiddenKey(value, 0)) return sanitize(value);
  // Only a value nothing can change is remembered (it cannot gain a key later). A notice's config is one
  // frozen object for every client of the process: scanned once or twice, not once per client (figure 8).
  if (isSharedFrozen(value)) scannedClean.add(value);
  return value;
}

/** `freezeShared` values already scanned and found free of forbidden keys. */
const scannedClean = new WeakSet<object>();

/** Deeper than this the scan gives up and the copy (which drops at any depth) decides. */
const MAX_SCAN_DEPTH = 256;

function hasForbiddenKey(value: unknown, depth: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (depth > MAX_SCAN_DEPTH) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (hasForbiddenKey(item, depth + 1)) return true;
    return false;
  }
  // What JSON.parse makes: anything else (a class instance, a null-prototype object) is copied, as `convert` would.
  if (Object.getPrototypeOf(value) !== Object.prototype) return true;
  for (const key of Object.keys(value)) {
    if (isForbiddenKey(key) || hasForbiddenKey((value as PlainObject)[key], depth + 1)) return true;
  }
  return false;
}
