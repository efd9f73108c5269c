/** Dotted-path helpers over plain JSON values (pure). */

export type PlainObject = Record<string, unknown>;

export function isPlainObject(value: unknown): value is PlainObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function splitPath(path: string): string[] {
  return path.split('.').filter((part) => part.length > 0);
}

const MISSING: unique symbol = Symbol('missing');

function walk(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const key of path) {
    if (!isPlainObject(node) || !Object.hasOwn(node, key)) return MISSING;
    node = node[key];
  }
  return node;
}

export function getPath(root: unknown, path: readonly string[]): unknown {
  const found = walk(root, path);
  return found === MISSING ? undefined : found;
}

export function hasPath(root: unknown, path: readonly string[]): boolean {
  return walk(root, path) !== MISSING;
}

/** Sets `value` at `path`, creating plain objects on the way (mutates `root`). */
export function setPath(root: PlainObject, path: readonly string[], value: unknown): void {
  let node = root;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const next = node[key];
    if (isPlainObject(next)) {
      node = next;
    } else {
      const created: PlainObject = {};
      node[key] = created;
      node = created;
    }
  }
  node[path[path.length - 1]!] = value;
}

/** Returns a copy of `root` without the value at `path`; `root` itself is untouched. */
export function withoutPath(root: PlainObject, path: readonly string[]): PlainObject {
  const [head, ...rest] = path;
  if (head === undefined || !Object.hasOwn(root, head)) return root;
  const copy: PlainObject = { ...root };
  if (rest.length === 0) {
    delete copy[head];
    return copy;
  }
  const child = root[head];
  if (isPlainObject(child)) copy[head] = withoutPath(child, rest);
  return copy;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => deepEqual(item, b[i]));
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const bo = b as PlainObject;
  const ao = a as PlainObject;
  return ka.every((k) => Object.hasOwn(bo, k) && deepEqual(ao[k], bo[k]));
}

/**
 * Dotted paths whose values differ between `prev` and `next`, reported at the deepest level where
 * both sides are objects (arrays and scalars are leaves), sorted.
 */
export function changedPaths(prev: unknown, next: unknown, prefix = ''): string[] {
  const out: string[] = [];
  collectChanges(prev, next, prefix, out);
  // One sort of the whole list gives the same order as sorting every level (plain string order).
  return out.sort();
}

function collectChanges(prev: unknown, next: unknown, prefix: string, out: string[]): void {
  // Shared subtrees (e.g. an equal value that kept its identity) cannot differ.
  if (Object.is(prev, next)) return;
  if (isPlainObject(prev) && isPlainObject(next)) {
    for (const key of Object.keys(prev)) {
      const child = prefix ? `${prefix}.${key}` : key;
      if (!Object.hasOwn(next, key)) {
        if (!deepEqual(prev[key], next[key])) out.push(child);
      } else {
        collectChanges(prev[key], next[key], child, out);
      }
    }
    for (const key of Object.keys(next)) {
      if (Object.hasOwn(prev, key)) continue;
      if (!deepEqual(prev[key], next[key])) out.push(prefix ? `${prefix}.${key}` : key);
    }
    return;
  }
  if (!deepEqual(prev, next)) out.push(prefix);
}

/** Freezes a JSON value in place, all the way down, so every caller can share one committed value. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
