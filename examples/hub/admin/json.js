// JSON helpers of the admin page: canonical pretty-printing (what every diff compares) and the
// three-way merge behind "rebase my edit".

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// defineProperty, not assignment: a `__proto__` key from JSON stays a plain key.
function put(target, key, value) {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The value with object keys sorted at every level (arrays keep their order). */
export function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isObject(value)) return value;
  const out = {};
  for (const key of Object.keys(value).sort()) put(out, key, sortKeys(value[key]));
  return out;
}

/** Pretty-printed sorted JSON: two configs that are equal print equal. */
export const pretty = (value) => JSON.stringify(sortKeys(value), null, 2);

const same = (a, b) => a === b || (a !== undefined && b !== undefined && pretty(a) === pretty(b));

/**
 * Applies the changes from `base` to `mine` onto `theirs` (a three-way merge; objects merge key by key,
 * arrays and scalars are replaced whole; `undefined` is an absent key). Where both sides changed the same
 * path differently, `mine` wins and the path is listed in `conflicts`.
 */
export function rebase(base, mine, theirs) {
  const conflicts = [];
  const merge = (b, m, t, path) => {
    if (same(m, b)) return t;
    if (same(t, b) || same(m, t)) return m;
    if (isObject(m) && isObject(t) && (b === undefined || isObject(b))) {
      const out = {};
      const keys = new Set([...Object.keys(b ?? {}), ...Object.keys(m), ...Object.keys(t)]);
      for (const key of [...keys].sort()) {
        const own = (o) => (o !== undefined && Object.hasOwn(o, key) ? o[key] : undefined);
        const v = merge(own(b), own(m), own(t), path === '' ? key : `${path}.${key}`);
        if (v !== undefined) put(out, key, v);
      }
      return out;
    }
    conflicts.push(path === '' ? '(whole config)' : path);
    return m;
  };
  return { value: merge(base, mine, theirs, ''), conflicts };
}
