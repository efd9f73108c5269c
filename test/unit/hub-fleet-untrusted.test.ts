/**
 * Consumer schemas are untrusted (any valid key may upload one, any read key may make it live): the hub's
 * Ajv is never stricter than the client's zod schema, refused uploads are not asked for again, and
 * pathological schemas are refused, defused or skipped before they can stall a write
 * (examples/hub/fleet/schema-registry.ts, schema-bounds.ts, safe-pattern.ts, consumer-check.ts).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConsumerCheck, MAX_CHECK_COST } from '../../examples/hub/fleet/consumer-check.js';
import type { InstanceRegistry } from '../../examples/hub/fleet/instance-registry.js';
import { compilePattern, isSafePattern, MAX_PATTERN_INPUT } from '../../examples/hub/fleet/safe-pattern.js';
import { boundSchema, checkCost, configSize, MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES } from '../../examples/hub/fleet/schema-bounds.js';
import { DEFAULT_MAX_COMPILED, MAX_HUB_SCHEMA_BYTES, SchemaRegistry, schemaHashOf } from '../../examples/hub/fleet/schema-registry.js';
import { HubError } from '../../examples/hub/errors.js';
import type { SqlExecutor } from '../../examples/hub/store/sql-driver.js';

/** config_schemas in a Map (the statements the registry runs). */
function fakeTable() {
  const rows = new Map<string, unknown>();
  let inserts = 0;
  const db: SqlExecutor = {
    async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
      if (text.startsWith('INSERT INTO config_schemas')) {
        inserts++;
        const [hash, body] = params as [string, string];
        if (rows.has(hash)) return [];
        rows.set(hash, JSON.parse(body));
        return [{ hash } as T];
      }
      const hashes = params[0] as string[];
      const found = hashes.filter((h) => rows.has(h));
      return (text.startsWith('SELECT hash, body') ? found.map((hash) => ({ hash, body: rows.get(hash) })) : found.map((hash) => ({ hash }))) as T[];
    },
    async exec() {},
  };
  return { db, rows, inserts: () => inserts };
}

const upload = (schema: Record<string, unknown>) => ({ schema, unrepresented: [] });
const refusal = async (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof HubError ? { status: e.status, detail: String(e.detail) } : e),
  );

/** A registry holding `schema`, and a check of `config` against it (one consumer). */
async function check(schema: Record<string, unknown>, config: unknown, reg = new SchemaRegistry({ db: fakeTable().db })) {
  const body = upload(schema);
  const hash = schemaHashOf(body);
  await reg.put(hash, body);
  const instances = { schemas: async () => [{ schema_hash: hash, instances: 1, instance_ids: ['i-1'], held: true }] } as unknown as InstanceRegistry;
  return (await ConsumerCheck.prepare(instances, reg, 'svc')).run(config as never);
}
const accepts = async (schema: Record<string, unknown>, config: unknown) => {
  const verdict = await check(schema, config);
  expect(verdict.consumers).toHaveLength(1);
  return verdict.consumers[0]!.issues.length === 0;
};
/** What zod's own converter emits (a client of any version may upload that much). */
const exported = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;

describe('the hub is never stricter than the zod schema the client checks', () => {
  it('a zod regex that is invalid under the u flag compiles and is checked (/^[\\w-.]+$/)', async () => {
    const schema = z.object({ host: z.string().regex(/^[\w-.]+$/) });
    expect(schema.safeParse({ host: 'a.b-c' }).success).toBe(true);
    expect(await accepts(exported(schema), { host: 'a.b-c' })).toBe(true);
    expect(await accepts(exported(schema), { host: 'a b' })).toBe(false);
  });

  it('patterns valid under the u flag keep it: z.emoji() (\\p{…}) accepts what zod accepts', async () => {
    const schema = z.object({ e: z.emoji() });
    expect(schema.safeParse({ e: '😀' }).success).toBe(true);
    expect(await accepts(exported(schema), { e: '😀' })).toBe(true);
    expect(compilePattern('^\\p{L}$').flags).toBe('u');
    expect(compilePattern('^[\\w-.]+$').flags).toBe('');
  });

  it('a flagless zod regex runs without the u flag, as zod runs it: /^.{2,}$/ accepts an astral character', async () => {
    const schema = z.object({ s: z.string().regex(/^.{2,}$/) });
    expect(schema.safeParse({ s: '😀' }).success).toBe(true);
    expect(await accepts(exported(schema), { s: '😀' })).toBe(true);
    expect(await accepts(exported(schema), { s: 'a' })).toBe(false);
  });

  it('multipleOf(0.1) accepts 0.3, as zod does (multipleOfPrecision)', async () => {
    const schema = z.object({ n: z.number().multipleOf(0.1) });
    expect(schema.safeParse({ n: 0.3 }).success).toBe(true);
    expect(await accepts(exported(schema), { n: 0.3 })).toBe(true);
    expect(await accepts(exported(schema), { n: 0.35 })).toBe(false);
  });

  it('zod recursion at the root ("$ref": "#") compiles and is checked', async () => {
    type Chain = { a: number; next?: Chain };
    const chain: z.ZodType<Chain> = z.lazy(() => z.object({ a: z.number(), next: chain.optional() }));
    const schema = exported(chain);
    expect(JSON.stringify(schema)).toContain('"$ref":"#"');
    expect(await accepts(schema, { a: 1, next: { a: 2 } })).toBe(true);
    expect(await accepts(schema, { a: 1, next: { a: 'x' } })).toBe(false);
  });
});

