/**
 * Consumer schemas on the hub: Ajv's errors as issues (examples/hub/fleet/issues.ts), the schema
 * registry's hash check, compile check and caches (schema-registry.ts, over a fake table), and the
 * consumer check a write runs (consumer-check.ts).
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { checkWrite, ConsumerCheck, refusal, refusalDetail } from '../../examples/hub/fleet/consumer-check.js';
import type { InstanceRegistry } from '../../examples/hub/fleet/instance-registry.js';
import { dedupeIssues, issuesOf, pointerToPath } from '../../examples/hub/fleet/issues.js';
import { SchemaRegistry, schemaHashOf } from '../../examples/hub/fleet/schema-registry.js';
import { HubError } from '../../examples/hub/errors.js';
import type { SqlExecutor } from '../../examples/hub/store/sql-driver.js';

const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false });
const errorsOf = (schema: object, value: unknown) => {
  const validate = ajv.compile(schema);
  validate(value);
  return validate.errors;
};

const SCHEMA = {
  type: 'object',
  properties: {
    operational: {
      type: 'object',
      properties: { batch_size: { type: 'integer', exclusiveMinimum: 0 }, mode: { enum: ['fast', 'safe'] } },
      required: ['batch_size'],
      additionalProperties: false,
    },
  },
};
const upload = (schema: object = SCHEMA, unrepresented: unknown[] = []) => ({ schema, unrepresented });

/** config_schemas in a Map: the three statements the registry runs. */
function fakeTable() {
  const rows = new Map<string, unknown>();
  let queries = 0;
  let failing = false;
  const db: SqlExecutor = {
    async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
      queries++;
      if (failing) throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
      if (text.startsWith('INSERT INTO config_schemas')) {
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
  return { db, rows, queries: () => queries, fail: (on: boolean) => (failing = on) };
}

const status = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof HubError ? e.status : e));

describe('Ajv errors as issues', () => {
  it('maps the instance path to a dotted path and names the keyword', () => {
    expect(issuesOf(errorsOf(SCHEMA, { operational: { batch_size: 0 } }))).toEqual([
      { path: 'operational.batch_size', message: 'must be > 0', keyword: 'exclusiveMinimum' },
    ]);
  });

  it('puts the property of required / additionalProperties into the path', () => {
    const issues = issuesOf(errorsOf(SCHEMA, { operational: { extra: 1 } }));
    expect(issues).toEqual(
      expect.arrayContaining([
        { path: 'operational.batch_size', message: "must have required property 'batch_size'", keyword: 'required' },
        { path: 'operational.extra', message: 'must NOT have additional properties', keyword: 'additionalProperties' },
      ]),
    );
    expect(issuesOf(errorsOf({ required: ['a'] }, {}))).toEqual([{ path: 'a', message: "must have required property 'a'", keyword: 'required' }]);
  });

  it('unescapes RFC 6901 pointers and keeps array indexes; the root is ""', () => {
    expect(pointerToPath('/a~1b/c~0d/0')).toBe('a/b.c~d.0');
    expect(pointerToPath('')).toBe('');
    expect(issuesOf(errorsOf({ type: 'object' }, 1))).toEqual([{ path: '', message: 'must be object', keyword: 'type' }]);
  });

  it('is bounded and without repeats', () => {
    const many = errorsOf({ type: 'array', items: { type: 'string' } }, Array.from({ length: 500 }, (_, i) => i));
    expect(many).toHaveLength(500);
    expect(issuesOf(many)).toHaveLength(50);
    const one = { path: 'a', message: 'm', keyword: 'k' };
    expect(dedupeIssues([one, { ...one }, { ...one, path: 'b' }])).toEqual([one, { ...one, path: 'b' }]);
  });
});

