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
  // Loops, not `every` with a closure: this runs over every node of a config at every change.
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const bo = b as PlainObject;
  const ao = a as PlainObject;
  for (const k of ka) if (!Object.hasOwn(bo, k) || !deepEqual(ao[k], bo[k])) return false;
  return true;
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

/**
 * `undefined` when `deepEqual(prev, next)`, else `changedPaths(prev, next)`: both answers of a change in one
 * walk (a change used to walk the two trees twice, once to compare and once to name the paths).
 */
export function changesBetween(prev: unknown, next: unknown): string[] | undefined {
  // Two values nothing can change: the answer is kept for the next caller with the same two (every client of
  // the process applying the same notice: bench figure 8), one entry per `prev`.
  const shared = isSharedFrozen(prev) && isSharedFrozen(next);
  if (shared) {
    const known = knownChanges.get(prev as object);
    if (known !== undefined && known.next === next) return known.paths && [...known.paths];
  }
  const out: string[] = [];
  const paths = collectChanges(prev, next, '', out) ? out.sort() : undefined;
  if (shared) knownChanges.set(prev as object, { next: next as object, paths: paths && [...paths] });
  return paths;
}

const knownChanges = new WeakMap<object, { next: object; paths: string[] | undefined }>();

/**
 * Pushes the changed paths below `prefix` and returns `!deepEqual(prev, next)`. The two differ only where a
 * key holds `undefined` on one side and is absent on the other: unequal, yet no path to name. A path string
 * is built only for a key that changed or whose two values are both objects (to walk into).
 */
function collectChanges(prev: unknown, next: unknown, prefix: string, out: string[]): boolean {
  // Shared subtrees (e.g. an equal value that kept its identity) cannot differ.
  if (Object.is(prev, next)) return false;
  if (!isPlainObject(prev) || !isPlainObject(next)) {
    if (deepEqual(prev, next)) return false;
    out.push(prefix);
    return true;
  }
  let differs = false;
  for (const key of Object.keys(prev)) {
    const before = prev[key];
    if (!Object.hasOwn(next, key)) {
      differs = true;
      if (!deepEqual(before, next[key])) out.push(prefix ? `${prefix}.${key}` : key);
      continue;
    }
    const after = next[key];
    if (Object.is(before, after)) continue;
    if (isPlainObject(before) && isPlainObject(after)) {
      if (collectChanges(before, after, prefix ? `${prefix}.${key}` : key, out)) differs = true;
    } else if (!deepEqual(before, after)) {
      differs = true;
      out.push(prefix ? `${prefix}.${key}` : key);
    }
  }
  for (const key of Object.keys(next)) {
    if (Object.hasOwn(prev, key)) continue;
    differs = true;
    if (!deepEqual(prev[key], next[key])) out.push(prefix ? `${prefix}.${key}` : key);
  }
  return differs;
}

/** Freezes a JSON value in place, all the way down, so every caller can share one committed value. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Values `freezeShared` froze to the last leaf: they can never change, so what is computed from them can be kept. */
const sharedFrozen = new WeakSet<object>();

/**
 * Freezes `value` to the last leaf (an already frozen node is walked into too: it may hold unfrozen children)
 * and remembers each node, so that pure results computed from it can be shared (`changesBetween`). For values many
 * callers hold: a notice's config is one object for every client of the process (watch/notice-cache.ts).
 */
export function freezeShared<T>(value: T): T {
  if (typeof value !== 'object' || value === null || sharedFrozen.has(value)) return value;
  freezeAll(value);
  return value;
}

/** Every node is remembered, not only the root: a notice is frozen whole, its `config` is what the runtime holds. */
function freezeAll(value: object): void {
  Object.freeze(value);
  for (const child of Object.values(value)) if (typeof child === 'object' && child !== null && !sharedFrozen.has(child)) freezeAll(child);
  sharedFrozen.add(value);
}

/** True when `freezeShared` froze `value`: nothing in it can change. */
export function isSharedFrozen(value: unknown): boolean {
  return typeof value === 'object' && value !== null && sharedFrozen.has(value);
}
