/**
 * The layer functions (src/layers/*) at their edges, found by mutation testing (`npm run test:mutation`):
 * dotted paths over own keys of plain objects only, merges that share nothing with their inputs, env
 * coercion that follows the schema and never guesses, and schema errors that name the unset variable.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigInvalidError } from '../../src/errors.js';
import { coerceEnvValue, readEnvLayer } from '../../src/layers/env.js';
import { mergeLayers, sanitize } from '../../src/layers/merge.js';
import {
  changedPaths,
  deepEqual,
  deepFreeze,
  getPath,
  hasPath,
  isPlainObject,
  setPath,
  splitPath,
  withoutPath,
} from '../../src/layers/paths.js';
import { resolveConfig, stripCriticalPaths, validate } from '../../src/layers/resolve.js';
import { acceptedKinds } from '../../src/layers/schema-kinds.js';

const noEnv = { values: {}, sources: new Map<string, string>(), missing: new Map<string, string>() };

describe('paths', () => {
  it('plain objects are ordinary or null-prototype objects; arrays, null, class instances and primitives are not', () => {
    expect(isPlainObject({})).toBe(true);
    expect(isPlainObject(Object.create(null))).toBe(true);
    expect(isPlainObject([])).toBe(false);
    expect(isPlainObject(null)).toBe(false);
    expect(isPlainObject(new Date())).toBe(false);
    expect(isPlainObject(new (class Box {})())).toBe(false);
    expect(isPlainObject('a')).toBe(false);
  });

  it('splitPath drops empty segments', () => {
    expect(splitPath('a..b.')).toEqual(['a', 'b']);
    expect(splitPath('')).toEqual([]);
  });

  it('getPath / hasPath read own keys of plain objects only', () => {
    const root = { a: { b: 0, u: undefined }, list: [{ x: 1 }] };
    expect(getPath(root, ['a', 'b'])).toBe(0);
    expect(getPath(root, [])).toBe(root);
    expect(hasPath(root, ['a', 'u'])).toBe(true);
    expect(hasPath(root, ['a', 'missing'])).toBe(false);
    // Inherited keys and array indices are not paths.
    expect(hasPath(root, ['a', 'toString'])).toBe(false);
    expect(getPath(root, ['a', 'toString'])).toBeUndefined();
    expect(hasPath(root, ['list', '0'])).toBe(false);
    expect(getPath(root, ['a', 'b', 'c'])).toBeUndefined();
  });

  it('setPath creates objects on the way, replaces non-objects in the way, keeps siblings', () => {
    const root: Record<string, unknown> = { a: { keep: 1 }, s: 5 };
    setPath(root, ['a', 'b', 'c'], 1);
    setPath(root, ['s', 'x'], 2);
    setPath(root, ['top'], 3);
    expect(root).toEqual({ a: { keep: 1, b: { c: 1 } }, s: { x: 2 }, top: 3 });
  });

  it('withoutPath copies only what it changes and leaves the root untouched', () => {
    const root = { a: { b: 1, c: 2 }, d: 3, s: 'leaf' };
    const out = withoutPath(root, ['a', 'b']);
    expect(out).toEqual({ a: { c: 2 }, d: 3, s: 'leaf' });
    expect(root).toEqual({ a: { b: 1, c: 2 }, d: 3, s: 'leaf' });
    expect(withoutPath(root, ['d'])).toEqual({ a: { b: 1, c: 2 }, s: 'leaf' });
    // Nothing there: the same object back.
    expect(withoutPath(root, ['zz'])).toBe(root);
    expect(withoutPath(root, [])).toBe(root);
    // Through a leaf: nothing below it to remove.
    expect(withoutPath(root, ['s', 'x'])).toEqual(root);
  });

  it('deepEqual compares JSON values structurally', () => {
    expect(deepEqual(Number.NaN, Number.NaN)).toBe(true);
    expect(deepEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true);
    expect(deepEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 3 }] })).toBe(false);
    expect(deepEqual([1, 2], [1, 2, 3])).toBe(false);
    expect(deepEqual([1], { 0: 1 })).toBe(false);
    expect(deepEqual({ 0: 1 }, [1])).toBe(false);
    expect(deepEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(deepEqual({ a: 1, b: undefined }, { a: 1, c: undefined })).toBe(false);
    expect(deepEqual(null, {})).toBe(false);
    expect(deepEqual({}, null)).toBe(false);
    expect(deepEqual(1, '1')).toBe(false);
  });

  it('changedPaths reports removed and added keys, prefixes them, and sorts', () => {
    expect(changedPaths({ z: 1, a: { gone: 1, same: 1 } }, { a: { same: 1, added: 2 }, b: 1 })).toEqual(['a.added', 'a.gone', 'b', 'z']);
    expect(changedPaths({ a: 1 }, { a: 2 }, 'svc')).toEqual(['svc.a']);
    expect(changedPaths({ a: 1 }, { b: 1 }, 'svc')).toEqual(['svc.a', 'svc.b']);
    expect(changedPaths(1, 2)).toEqual(['']);
    expect(changedPaths({ a: { b: 1 } }, { a: 5 })).toEqual(['a']);
    expect(changedPaths([1], [1])).toEqual([]);
  });

  it('deepFreeze freezes every level, arrays included, and returns its argument', () => {
    const value = { a: { b: [{ c: 1 }] } };
    expect(deepFreeze(value)).toBe(value);
    expect(Object.isFrozen(value.a)).toBe(true);
    expect(Object.isFrozen(value.a.b)).toBe(true);
    expect(Object.isFrozen(value.a.b[0])).toBe(true);
    expect(deepFreeze(5)).toBe(5);
    expect(deepFreeze(null)).toBe(null);
  });
});

describe('mergeLayers / sanitize', () => {
  it('the result shares nothing with the layers, and the layers are not mutated', () => {
    const defaults = { a: { list: [{ x: 1 }] }, b: { c: 1 } };
    const hub = { b: { d: 2 } };
    const { value } = mergeLayers([
      ['defaults', defaults],
      ['hub', hub],
      ['env', undefined],
    ]);
    expect(value).toEqual({ a: { list: [{ x: 1 }] }, b: { c: 1, d: 2 } });
    expect(value.a).not.toBe(defaults.a);
    expect((value.a as { list: unknown[] }).list).not.toBe(defaults.a.list);
    expect((value.a as { list: unknown[] }).list[0]).not.toBe(defaults.a.list[0]);
    expect(value.b).not.toBe(hub.b);
    expect(defaults).toEqual({ a: { list: [{ x: 1 }] }, b: { c: 1 } });
    expect(hub).toEqual({ b: { d: 2 } });
  });

  it('an object replacing a scalar records the leaves below it, not the path itself', () => {
    const { value, provenance } = mergeLayers([
      ['defaults', { a: 1 }],
      ['hub', { a: { x: 1, y: { z: 2 } } }],
    ]);
    expect(value).toEqual({ a: { x: 1, y: { z: 2 } } });
    expect(Object.fromEntries(provenance)).toEqual({ 'a.x': 'hub', 'a.y.z': 'hub' });
  });

  it('a scalar replacing an object drops only the leaves below that path (not those of a sibling sharing its prefix)', () => {
    const { provenance } = mergeLayers([
      ['defaults', { a: { x: 1, y: { z: 2 } }, ab: 1, 'a-b': 2 }],
      ['hub', { a: 5 }],
    ]);
    expect(Object.fromEntries(provenance)).toEqual({ a: 'hub', ab: 'defaults', 'a-b': 'defaults' });
  });

  it('forbidden keys are dropped at every depth, inside arrays too', () => {
    const hostile = JSON.parse('{"list":[{"__proto__":{"p":1},"ok":1}],"n":{"constructor":{"prototype":{"p":1}},"k":{"__proto__":1}}}');
    const clean = sanitize(hostile) as { list: Array<Record<string, unknown>>; n: Record<string, unknown> };
    expect(clean).toEqual({ list: [{ ok: 1 }], n: { k: {} } });
    expect(Object.hasOwn(clean.list[0]!, '__proto__')).toBe(false);
    expect(sanitize(null)).toBe(null);
    expect(sanitize('x')).toBe('x');
    const { value } = mergeLayers([['hub', hostile]]);
    expect(value).toEqual({ list: [{ ok: 1 }], n: { k: {} } });
  });
});

describe('readEnvLayer / coerceEnvValue', () => {
  const schema = z.object({
    n: z.number(),
    b: z.boolean(),
    nb: z.union([z.number(), z.boolean()]),
    nn: z.number().nullable(),
    o: z.object({ x: z.number() }),
    arr: z.array(z.number()),
    u: z.unknown(),
    lit: z.literal(5),
    word: z.enum(['on', 'off']),
  });

  it('no mapping: an empty layer', () => {
    const layer = readEnvLayer(undefined, { A: '1' }, schema);
    expect(layer).toEqual({ values: {}, sources: new Map(), missing: new Map() });
  });

  it('records set and unset variables under normalized paths; without a schema values stay strings', () => {
    const layer = readEnvLayer({ 'o..x': 'OX', 'n.': 'N', b: 'B' }, { OX: '7', N: ' 8 ' }, undefined);
    expect(layer.values).toEqual({ o: { x: '7' }, n: ' 8 ' });
    expect([...layer.sources]).toEqual([
      ['o.x', 'OX'],
      ['n', 'N'],
    ]);
    expect([...layer.missing]).toEqual([['b', 'B']]);
  });

  it('numbers: trimmed, finite, never from an empty string', () => {
    expect(coerceEnvValue(' 42 ', schema, ['n'])).toBe(42);
    expect(coerceEnvValue('', schema, ['n'])).toBe('');
    expect(coerceEnvValue('   ', schema, ['n'])).toBe('   ');
    expect(coerceEnvValue('Infinity', schema, ['n'])).toBe('Infinity');
    expect(coerceEnvValue('5', schema, ['lit'])).toBe(5);
  });

  it('booleans: true/1 and false/0, any case; anything else stays a string', () => {
    expect(coerceEnvValue(' TRUE ', schema, ['b'])).toBe(true);
    expect(coerceEnvValue('1', schema, ['b'])).toBe(true);
    expect(coerceEnvValue('False', schema, ['b'])).toBe(false);
    expect(coerceEnvValue('0', schema, ['b'])).toBe(false);
    expect(coerceEnvValue('yes', schema, ['b'])).toBe('yes');
    // A number first where both are accepted.
    expect(coerceEnvValue('1', schema, ['nb'])).toBe(1);
    expect(coerceEnvValue('true', schema, ['nb'])).toBe(true);
  });

  it('null only where the schema accepts null', () => {
    expect(coerceEnvValue('null', schema, ['nn'])).toBe(null);
    expect(coerceEnvValue('null', schema, ['n'])).toBe('null');
    expect(coerceEnvValue('null', schema, ['b'])).toBe('null');
  });

  it('JSON text for arrays and objects; unparsable text stays as it was', () => {
    expect(coerceEnvValue(' {"x":1} ', schema, ['o'])).toEqual({ x: 1 });
    expect(coerceEnvValue('[1,2]', schema, ['arr'])).toEqual([1, 2]);
    expect(coerceEnvValue(' [1, ', schema, ['arr'])).toBe(' [1, ');
    expect(coerceEnvValue('1', schema, ['o'])).toBe(1);
  });

  it('unknown, string-like and undeclared paths keep the raw string', () => {
    expect(coerceEnvValue('42', schema, ['u'])).toBe('42');
    expect(coerceEnvValue('on', schema, ['word'])).toBe('on');
    expect(coerceEnvValue('42', schema, ['nope'])).toBe('42');
    expect(coerceEnvValue('42', z.number(), [])).toBe(42);
  });
});

describe('acceptedKinds', () => {
  const kinds = (schema: z.ZodType, path: string[] = []) => [...acceptedKinds(schema, path)].sort();

  it('maps each zod type to the JSON kinds it accepts', () => {
    expect(kinds(z.string())).toEqual(['string']);
    expect(kinds(z.templateLiteral(['a', z.number()]))).toEqual(['string']);
    expect(kinds(z.number().int())).toEqual(['number']);
    expect(kinds(z.int())).toEqual(['number']);
    expect(kinds(z.bigint())).toEqual(['number']);
    expect(kinds(z.boolean())).toEqual(['boolean']);
    expect(kinds(z.array(z.string()))).toEqual(['array']);
    expect(kinds(z.tuple([z.string()]))).toEqual(['array']);
    expect(kinds(z.set(z.string()))).toEqual(['array']);
    expect(kinds(z.object({}))).toEqual(['object']);
    expect(kinds(z.record(z.string(), z.number()))).toEqual(['object']);
    expect(kinds(z.map(z.string(), z.number()))).toEqual(['object']);
    expect(kinds(z.null())).toEqual(['null']);
    expect(kinds(z.string().nullable())).toEqual(['null', 'string']);
    expect(kinds(z.literal(['a', 1, true]))).toEqual(['boolean', 'number', 'string']);
    expect(kinds(z.literal(null))).toEqual(['unknown']);
    expect(kinds(z.enum({ A: 'a', B: 2 }))).toEqual(['number', 'string']);
    expect(kinds(z.any())).toEqual(['unknown']);
    expect(kinds(z.unknown())).toEqual(['unknown']);
    expect(kinds(z.date())).toEqual(['unknown']);
  });

  it('sees through wrappers, pipes, lazies, unions and intersections', () => {
    expect(kinds(z.number().optional())).toEqual(['number']);
    expect(kinds(z.number().default(1))).toEqual(['number']);
    expect(kinds(z.number().prefault(1))).toEqual(['number']);
    expect(kinds(z.number().catch(1))).toEqual(['number']);
    expect(kinds(z.number().readonly())).toEqual(['number']);
    expect(kinds(z.number().optional().nonoptional())).toEqual(['number']);
    expect(kinds(z.string().transform((s) => s.length))).toEqual(['string']);
    expect(kinds(z.lazy(() => z.boolean()))).toEqual(['boolean']);
    expect(kinds(z.union([z.string(), z.number()]))).toEqual(['number', 'string']);
    expect(kinds(z.intersection(z.object({ a: z.number() }), z.object({ b: z.string() })), ['b'])).toEqual(['string']);
    expect(kinds(z.intersection(z.object({ a: z.number() }), z.object({ b: z.string() })), ['a'])).toEqual(['number']);
    // A nullable inside a wrapper still accepts null.
    expect(kinds(z.number().nullable().optional())).toEqual(['null', 'number']);
    expect(kinds(z.object({ a: z.number().nullable() }), ['a'])).toEqual(['null', 'number']);
  });

  it('follows object shapes, record values and any/unknown at dotted paths', () => {
    const schema = z.object({
      o: z.object({ deep: z.object({ n: z.number() }) }).optional(),
      r: z.record(z.string(), z.boolean()),
      a: z.any(),
      s: z.string(),
      u: z.union([z.object({ x: z.number() }), z.object({ x: z.string() })]),
    });
    expect(kinds(schema, ['o', 'deep', 'n'])).toEqual(['number']);
    expect(kinds(schema, ['r', 'anything'])).toEqual(['boolean']);
    expect(kinds(schema, ['a', 'x', 'y'])).toEqual(['unknown']);
    expect(kinds(schema, ['u', 'x'])).toEqual(['number', 'string']);
    expect(kinds(schema, ['s', 'x'])).toEqual([]);
    expect(kinds(schema, ['nope'])).toEqual([]);
  });

  it('a schema that recurses through lazies without end gives up instead of overflowing the stack', () => {
    type Loop = z.ZodType;
    const loop: Loop = z.lazy(() => loop);
    expect(kinds(loop)).toEqual([]);
    // Through every kind of wrapper too.
    const viaOptional: z.ZodType = z.lazy(() => viaOptional.optional());
    const viaPipe: z.ZodType = z.lazy(() => viaPipe.transform((v) => v));
    const viaUnion: z.ZodType = z.lazy(() => z.union([viaUnion, z.string()]));
    const viaIntersection: z.ZodType = z.lazy(() => z.intersection(viaIntersection, z.object({})));
    const viaNullable: z.ZodType = z.lazy(() => viaNullable.nullable());
    expect(kinds(viaOptional)).toEqual([]);
    expect(kinds(viaPipe)).toEqual([]);
    expect(kinds(viaUnion)).toEqual(['string']);
    expect(kinds(viaIntersection)).toEqual(['object']);
    expect(kinds(viaNullable)).toEqual(['null']);
    const tree: z.ZodType = z.object({ leaf: z.number(), child: z.lazy(() => tree) });
    expect(kinds(tree, ['child', 'child', 'leaf'])).toEqual(['number']);
  });
});

describe('resolveConfig / validate / stripCriticalPaths', () => {
  it('stripCriticalPaths: no hub, nothing dropped; otherwise the hub without critical paths', () => {
    expect(stripCriticalPaths(undefined, ['a'])).toEqual({ hub: undefined, dropped: [] });
    const hub = { a: { b: 1, c: 2 } };
    expect(stripCriticalPaths(hub, ['x.y'])).toEqual({ hub, dropped: [] });
    expect(stripCriticalPaths(hub, ['x.y']).hub).toBe(hub);
    expect(stripCriticalPaths(hub, ['a.b', 'a.c', 'x'])).toEqual({ hub: { a: {} }, dropped: ['a.b', 'a.c'] });
  });

  it('without a schema the merged value is served as it is', () => {
    expect(validate('svc', undefined, { a: 1 })).toEqual({ a: 1 });
  });

  it('a schema whose output is not an object is refused', () => {
    const schema = z.object({}).transform(() => 5);
    expect(() => validate('svc', schema, {})).toThrow(/config of svc did not validate to an object/);
    const boxed = z.object({}).transform(() => new Map());
    expect(validate('svc', boxed, {})).toBeInstanceOf(Map);
  });

  it('a failing schema: every issue with its dotted path, the first five in the message, the service named', () => {
    const schema = z.object({ a: z.number(), b: z.number(), c: z.number(), d: z.number(), e: z.number(), f: z.number(), n: z.object({ x: z.string() }) });
    let caught: unknown;
    try {
      validate('svc-x', schema, { n: {} });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigInvalidError);
    const error = caught as ConfigInvalidError;
    expect(error.service).toBe('svc-x');
    expect(error.issues.map((i) => i.path)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'n.x']);
    expect(error.message).toMatch(/^config of svc-x failed its schema: a: .+; b: .+; c: .+; d: .+; e: [^;]+$/);
    expect(error.cause).toBeInstanceOf(z.ZodError);
  });

  it('a root issue is shown as (root)', () => {
    expect(() => validate('svc', z.object({}).refine(() => false, 'never'), {})).toThrow(/failed its schema: \(root\): never/);
  });

  it('an issue at, above or below a critical path whose variable is unset names the variable; others do not', () => {
    const schema = z.object({ db: z.object({ password: z.string(), port: z.number() }), other: z.number() });
    const missing = new Map([['db.password', 'DB_PASSWORD']]);
    const at = () => validate('svc', schema, { db: { port: 1 }, other: 1 }, missing);
    expect(at).toThrow(/db\.password: .*\(critical value: environment variable DB_PASSWORD is not set\)/);
    const above = () => validate('svc', schema, { other: 1 }, missing);
    expect(above).toThrow(/db: .*environment variable DB_PASSWORD is not set/);
    const unrelated = (() => {
      try {
        validate('svc', schema, { db: { password: 'x', port: 'no' }, other: 1 }, missing);
      } catch (error) {
        return error as ConfigInvalidError;
      }
      return undefined;
    })();
    expect(unrelated?.issues).toHaveLength(1);
    expect(unrelated?.issues[0]?.message).not.toMatch(/environment variable/);
    const nested = z.object({ db: z.string() });
    const below = () => validate('svc', nested, {}, new Map([['db.password.inner', 'X']]));
    expect(below).toThrow(/environment variable X is not set/);
    const deeper = z.object({ db: z.object({ password: z.object({ v: z.string() }) }) });
    const under = () => validate('svc', deeper, { db: { password: {} } }, new Map([['db.password', 'DBP']]));
    expect(under).toThrow(/db\.password\.v: .*environment variable DBP is not set/);
    const root = () => validate('svc', z.object({}).refine(() => false, 'never'), {}, new Map([['a', 'A']]));
    expect(root).toThrow(/\(root\): never \(critical value: environment variable A is not set\)/);
  });

  it('the hub layer is sanitized; changes are detected on the plain merge, before transforms', () => {
    const schema = z.object({ name: z.string().transform((s) => s.length) });
    const hub = JSON.parse('{"name":"abcd","__proto__":{"x":1}}');
    const resolved = resolveConfig({ service: 'svc', schema, defaults: { name: 'a' }, hub, env: noEnv, criticalPaths: [] });
    expect(resolved.value).toEqual({ name: 4 });
    expect(resolved.plain).toEqual({ name: 'abcd' });
    expect(resolved.hub).toEqual({ name: 'abcd' });
    expect(Object.hasOwn(resolved.hub!, '__proto__')).toBe(false);
    expect(resolved.droppedCriticalPaths).toEqual([]);
    expect(Object.fromEntries(resolved.provenance)).toEqual({ name: 'hub' });
    const none = resolveConfig({ service: 'svc', schema: undefined, defaults: { a: 1 }, hub: undefined, env: noEnv, criticalPaths: ['a'] });
    expect(none.hub).toBeUndefined();
    expect(none.value).toEqual({ a: 1 });
    expect(Object.isFrozen(none.value)).toBe(true);
  });
});
