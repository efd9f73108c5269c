import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { coerceEnvValue, readEnvLayer } from '../../src/layers/env.js';
import { mergeLayers } from '../../src/layers/merge.js';
import { changedPaths } from '../../src/layers/paths.js';
import { resolveConfig } from '../../src/layers/resolve.js';

const schema = z.object({
  operational: z.object({ batch_size: z.number().int().positive(), label: z.string(), enabled: z.boolean(), tags: z.array(z.string()) }),
  database: z.object({ host: z.string(), port: z.number(), password: z.string() }),
});

describe('mergeLayers', () => {
  it('deep-merges objects, replaces arrays and scalars, later layers win, with provenance', () => {
    const { value, provenance } = mergeLayers([
      ['defaults', { a: { x: 1, y: [1, 2, 3] }, b: 'd' }],
      ['hub', { a: { y: [9], z: true } }],
      ['env', { b: 'e' }],
    ]);
    expect(value).toEqual({ a: { x: 1, y: [9], z: true }, b: 'e' });
    expect(Object.fromEntries(provenance)).toEqual({ 'a.x': 'defaults', 'a.y': 'hub', 'a.z': 'hub', b: 'env' });
  });

  it('a scalar replacing an object drops the provenance of the leaves below it', () => {
    const { value, provenance } = mergeLayers([
      ['defaults', { a: { x: 1 } }],
      ['hub', { a: 5 }],
    ]);
    expect(value).toEqual({ a: 5 });
    expect(Object.fromEntries(provenance)).toEqual({ a: 'hub' });
  });

  it('never lets __proto__ reach a prototype', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "a": {"__proto__": {"polluted": 1}}}');
    const { value } = mergeLayers([['hub', hostile]]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['a']);
  });
});

describe('env coercion guided by the schema', () => {
  it('parses numbers only where the schema wants a number', () => {
    expect(coerceEnvValue('150', schema, ['operational', 'batch_size'])).toBe(150);
    expect(coerceEnvValue('007', schema, ['operational', 'label'])).toBe('007');
    expect(coerceEnvValue('true', schema, ['operational', 'enabled'])).toBe(true);
    expect(coerceEnvValue('false', schema, ['operational', 'enabled'])).toBe(false);
    expect(coerceEnvValue('["a","b"]', schema, ['operational', 'tags'])).toEqual(['a', 'b']);
    // Not coercible: left as a string so the schema reports it rather than us guessing.
    expect(coerceEnvValue('abc', schema, ['operational', 'batch_size'])).toBe('abc');
  });

  it('sees through optional, default, nullable and unions', () => {
    const s = z.object({ a: z.number().optional(), b: z.number().default(1), c: z.union([z.string(), z.number()]), d: z.number().nullable() });
    expect(coerceEnvValue('5', s, ['a'])).toBe(5);
    expect(coerceEnvValue('5', s, ['b'])).toBe(5);
    expect(coerceEnvValue('5', s, ['c'])).toBe('5');
    expect(coerceEnvValue('null', s, ['d'])).toBe(null);
  });

  it('reads only the variables that are set', () => {
    const layer = readEnvLayer({ 'database.host': 'DB_HOST', 'database.port': 'DB_PORT' }, { DB_PORT: '5433' }, schema);
    expect(layer.values).toEqual({ database: { port: 5433 } });
    expect([...layer.sources]).toEqual([['database.port', 'DB_PORT']]);
  });
});

describe('resolveConfig', () => {
  const base = {
    service: 'svc',
    schema,
    defaults: { operational: { batch_size: 100, label: 'x', enabled: false, tags: [] }, database: { host: 'localhost', port: 5432 } },
    criticalPaths: ['database.host', 'database.password'],
  };

  it('env > hub > defaults; hub values at critical paths are dropped and reported', () => {
    const env = readEnvLayer({ 'database.host': 'DB_HOST', 'database.password': 'DB_PASSWORD' }, { DB_HOST: 'db.internal', DB_PASSWORD: 's3cret' }, schema);
    const resolved = resolveConfig({
      ...base,
      env,
      hub: { operational: { batch_size: 150 }, database: { host: 'evil.example', password: 'hub-pw', port: 6000 } },
    });
    expect(resolved.value).toEqual({
      operational: { batch_size: 150, label: 'x', enabled: false, tags: [] },
      database: { host: 'db.internal', port: 6000, password: 's3cret' },
    });
    expect(resolved.droppedCriticalPaths).toEqual(['database.host', 'database.password']);
    expect(resolved.hub).toEqual({ operational: { batch_size: 150 }, database: { port: 6000 } });
    expect(resolved.provenance.get('database.host')).toBe('env');
    expect(Object.isFrozen(resolved.value)).toBe(true);
  });

  it('a hub value at a critical path is dropped even when the env variable is unset', () => {
    const env = readEnvLayer({ 'database.password': 'DB_PASSWORD' }, {}, schema);
    expect(() => resolveConfig({ ...base, env, hub: { database: { password: 'from-hub' } } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('a result that fails the schema is a CONFIG_INVALID with issues', () => {
    const env = readEnvLayer({}, {}, schema);
    try {
      resolveConfig({ ...base, env, hub: { operational: { batch_size: -1 } } });
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
      const paths = (error as { issues: Array<{ path: string }> }).issues.map((i) => i.path);
      expect(paths).toContain('operational.batch_size');
    }
  });
});

describe('changedPaths', () => {
  it('reports the deepest differing paths, arrays as leaves', () => {
    expect(changedPaths({ a: { b: 1, c: [1] }, d: 1 }, { a: { b: 2, c: [1, 2] }, d: 1, e: { f: 1 } })).toEqual(['a.b', 'a.c', 'e']);
    expect(changedPaths({ a: 1 }, { a: 1 })).toEqual([]);
  });
});
