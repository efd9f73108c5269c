/**
 * A value frozen by `freezeShared` is one object for every client of a process (a notice's config): what is
 * computed from it is kept, and every shortcut must give the answer the full computation gives.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { mergeValues, sanitizeOwned } from '../../src/layers/merge.js';
import { changesBetween, freezeShared, isSharedFrozen } from '../../src/layers/paths.js';
import { resolveConfig } from '../../src/layers/resolve.js';

const noEnv = { values: {}, missing: undefined } as never;

describe('freezeShared', () => {
  it('freezes every node, also below a root that was frozen already, and remembers each', () => {
    const inner = { deep: { x: 1 } };
    const root = Object.freeze({ a: inner, list: [{ y: 2 }] });
    freezeShared(root);
    expect(Object.isFrozen(inner)).toBe(true);
    expect(Object.isFrozen(inner.deep)).toBe(true);
    expect(Object.isFrozen(root.list[0])).toBe(true);
    expect(isSharedFrozen(root)).toBe(true);
    expect(isSharedFrozen(inner.deep)).toBe(true);
    expect(isSharedFrozen({})).toBe(false);
    expect(isSharedFrozen(Object.freeze({}))).toBe(false);
  });
});

describe('changesBetween on shared frozen values', () => {
  it('gives the same changed paths the second time, and a copy each time', () => {
    const prev = freezeShared({ a: { x: 1, y: 2 }, b: 'same' });
    const next = freezeShared({ a: { x: 1, y: 3 }, b: 'same', c: true });
    const first = changesBetween(prev, next);
    expect(first).toEqual(['a.y', 'c']);
    first!.push('mutated by a listener');
    expect(changesBetween(prev, next)).toEqual(['a.y', 'c']);
    expect(changesBetween(prev, next)).not.toBe(changesBetween(prev, next));
  });

  it('keeps no answer across a different next value', () => {
    const prev = freezeShared({ a: 1 });
    expect(changesBetween(prev, freezeShared({ a: 2 }))).toEqual(['a']);
    expect(changesBetween(prev, freezeShared({ a: 1 }))).toBeUndefined();
    expect(changesBetween(prev, freezeShared({ b: 1 }))).toEqual(['a', 'b']);
  });

  it('equal shared values: no change, also when asked again', () => {
    const prev = freezeShared({ a: [1, 2] });
    const next = freezeShared({ a: [1, 2] });
    expect(changesBetween(prev, next)).toBeUndefined();
    expect(changesBetween(prev, next)).toBeUndefined();
  });
});

describe('sanitizeOwned on shared frozen values', () => {
  it('a clean shared value is returned as it is, every time', () => {
    const value = freezeShared({ a: { b: 1 } });
    expect(sanitizeOwned(value)).toBe(value);
    expect(sanitizeOwned(value)).toBe(value);
  });

  it('a shared value with a forbidden key is never remembered as clean: a copy without it, every time', () => {
    const value = freezeShared(JSON.parse('{"a":{"__proto__":{"polluted":true},"b":1}}') as Record<string, unknown>);
    for (let i = 0; i < 2; i++) {
      const out = sanitizeOwned(value) as { a: Record<string, unknown> };
      expect(out).not.toBe(value);
      expect(Object.hasOwn(out.a, '__proto__')).toBe(false);
      expect(out.a.b).toBe(1);
    }
  });
});

describe('mergeValues with a shared layer', () => {
  it('the shared layer alone (other layers absent or empty) is the merged value itself', () => {
    const hub = freezeShared({ a: { x: 1 } });
    expect(mergeValues([['defaults', undefined], ['hub', hub], ['env', {}]], 'hub')).toBe(hub);
  });

  it('with defaults or env values the merge is a new value, the layers unchanged', () => {
    const hub = freezeShared({ a: { x: 1 } });
    const merged = mergeValues([['defaults', { a: { y: 2 } }], ['hub', hub], ['env', { z: 3 }]], 'hub');
    expect(merged).not.toBe(hub);
    expect(merged).toEqual({ a: { x: 1, y: 2 }, z: 3 });
    expect(hub).toEqual({ a: { x: 1 } });
  });

  it('a layer that is not the shared one is copied even when it is the only one', () => {
    const defaults = { a: 1 };
    const merged = mergeValues([['defaults', defaults], ['hub', undefined], ['env', {}]], 'hub');
    expect(merged).not.toBe(defaults);
    expect(merged).toEqual(defaults);
  });
});

describe('resolveConfig with a shared notice config', () => {
  it('two clients resolving the same frozen config get equal values and the same changes', () => {
    const schema = z.looseObject({ n: z.number() });
    const v1 = freezeShared({ n: 1, extra: { k: 'v' } });
    const v2 = freezeShared({ n: 2, extra: { k: 'v' } });
    const input = { service: 's', schema, defaults: undefined, env: noEnv, criticalPaths: [] };
    const a1 = resolveConfig({ ...input, hub: v1 });
    const b1 = resolveConfig({ ...input, hub: v1 });
    const a2 = resolveConfig({ ...input, hub: v2 });
    const b2 = resolveConfig({ ...input, hub: v2 });
    expect(a1.value).toEqual({ n: 1, extra: { k: 'v' } });
    expect(b1.value).toEqual(a1.value);
    expect(changesBetween(a1.plain, a2.plain)).toEqual(['n']);
    expect(changesBetween(b1.plain, b2.plain)).toEqual(['n']);
    expect(Object.isFrozen(a2.value)).toBe(true);
  });

  it('a critical path in a shared config is dropped from a copy; the shared config keeps it', () => {
    const hub = freezeShared({ db: { password: 'from-hub', host: 'h' } });
    const r = resolveConfig({ service: 's', schema: undefined, defaults: undefined, env: noEnv, criticalPaths: ['db.password'], hub });
    expect(r.droppedCriticalPaths).toEqual(['db.password']);
    expect(r.value).toEqual({ db: { host: 'h' } });
    expect((hub as { db: Record<string, unknown> }).db.password).toBe('from-hub');
  });
});