describe('a hash whose upload was refused is remembered (negative cache)', () => {
  it('is not named in x-config-schema-unknown for 10 minutes, and its upload is refused again without compiling', async () => {
    const t = fakeTable();
    let now = 1_000_000;
    const reg = new SchemaRegistry({ db: t.db, now: () => now });
    const bad = upload({ type: 'no-such-type' });
    const hash = schemaHashOf(bad);
    await reg.refresh([hash]);
    expect(reg.classify([hash]).unknown).toEqual([hash]);
    const first = await refusal(reg.put(hash, bad));
    expect(first).toMatchObject({ status: 400, detail: expect.stringMatching(/does not compile/) });
    // The client re-PUTs every 30 s while the hash is named: it is not named any more.
    expect(reg.classify([hash])).toEqual({ unknown: [], recheck: [] });
    expect(await refusal(reg.put(hash, bad))).toEqual(first);
    now += 599_999;
    expect(reg.classify([hash])).toEqual({ unknown: [], recheck: [] });
    now += 1;
    expect(reg.classify([hash])).toEqual({ unknown: [], recheck: [hash] });
    expect(t.inserts()).toBe(0);
  });

  it('a body that does not hash to the URL is refused but not remembered (anyone could name any hash)', async () => {
    const reg = new SchemaRegistry({ db: fakeTable().db });
    const good = upload({ type: 'object' });
    const hash = schemaHashOf(good);
    expect(await refusal(reg.put(hash, upload({ type: 'no-such-type' })))).toMatchObject({ status: 400, detail: expect.stringMatching(/hash mismatch/) });
    expect(await reg.put(hash, good)).toEqual({ created: true });
  });

  it('an upload over 64 KiB of canonical JSON is 413, and remembered', async () => {
    const reg = new SchemaRegistry({ db: fakeTable().db });
    const big = upload({ type: 'object', description: 'x'.repeat(MAX_HUB_SCHEMA_BYTES) });
    const hash = schemaHashOf(big);
    await reg.refresh([hash]);
    expect(await refusal(reg.put(hash, big))).toMatchObject({ status: 413, detail: expect.stringMatching(/65536/) });
    expect(reg.classify([hash]).unknown).toEqual([]);
  });
});

