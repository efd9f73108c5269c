/**
 * `DeepReadonly<T>`: the type of a served config. The client deep-freezes every value it serves (all
 * callers share one object), so the type says so too: an assignment is a type error instead of a
 * TypeError at run time.
 */

/** Leaves kept as they are: primitives, functions, and built-ins whose methods would break if mapped. */
type Leaf = string | number | boolean | bigint | symbol | null | undefined | ((...args: never[]) => unknown) | Date | RegExp;

/** `T` with every property, element and entry readonly, recursively (arrays, tuples, maps and sets too). */
export type DeepReadonly<T> = T extends Leaf
  ? T
  : T extends ReadonlyMap<infer K, infer V>
    ? ReadonlyMap<DeepReadonly<K>, DeepReadonly<V>>
    : T extends ReadonlySet<infer V>
      ? ReadonlySet<DeepReadonly<V>>
      : T extends readonly unknown[]
        ? { readonly [I in keyof T]: DeepReadonly<T[I]> }
        : { readonly [K in keyof T]: DeepReadonly<T[K]> };