describe('SchemaRegistry', () => {
  it('stores an upload whose hash is sha256 of its canonical JSON: 201 created, then created: false', async () => {
    const t = fakeTable();
    const reg = new SchemaRegistry({ db: t.db });
    const body = upload();
    const hash = schemaHashOf(body);
    // Key order does not change the hash (canonical JSON).
    expect(schemaHashOf({ unrepresented: [], schema: body.schema })).toBe(hash);
    expect(await reg.put(hash, body)).toEqual({ created: true });
    expect(await reg.put(hash, body)).toEqual({ created: false });
    expect(t.rows.has(hash)).toBe(true);
  });

  it('refuses a hash mismatch, a schema that does not compile, and a malformed upload with 400, storing nothing', async () => {
    const t = fakeTable();
    const reg = new SchemaRegistry({ db: t.db });
    expect(await status(reg.put('0'.repeat(64), upload()))).toBe(400);
    const bad = upload({ type: 'no-such-type' });
    expect(await status(reg.put(schemaHashOf(bad), bad))).toBe(400);
    const remote = upload({ $ref: 'https://example.com/other.json' });
    expect(await status(reg.put(schemaHashOf(remote), remote))).toBe(400);
    const malformed = { schema: [], unrepresented: [] };
    expect(await status(reg.put(schemaHashOf(malformed), malformed))).toBe(400);
    expect(t.rows.size).toBe(0);
    expect(t.queries()).toBe(0);
  });

  it('two uploads may share an $id (kept out of Ajv global registry)', async () => {
    const reg = new SchemaRegistry({ db: fakeTable().db });
    const a = upload({ $id: 'https://example.com/same.json', type: 'object' });
    const b = upload({ $id: 'https://example.com/same.json', type: 'object', required: ['x'] });
    expect(await reg.put(schemaHashOf(a), a)).toEqual({ created: true });
    expect(await reg.put(schemaHashOf(b), b)).toEqual({ created: true });
  });

  it('loads hashes missing from its bounded cache from the table, and leaves unknown ones out', async () => {
    const t = fakeTable();
    const writer = new SchemaRegistry({ db: t.db });
    const bodies = [1, 2, 3].map((n) => upload({ type: 'object', minProperties: n }));
    for (const b of bodies) await writer.put(schemaHashOf(b), b);
    const reader = new SchemaRegistry({ db: t.db, maxCompiled: 2 });
    const hashes = bodies.map(schemaHashOf);
    const loaded = await reader.load([...hashes, 'f'.repeat(64)]);
    expect([...loaded.keys()].sort()).toEqual([...hashes].sort());
    expect(loaded.get(hashes[1]!)!.validate({ a: 1 })).toBe(false);
    const before = t.queries();
    await reader.load([hashes[2]!]);
    expect(t.queries()).toBe(before); // cached
    await reader.load([hashes[0]!]);
    expect(t.queries()).toBe(before + 1); // evicted (max 2), loaded again
  });

  it('classify answers without I/O; a hash is looked up at most once per recheck interval', async () => {
    const t = fakeTable();
    let now = 1_000_000;
    const reg = new SchemaRegistry({ db: t.db, unknownRecheckMs: 10_000, now: () => now });
    const known = upload();
    await reg.put(schemaHashOf(known), known);
    const unknown = 'e'.repeat(64);
    expect(reg.classify([schemaHashOf(known), unknown])).toEqual({ unknown: [], recheck: [unknown] });
    await reg.refresh([unknown]);
    expect(reg.classify([unknown])).toEqual({ unknown: [unknown], recheck: [] });
    now += 10_000;
    expect(reg.classify([unknown])).toEqual({ unknown: [], recheck: [unknown] });
    // The table failing: say nothing for one interval (an upload would fail too).
    t.fail(true);
    await expect(reg.refresh([unknown])).rejects.toThrow();
    expect(reg.classify([unknown])).toEqual({ unknown: [], recheck: [] });
  });
});

describe('ConsumerCheck', () => {
  async function checkFor(groups: { schema_hash: string; instances: number; instance_ids: string[]; held?: boolean }[], bodies: object[]) {
    const t = fakeTable();
    const reg = new SchemaRegistry({ db: t.db });
    for (const b of bodies) await reg.put(schemaHashOf(b), b);
    const held = new Set(t.rows.keys());
    const instances = { schemas: async () => groups.map((g) => ({ held: held.has(g.schema_hash), ...g })) } as unknown as InstanceRegistry;
    return ConsumerCheck.prepare(instances, reg, 'svc');
  }

  it('checks once per distinct schema; names the rejecting consumers, unchecked parts and unknown schemas', async () => {
    const strict = upload(SCHEMA, [{ path: 'operational', kind: 'refinement' }]);
    const loose = upload({ type: 'object' });
    const unknown = 'd'.repeat(64);
    const check = await checkFor(
      [
        { schema_hash: schemaHashOf(strict), instances: 3, instance_ids: ['a', 'b', 'c'] },
        { schema_hash: schemaHashOf(loose), instances: 1, instance_ids: ['d'] },
        { schema_hash: unknown, instances: 2, instance_ids: ['e', 'f'] },
      ],
      [strict, loose],
    );
    const verdict = check.run({ operational: { batch_size: 0 } });
    expect(verdict.consumers.map((c) => [c.instances, c.issues.length])).toEqual([
      [3, 1],
      [1, 0],
    ]);
    expect(verdict.unchecked).toEqual([{ schema_hash: schemaHashOf(strict), path: 'operational', kind: 'refinement' }]);
    expect(verdict.unknown_schemas).toEqual([unknown]);
    expect(refusalDetail(verdict)).toBe('1 consumer (3 instances) would reject this config');
    const error = refusal(verdict);
    expect(error.status).toBe(422);
    expect(error.extra.consumers).toEqual([expect.objectContaining({ schema_hash: schemaHashOf(strict), instance_ids: ['a', 'b', 'c'] })]);
    expect(check.run({ operational: { batch_size: 5 } }).issues).toEqual([]);
  });

  it('checkWrite refuses with 422, or with force returns the override to record', async () => {
    const strict = upload(SCHEMA);
    const check = await checkFor([{ schema_hash: schemaHashOf(strict), instances: 1, instance_ids: ['a'] }], [strict]);
    expect(() => checkWrite(check, { operational: { batch_size: -1 } }, false, () => {})).toThrow(HubError);
    expect(checkWrite(check, { operational: { batch_size: 1 } }, false, () => {})).toBeUndefined();
    let seen = 0;
    const forced = checkWrite(check, { operational: { batch_size: -1 } }, true, () => seen++);
    expect(forced?.override).toMatchObject({ forced: true, issues: [{ path: 'operational.batch_size' }], consumers: [{ instances: 1 }] });
    expect(seen).toBe(1);
    const none = await checkFor([], []);
    expect(checkWrite(none, { anything: true }, false, () => {})).toBeUndefined();
  });
});