describe('untrusted schemas: unsafe patterns are dropped before compiling', () => {
  it('safe-regex2 and the hub checks: nested quantifiers, repeated alternations, more than two unbounded quantifiers', () => {
    for (const unsafe of ['^(a+)+$', '^(a|a)*$', '(\\w|\\d)+$', '((a|b)c)*', '^\\d*\\d*\\d*x$', '(a|aa){2,30}']) expect(isSafePattern(unsafe), unsafe).toBe(false);
    for (const safe of ['^[\\w-.]+$', '^[a-z0-9-]{1,100}$', '^(?:a|b)?x$', '^\\d+\\.\\d+$', '^[^A-Z]*$', '(a|b){1}', '^x1']) expect(isSafePattern(safe), safe).toBe(true);
    // safe-regex2 counts `?` as a quantifier: a quantifier inside an optional group is "nested" (dropped, lenient).
    expect(isSafePattern('^v-?\\d+(?:\\.\\d+)?$')).toBe(false);
  });

  it('an unsafe pattern / patternProperties key is removed from the compiled copy and listed as unsafe-pattern', async () => {
    const schema = {
      type: 'object',
      properties: { s: { type: 'string', pattern: '^(a|a)*$' }, t: { type: 'string', pattern: '^t' } },
      patternProperties: { '^(x+)+$': { type: 'number' } },
      additionalProperties: false,
    };
    const verdict = await check(schema, { s: `${'a'.repeat(40)}!`, t: 't', xxx: 'not a number' });
    expect(verdict.consumers[0]!.issues).toEqual([]);
    expect(verdict.unchecked).toEqual([
      { schema_hash: expect.any(String), path: 's', kind: 'unsafe-pattern' },
      { schema_hash: expect.any(String), path: '', kind: 'unsafe-pattern' },
    ]);
    // The safe pattern still applies; the removed one's properties did not become "additional".
    expect((await check(schema, { t: 'u' })).consumers[0]!.issues).toEqual([expect.objectContaining({ path: 't', keyword: 'pattern' })]);
    expect((await check(schema, { other: 1 })).consumers[0]!.issues).toEqual([]);
  });

  it('the ReDoS of the review (^(a|a)*$ on 24 a) costs nothing: the pattern is not run', async () => {
    const started = performance.now();
    await check({ properties: { s: { pattern: '^(a|a)*$' } } }, { s: `${'a'.repeat(32)}!` });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it(`patterns are not run on strings over ${MAX_PATTERN_INPUT} characters`, async () => {
    expect(await accepts({ properties: { s: { pattern: '^a+$' } } }, { s: 'b'.repeat(MAX_PATTERN_INPUT + 1) })).toBe(true);
    expect(await accepts({ properties: { s: { pattern: '^a+$' } } }, { s: 'b'.repeat(MAX_PATTERN_INPUT) })).toBe(false);
  });

  it('uniqueItems over items that are not scalars (quadratic) is dropped as unsafe-keyword; over scalar items it is kept', async () => {
    const objects = await check({ properties: { a: { type: 'array', uniqueItems: true } } }, { a: [{ k: 1 }, { k: 1 }] });
    expect(objects.consumers[0]!.issues).toEqual([]);
    expect(objects.unchecked).toEqual([{ schema_hash: expect.any(String), path: 'a', kind: 'unsafe-keyword' }]);
    expect(await accepts({ properties: { a: { type: 'array', uniqueItems: true, items: { type: 'string' } } } }, { a: ['x', 'x'] })).toBe(false);
  });
});

describe('untrusted schemas: bounded, or refused with 400 { detail }', () => {
  const refused = async (schema: Record<string, unknown>) => {
    const reg = new SchemaRegistry({ db: fakeTable().db });
    const body = upload(schema);
    return refusal(reg.put(schemaHashOf(body), body));
  };
  const nest = (depth: number): Record<string, unknown> => (depth <= 1 ? { type: 'string' } : { type: 'object', properties: { a: nest(depth - 1) } });

  it.each([
    ['a $ref outside the schema', { $ref: 'https://example.com/other.json' }, /\$ref must be "#" or point into "#\/\$defs\/"/],
    ['a $ref to a definitions (draft 7) path', { definitions: { a: {} }, $ref: '#/definitions/a' }, /\$ref must be/],
    ['a $dynamicRef to an anchor', { $dynamicRef: '#meta' }, /\$dynamicRef must be/],
    ['a $ref to no schema', { $defs: { a: { enum: [1] } }, $ref: '#/$defs/a/enum/0' }, /does not point at a schema/],
    ['a nested $id', { properties: { a: { $id: 'https://example.com/a', type: 'string' } } }, /\$id is allowed at the root only/],
    ['a $ref cycle that does not descend into the value', { $defs: { a: { anyOf: [{ $ref: '#/$defs/b' }] }, b: { allOf: [{ $ref: '#/$defs/a' }] } }, $ref: '#/$defs/a' }, /cycle/],
    [`more than ${MAX_SCHEMA_NODES} schema objects`, { properties: Object.fromEntries(Array.from({ length: MAX_SCHEMA_NODES }, (_, i) => [`k${i}`, {}])) }, /more than 2000 schema objects/],
    [`schema objects nested deeper than ${MAX_SCHEMA_DEPTH}`, nest(MAX_SCHEMA_DEPTH + 1), /deeper than 32/],
    ['more than 500 anyOf branches', { anyOf: Array.from({ length: 501 }, () => ({})) }, /anyOf holds more than 500/],
    ['more than 100 patternProperties', { patternProperties: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`^k${i}`, {}])) }, /patternProperties holds more than 100/],
  ])('refuses %s', async (_what, schema, detail) => {
    expect(await refused(schema as Record<string, unknown>)).toEqual({ status: 400, detail: expect.stringMatching(detail) });
  });

  it(`accepts the largest: ${MAX_SCHEMA_NODES} schema objects, nested ${MAX_SCHEMA_DEPTH} deep, local $refs and recursion`, async () => {
    expect(await refused({ properties: Object.fromEntries(Array.from({ length: MAX_SCHEMA_NODES - 1 }, (_, i) => [`k${i}`, {}])) })).toBeUndefined();
    expect(await refused(nest(MAX_SCHEMA_DEPTH))).toBeUndefined();
    expect(await refused({ $defs: { T: { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#/$defs/T' } } } } }, $ref: '#/$defs/T' })).toBeUndefined();
  });

  it(`the validator cache holds at most ${DEFAULT_MAX_COMPILED} compiled schemas`, async () => {
    const reg = new SchemaRegistry({ db: fakeTable().db });
    for (let i = 0; i < DEFAULT_MAX_COMPILED + 5; i++) {
      const body = upload({ type: 'object', minProperties: i });
      await reg.put(schemaHashOf(body), body);
    }
    expect(reg.compiledCount).toBe(DEFAULT_MAX_COMPILED);
  });
});

describe('untrusted schemas: a check that would cost too much is skipped, never run', () => {
  const chain = () => {
    const $defs: Record<string, unknown> = { d0: { type: 'string' } };
    for (let i = 1; i <= 20; i++) $defs[`d${i}`] = { anyOf: [{ $ref: `#/$defs/d${i - 1}` }, { $ref: `#/$defs/d${i - 1}` }, { type: 'number' }] };
    return { $defs, type: 'object', properties: { a: { $ref: '#/$defs/d20' } } };
  };

  it('the cost expands $refs: the review\'s anyOf chain (2^20 paths, 1.7 KB) is too costly for any config', () => {
    const { cost } = boundSchema(chain());
    expect(cost[0]).toBeLessThan(100);
    expect(cost[1]).toBeGreaterThan(2 ** 20);
    expect(checkCost(cost, configSize({ a: true }))).toBeGreaterThan(MAX_CHECK_COST);
  });

  it('a consumer whose check would cost more than the budget is listed unchecked as too-costly, and the write is not stalled', async () => {
    const started = performance.now();
    const verdict = await check(chain(), { a: true });
    expect(verdict.consumers).toEqual([]);
    expect(verdict.unchecked).toEqual([{ schema_hash: expect.any(String), path: '', kind: 'too-costly' }]);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('the cost grows with the config: a costly schema is checked on a small config and skipped on a large one', async () => {
    const every = { anyOf: [...Array.from({ length: 400 }, () => ({ type: 'null' })), {}], additionalProperties: { $ref: '#' }, items: { $ref: '#' } };
    expect((await check(every, { a: [1, 2, 3] })).consumers).toHaveLength(1);
    expect((await check(every, { a: Array.from({ length: 500 }, (_, i) => i) })).unchecked).toEqual([expect.objectContaining({ kind: 'too-costly' })]);
  });

  it('recursion that multiplies per level is costed per depth: fine on a shallow config, too costly on a deep one', async () => {
    const branching = { $defs: { T: { type: 'object', properties: { a: { anyOf: [{ $ref: '#/$defs/T' }, { $ref: '#/$defs/T' }] } } } }, $ref: '#/$defs/T' };
    const deep = (d: number): unknown => (d === 0 ? {} : { a: deep(d - 1) });
    expect((await check(branching, deep(4))).consumers).toHaveLength(1);
    expect((await check(branching, deep(30))).unchecked).toEqual([expect.objectContaining({ kind: 'too-costly' })]);
  });

  it('a check that collects more than 5 000 issues stops with one issue (memory bounded), and still rejects', async () => {
    const schema = { required: Array.from({ length: 1000 }, (_, i) => `k${i}`), additionalProperties: { $ref: '#' }, items: { $ref: '#' } };
    const verdict = await check(schema, { a: Array.from({ length: 30 }, () => ({})) });
    expect(verdict.consumers[0]!.issues).toEqual([{ path: '', message: 'more than 5000 issues: the check stopped', keyword: 'maxIssues' }]);
  });

  it.each<[string, Record<string, unknown>]>([
    ['additionalProperties: false', { properties: { a: {} }, additionalProperties: false }],
    ['propertyNames: false', { propertyNames: false }],
    ['unevaluatedProperties: false', { properties: { a: {} }, unevaluatedProperties: false }],
  ])('a closed object (%s) with thousands of extra names stops before an error per name', async (_what, closed) => {
    const schema = { type: 'object', properties: { m: { type: 'object', ...closed } } };
    const names = (n: number) => ({ m: Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 1])) });
    expect((await check(schema, names(50_000))).consumers[0]!.issues).toEqual([expect.objectContaining({ keyword: 'maxIssues' })]);
    expect((await check(schema, names(3))).consumers[0]!.issues.length).toBeGreaterThan(0);
    expect((await check(schema, { m: { a: 1 } })).consumers[0]!.issues.length > 0).toBe(closed.propertyNames === false);
  });
});
