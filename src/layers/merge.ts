/**
 * Deep merge of the three layers with provenance (pure). Objects merge key by key; arrays and scalars
 * replace. Every leaf of the result remembers which layer it came from.
 */
import { isForbiddenKey } from '../hub/wire.js';
import { isPlainObject, type PlainObject } from './paths.js';

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
  let value: PlainObject = {};
  for (const [name, layer] of layers) {
    if (layer) value = mergeInto(value, layer, name, '', provenance);
  }
  return { value, provenance };
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
  provenance: Provenance,
): PlainObject {
  const out: PlainObject = {};
  for (const key of Object.keys(base)) out[key] = base[key];
  for (const key of Object.keys(layer)) {
    // Dropped, not merged: a `__proto__` key from the network must never reach a prototype.
    if (isForbiddenKey(key)) continue;
    const path = prefix ? `${prefix}.${key}` : key;
    const incoming = layer[key];
    const current = out[key];
    const currentIsObject = isPlainObject(current);
    const incomingIsObject = isPlainObject(incoming);
    if (incomingIsObject && currentIsObject) {
      out[key] = mergeInto(current, incoming, name, path, provenance);
    } else {
      // Leaves below `path` exist only while the merged value there is an object: otherwise only `path`
      // itself can be recorded, and the sweep over every recorded path (quadratic in leaves) is skipped.
      if (currentIsObject) dropUnder(provenance, path);
      else provenance.delete(path);
      if (incomingIsObject) {
        out[key] = mergeInto({}, incoming, name, path, provenance);
      } else {
        out[key] = convert(incoming);
        provenance.set(path, name);
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
