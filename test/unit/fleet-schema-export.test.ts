/**
 * The schema export of the fleet protocol (docs/fleet.md §2): the JSON Schema of what a client accepts
 * FROM THE HUB, what it leaves out (critical paths, what the defaults or env supply), what it lists as
 * unrepresented, its hash, and that no environment value ever reaches it.
 */
import { createHash } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { HttpResponse, http } from 'msw';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';
import { exportSchema, LazySchemaExport } from '../../src/fleet/schema-export.js';
import { instanceReportSchema, schemaUploadSchema } from '../../src/fleet/wire.js';
import { configPathOf, criticalTree, findUnrepresented, isCritical, isLoose } from '../../src/fleet/zod-walk.js';
import { canonicalJson } from '../../src/hub/notice-signature.js';
import { resolveConfig } from '../../src/layers/resolve.js';
import { type PlainObject, setPath, splitPath } from '../../src/layers/paths.js';
import { silentLogger } from '../../src/logger.js';
import { useMswClients } from '../helpers/msw-clients.js';

type Json = Record<string, any>;

const schemaOf = (exported: { upload: { schema: Json } }): Json => exported.upload.schema;

/** The reference hub's Ajv settings (examples/hub/fleet/schema-registry.ts). */
const ajv = new Ajv2020({ strict: false, allErrors: true, unicodeRegExp: false, multipleOfPrecision: 9, addUsedSchema: false, logger: false });

/**
 * The two verdicts on one hub document: the hub's (Ajv on the export) and the client's (resolveConfig with
 * these defaults and env values at the critical paths).
 */
function verdicts(schema: z.ZodType, defaults: PlainObject | undefined, env: Record<string, unknown>, hub: PlainObject) {
  const criticalPaths = Object.keys(env);
  const exported = exportSchema(schema, defaults, criticalPaths);
  const values: PlainObject = {};
  for (const [path, value] of Object.entries(env)) setPath(values, splitPath(path), value);
  let client = true;
  try {
    resolveConfig({ service: 'svc', schema, defaults, hub, env: { values, sources: new Map(), missing: new Map() }, criticalPaths });
  } catch {
    client = false;
  }
  return { hub: ajv.validate(exported.upload.schema, hub) as boolean, client, unrepresented: exported.upload.unrepresented, schema: exported.upload.schema as Json };
}

describe('critical (env) paths are not in the export', () => {
  const schema = z.object({
    database: z.object({ host: z.string(), password: z.string().min(12), port: z.number() }),
    deep: z.object({ a: z.object({ b: z.object({ secret: z.string(), keep: z.number() }) }) }),
    token: z.string(),
  });

  it('removes a critical leaf from properties and required, at depth 1, 2 and 4', () => {
    const out = schemaOf(exportSchema(schema, undefined, ['database.password', 'deep.a.b.secret', 'token']));
    expect(Object.keys(out.properties).sort()).toEqual(['database', 'deep']);
    expect(out.required).toEqual(['database', 'deep']);
    expect(Object.keys(out.properties.database.properties)).toEqual(['host', 'port']);
    expect(out.properties.database.required).toEqual(['host', 'port']);
    expect(out.properties.deep.properties.a.properties.b).toEqual({
      type: 'object',
      properties: { keep: { type: 'number' } },
      required: ['keep'],
    });
  });

  it('removes a whole critical object, and a critical path below another critical path changes nothing more', () => {
    const out = schemaOf(exportSchema(schema, undefined, ['database', 'database.host']));
    expect(Object.keys(out.properties).sort()).toEqual(['deep', 'token']);
    expect(out.required).toEqual(['deep', 'token']);
  });

  it('strips critical values from a schema default above them (a dev password written as an object default)', () => {
    const withDefault = z.object({
      database: z.object({ host: z.string(), password: z.string(), port: z.number() }).default({ host: 'localhost', password: 'dev-only-pw', port: 5432 }),
    });
    const exported = exportSchema(withDefault, undefined, ['database.host', 'database.password']);
    expect(schemaOf(exported).properties.database.default).toEqual({ port: 5432 });
    expect(exported.body).not.toContain('dev-only-pw');
    expect(exported.body).not.toContain('localhost');
  });

  it('strips critical values from examples above them', () => {
    const withExamples = z.object({ db: z.object({ password: z.string(), pool: z.number() }).meta({ examples: [{ password: 'example-pw', pool: 4 }] }) });
    const exported = exportSchema(withExamples, undefined, ['db.password']);
    expect(schemaOf(exported).properties.db.examples).toEqual([{ pool: 4 }]);
    expect(exported.body).not.toContain('example-pw');
  });

  it('keeps a schema default that is code and below no critical path', () => {
    const out = schemaOf(exportSchema(z.object({ retries: z.number().default(3) }), undefined, []));
    expect(out.properties.retries).toEqual({ default: 3, type: 'number' });
    expect(out.required).toBeUndefined();
  });
});

describe('what the defaults or env supply is not required from the hub', () => {
  const schema = z.object({
    operational: z.object({ batch_size: z.number(), interval: z.number(), mode: z.string() }),
    limits: z.object({ max: z.number(), min: z.number() }),
    name: z.string(),
    list: z.array(z.number()),
  });

  it('drops a leaf the defaults supply, keeps the one they do not', () => {
    const out = schemaOf(exportSchema(schema, { operational: { batch_size: 100 }, name: 'svc' }, []));
    expect(out.required).toEqual(['limits', 'list', 'operational']);
    expect(out.properties.operational.required).toEqual(['interval', 'mode']);
  });

  it('an object whose required children the defaults all supply is not required, recursively', () => {
    const nested = z.object({ a: z.object({ b: z.object({ c: z.number(), d: z.number() }), e: z.string() }), f: z.number() });
    const out = schemaOf(exportSchema(nested, { a: { b: { c: 1, d: 2 }, e: 'x' } }, []));
    expect(out.required).toEqual(['f']);
    expect(out.properties.a.required).toBeUndefined();
    expect(out.properties.a.properties.b.required).toBeUndefined();
  });

  it('an object stays required when one of its required children comes from nowhere', () => {
    const nested = z.object({ a: z.object({ b: z.object({ c: z.number(), d: z.number() }) }) });
    const out = schemaOf(exportSchema(nested, { a: { b: { c: 1 } } }, []));
    expect(out.required).toEqual(['a']);
    expect(out.properties.a.required).toEqual(['b']);
    expect(out.properties.a.properties.b.required).toEqual(['d']);
  });

  it('an object is not required when env supplies some children and the defaults the rest', () => {
    const out = schemaOf(exportSchema(schema, { limits: { min: 0 } }, ['limits.max']));
    expect(out.required).toEqual(['list', 'name', 'operational']);
    expect(out.properties.limits).toEqual({ type: 'object', properties: { min: { type: 'number' } } });
  });

  it('an object is not required when env supplies all its required children', () => {
    const out = schemaOf(exportSchema(z.object({ db: z.object({ host: z.string(), user: z.string() }), x: z.number() }), undefined, ['db.host', 'db.user']));
    expect(out.required).toEqual(['x']);
  });

  it('a scalar or array default supplies its property whole', () => {
    const out = schemaOf(exportSchema(schema, { list: [1, 2], name: '' }, []));
    expect(out.required).toEqual(['limits', 'operational']);
  });

  it('a default of undefined supplies nothing', () => {
    const out = schemaOf(exportSchema(z.object({ a: z.number() }), { a: undefined }, []));
    expect(out.required).toEqual(['a']);
  });

  it('relaxes the branches of a nullable object and of an intersection', () => {
    const nullable = z.object({ a: z.object({ b: z.number(), c: z.number() }).nullable() });
    const n = schemaOf(exportSchema(nullable, { a: { b: 1 } }, []));
    // The merged value holds `a` (the defaults' part of it): `c` must come from the hub, so `a` too.
    expect(n.required).toEqual(['a']);
    expect(n.properties.a.anyOf[0].required).toEqual(['c']);
    const both = z.intersection(z.object({ a: z.number() }), z.object({ b: z.number() }));
    const i = schemaOf(exportSchema(both, { a: 1 }, []));
    expect(JSON.stringify(i)).not.toContain('"required":["a"]');
    expect(JSON.stringify(i)).toContain('"required":["b"]');
  });
});

describe('the export is never stricter than the client', () => {
  it('coercion, .catch() and z.preprocess become {} and are not required', () => {
    const schema = z.object({
      count: z.coerce.number().describe('how many'),
      level: z.number().catch(1),
      pre: z.preprocess((v) => (v === undefined ? 0 : v), z.number()),
      plain: z.number(),
    });
    const out = schemaOf(exportSchema(schema, undefined, []));
    expect(out.properties).toEqual({ count: { description: 'how many' }, level: {}, pre: {}, plain: { type: 'number' } });
    expect(out.required).toEqual(['plain']);
  });

  it('isLoose names exactly coercion, catch and preprocess', () => {
    expect(isLoose(z.coerce.string())).toBe(true);
    expect(isLoose(z.string().catch(''))).toBe(true);
    expect(isLoose(z.preprocess((v) => v, z.string()))).toBe(true);
    expect(isLoose(z.string())).toBe(false);
    expect(isLoose(z.string().transform((s) => s.length))).toBe(false);
    expect(isLoose(z.string().pipe(z.string().min(1)))).toBe(false);
  });

  it('a readonly or nullable wrapper around a loose field keeps it optional', () => {
    const out = schemaOf(exportSchema(z.object({ a: z.coerce.number().readonly(), b: z.coerce.number().nullable(), c: z.number().readonly() }), undefined, []));
    expect(out.required).toEqual(['c']);
  });
});

describe('what JSON Schema cannot say is listed as unrepresented', () => {
  it('lists refinements, transforms, pipes, coercion, custom and unrepresentable types with their config paths', () => {
    const schema = z
      .object({
        operational: z.object({ batch_size: z.number().refine((n) => n % 2 === 0) }).superRefine(() => undefined),
        name: z.string().trim(),
        checked: z.string().check(() => undefined),
        length: z.string().transform((s) => s.length),
        piped: z.string().pipe(z.string().min(2)),
        pre: z.preprocess((v) => v, z.number().refine((n) => n > 0)),
        count: z.coerce.number(),
        klass: z.custom<string>((v) => typeof v === 'string'),
        when: z.date(),
        big: z.bigint().optional(),
        tags: z.array(z.string().refine((s) => s !== '')),
        byName: z.record(z.string(), z.number().refine((n) => n > 0)),
        pair: z.tuple([z.string(), z.number().refine((n) => n > 0)], z.string().refine((s) => s !== '')),
        either: z.union([z.string().refine((s) => s !== ''), z.number()]),
        fixed: z.literal('x'),
      })
      .refine(() => true);
    expect(exportSchema(schema, undefined, []).upload.unrepresented).toEqual([
      { path: '', kind: 'refinement' },
      { path: 'big', kind: 'unrepresentable' },
      { path: 'byName.*', kind: 'refinement' },
      { path: 'checked', kind: 'refinement' },
      { path: 'count', kind: 'transform' },
      { path: 'either', kind: 'refinement' },
      { path: 'klass', kind: 'custom' },
      { path: 'length', kind: 'transform' },
      { path: 'name', kind: 'transform' },
      { path: 'operational', kind: 'refinement' },
      { path: 'operational.batch_size', kind: 'refinement' },
      { path: 'pair.*', kind: 'refinement' },
      { path: 'pair.1', kind: 'refinement' },
      { path: 'piped', kind: 'transform' },
      { path: 'pre', kind: 'refinement' },
      { path: 'pre', kind: 'transform' },
      { path: 'tags.*', kind: 'refinement' },
      { path: 'when', kind: 'unrepresentable' },
    ]);
  });

  it('lists nothing at or below a critical path', () => {
    const schema = z.object({ db: z.object({ password: z.string().refine((s) => s.length > 8), host: z.custom<string>() }), n: z.number().refine(() => true) });
    expect(exportSchema(schema, undefined, ['db.password', 'db.host']).upload.unrepresented).toEqual([{ path: 'n', kind: 'refinement' }]);
    expect(exportSchema(schema, undefined, ['db']).upload.unrepresented).toEqual([{ path: 'n', kind: 'refinement' }]);
  });

  it('adds what zod itself found unrepresentable at a path the walk did not name (a literal undefined)', () => {
    const schema = z.object({ maybe: z.literal([undefined, 'x']), secret: z.literal([undefined, 'y']) });
    expect(exportSchema(schema, undefined, ['secret']).upload.unrepresented).toEqual([{ path: 'maybe', kind: 'unrepresentable' }]);
  });

  it('takes the zod verdict only where the walk found nothing (no second entry at one path)', () => {
    const critical = criticalTree([]);
    expect(findUnrepresented(z.object({ a: z.date() }), critical, [{ path: 'a', kind: 'unrepresentable' }, { path: 'b', kind: 'unrepresentable' }])).toEqual([
      { path: 'a', kind: 'unrepresentable' },
      { path: 'b', kind: 'unrepresentable' },
    ]);
  });

  it('walks a recursive (z.lazy) schema once and terminates: its parts are listed at their first path', () => {
    interface Node {
      value: number;
      children: Node[];
    }
    const node: z.ZodType<Node> = z.lazy(() => z.object({ value: z.number().refine((n) => n >= 0), children: z.array(node) }));
    const exported = exportSchema(z.object({ tree: node }), undefined, []);
    expect(exported.upload.unrepresented).toEqual([
      { path: 'tree.children.*', kind: 'unrepresentable' },
      { path: 'tree.value', kind: 'refinement' },
    ]);
    expect(exported.body).not.toContain('"$ref"');
    expect(schemaUploadSchema.safeParse(exported.upload).success).toBe(true);
  });

  it('maps JSON Schema locations to config paths', () => {
    expect(configPathOf(['properties', 'a', 'items', 'properties', 'b'])).toEqual(['a', '*', 'b']);
    expect(configPathOf(['properties', 'r', 'additionalProperties', 'anyOf', 0, 'properties', 'c'])).toEqual(['r', '*', 'c']);
    expect(configPathOf(['properties', 't', 'prefixItems', 1, 'oneOf', 2, 'allOf', 0])).toEqual(['t', '1']);
    expect(configPathOf([])).toEqual([]);
  });

  it('criticalTree and isCritical: at or below a critical path, not above it', () => {
    const tree = criticalTree(['a.b', 'a.b.c', 'x']);
    expect(isCritical(['a', 'b'], tree)).toBe(true);
    expect(isCritical(['a', 'b', 'c', 'd'], tree)).toBe(true);
    expect(isCritical(['x', 'y'], tree)).toBe(true);
    expect(isCritical(['a'], tree)).toBe(false);
    expect(isCritical(['a', 'c'], tree)).toBe(false);
    expect(isCritical([], tree)).toBe(false);
    expect([...tree.keys()]).toEqual(['a', 'x']);
    expect(tree.get('a')).toEqual(new Map([['b', true]]));
  });
});

describe('the hash', () => {
  it('is the lowercase hex SHA-256 of the canonical JSON of the upload body, which is the body sent', () => {
    const exported = exportSchema(z.object({ a: z.number() }), undefined, []);
    expect(exported.body).toBe(canonicalJson(exported.upload));
    expect(exported.hash).toBe(createHash('sha256').update(exported.body).digest('hex'));
    expect(exported.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(exported.upload).toEqual({
      schema: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { a: { type: 'number' } }, required: ['a'] },
      unrepresented: [],
    });
  });

  it('does not depend on the order fields are declared in, nor on the order of the critical paths', () => {
    const one = z.object({ a: z.number(), b: z.string(), c: z.object({ x: z.boolean(), y: z.number() }) });
    const two = z.object({ c: z.object({ y: z.number(), x: z.boolean() }), b: z.string(), a: z.number() });
    expect(exportSchema(one, { a: 1 }, ['c.x', 'b']).hash).toBe(exportSchema(two, { a: 1 }, ['b', 'c.x']).hash);
  });

  it('changes when what the client accepts changes', () => {
    const base = exportSchema(z.object({ a: z.number() }), undefined, []).hash;
    expect(exportSchema(z.object({ a: z.number().min(1) }), undefined, []).hash).not.toBe(base);
    expect(exportSchema(z.object({ a: z.number() }), { a: 1 }, []).hash).not.toBe(base);
    expect(exportSchema(z.object({ a: z.number() }), undefined, ['a']).hash).not.toBe(base);
  });

  it('is one object for every client of the process with the same schema, defaults and critical paths', () => {
    const schema = z.object({ a: z.number() });
    const first = new LazySchemaExport('svc', { schema, defaults: { a: 1 }, env: { b: 'B' } }, silentLogger).get();
    const second = new LazySchemaExport('other', { schema, defaults: { a: 1 }, env: { b: 'B' } }, silentLogger).get();
    const third = new LazySchemaExport('svc', { schema, defaults: { a: 2 }, env: { b: 'B' } }, silentLogger).get();
    expect(second).toBe(first);
    expect(third).not.toBe(first);
    expect(Object.isFrozen(first!.upload.schema)).toBe(true);
  });
});

describe('a schema that cannot be exported', () => {
  it('without a schema there is no export', () => {
    expect(new LazySchemaExport('svc', {}, silentLogger).get()).toBeUndefined();
  });

  it('warns once and exports nothing when zod cannot convert the schema', () => {
    const warn = vi.fn();
    const logger = { ...silentLogger, warn };
    const schema = z.object({ a: z.number().default(() => { throw new Error('no default here'); }) });
    const lazy = new LazySchemaExport('svc', { schema }, logger);
    expect(lazy.get()).toBeUndefined();
    expect(lazy.get()).toBeUndefined();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith({ service: 'svc', err: 'no default here' }, expect.stringContaining('schema not exported'));
  });

  it('refuses an export larger than 256 KiB, and one zod cannot write as JSON (a BigInt in its metadata)', () => {
    expect(() => exportSchema(z.object({ a: z.string().describe('x'.repeat(300 * 1024)) }), undefined, [])).toThrow('larger than 262144 bytes');
    expect(() => exportSchema(z.object({ a: z.string().describe('x'.repeat(255 * 1024)) }), undefined, [])).not.toThrow();
    expect(() => exportSchema(z.object({ a: z.bigint().meta({ examples: [1n] }) }), undefined, [])).toThrow('Error converting schema to JSON');
  });

  it('refuses an export nested deeper than 64 levels', () => {
    let deep: z.ZodType = z.number();
    for (let i = 0; i < 40; i++) deep = z.object({ n: deep });
    expect(() => exportSchema(deep, undefined, [])).toThrow('nested deeper than 64 levels');
  });

  it('exports defaults JSON cannot hold, for that runtime alone', () => {
    const schema = z.object({ a: z.bigint() });
    const one = new LazySchemaExport('svc', { schema, defaults: { a: 1n } as never }, silentLogger).get();
    const two = new LazySchemaExport('svc', { schema, defaults: { a: 1n } as never }, silentLogger).get();
    expect(one?.hash).toBe(two?.hash);
    expect(two).not.toBe(one);
  });
});

describe('nothing from the environment reaches the hub', () => {
  const lab = useMswClients('chc-fleet-env-');
  const HUB = 'http://hub.test';
  const SECRETS = { DB_HOST: 'envhost-7d1f3a.internal', DB_PASSWORD: 'env-pw-c0ffee-9931', API_TOKEN: 'tok-8a8a8a8a-env', POOL: '4242' };
  const schema = z.object({
    operational: z.object({ batch_size: z.number().int().positive() }),
    database: z.object({ host: z.string(), password: z.string(), pool: z.number() }),
    api: z.object({ token: z.string() }),
  });
  const services = {
    svc: {
      schema,
      defaults: { operational: { batch_size: 10 } },
      env: { 'database.host': 'DB_HOST', 'database.password': 'DB_PASSWORD', 'database.pool': 'POOL', 'api.token': 'API_TOKEN' },
    },
  };

  it('sends no env value in the report header, the upload or the report request, and the hash does not depend on env', async () => {
    let served = 0;
    lab.agent.use(
      http.get(`${HUB}/api/v1/config/svc`, ({ request }) => {
        const report = instanceReportSchema.parse(JSON.parse(request.headers.get('x-config-report')!));
        served++;
        return HttpResponse.json(
          { service_name: 'svc', config: { operational: { batch_size: served } }, version: '1', updated_at: served, revision: served },
          { headers: { 'x-config-schema-unknown': report.services.svc!.schema! } },
        );
      }),
      http.put(`${HUB}/api/v1/schemas/:hash`, () => HttpResponse.json({ created: true }, { status: 201 })),
      http.post(`${HUB}/api/v1/config/svc/instances`, () => HttpResponse.json({ accepted: 1 }, { status: 202 })),
    );
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const client = new ConfigClient({ hubUrl: HUB, apiKey: 'k', snapshotDir: false, pollIntervalMs: false, transport: { dispatcher: lab.agent }, env: SECRETS, services });
    lab.clients.push(client);
    const cfg = await client.get('svc');
    expect(cfg.database).toEqual({ host: SECRETS.DB_HOST, password: SECRETS.DB_PASSWORD, pool: 4242 });
    await vi.waitFor(() => expect(lab.agent.requests.map((r) => r.method).sort()).toEqual(['GET', 'POST', 'PUT']));
    vi.restoreAllMocks();
    let sent = '';
    for (const request of lab.agent.requests) {
      sent += `${request.headers.get('x-config-report')}\n${request.method === 'GET' ? '' : await request.text()}\n`;
    }
    for (const value of Object.values(SECRETS)) expect(sent).not.toContain(value);
    expect(sent).not.toContain('"password"');
    expect(sent).not.toContain('"token"');

    const other = new ConfigClient({
      hubUrl: HUB,
      snapshotDir: false,
      pollIntervalMs: false,
      transport: { dispatcher: lab.agent },
      env: { DB_HOST: 'h', DB_PASSWORD: 'p', API_TOKEN: 't', POOL: '1' },
      services: { svc: { ...services.svc } },
    });
    lab.clients.push(other);
    await other.get('svc');
    const hashes = lab.agent.requests
      .filter((r) => r.method === 'GET')
      .map((r) => JSON.parse(r.headers.get('x-config-report')!).services.svc.schema as string);
    expect(new Set(hashes).size).toBe(1);
  });
});

describe('partial defaults or env under an object child: its other required fields come from the hub', () => {
  const db = z.object({ host: z.string(), port: z.number() });

  it('an optional, nullable or defaulted object the defaults supply part of is required, its other fields too', () => {
    for (const child of [db.optional(), db.nullable(), db.default({ host: 'h', port: 1 }), db.nullish()]) {
      const schema = z.object({ db: child });
      const out = schemaOf(exportSchema(schema, { db: { host: 'a' } }, []));
      expect(out.required).toEqual(['db']);
      expect(JSON.stringify(out.properties.db)).toContain('"required":["port"]');
      expect(verdicts(schema, { db: { host: 'a' } }, {}, {})).toMatchObject({ hub: false, client: false, unrepresented: [] });
      expect(verdicts(schema, { db: { host: 'a' } }, {}, { db: { port: 2 } })).toMatchObject({ hub: true, client: true });
    }
  });

  it('an object the defaults supply whole is not required, also when optional', () => {
    const out = schemaOf(exportSchema(z.object({ db: db.optional() }), { db: { host: 'a', port: 1 } }, []));
    expect(out.required).toBeUndefined();
  });

  it('env below a nullable object: required when the rest must come from the hub (db.password from env)', () => {
    const schema = z.object({ db: z.object({ host: z.string(), password: z.string() }).nullable() });
    expect(verdicts(schema, undefined, { 'db.password': 'pw' }, {})).toMatchObject({ hub: false, client: false });
    expect(verdicts(schema, undefined, { 'db.password': 'pw' }, { db: { host: 'h' } })).toMatchObject({ hub: true, client: true });
    // null is replaced by the env values alone ({ password }): the client refuses it, instances without
    // the variable take it: the hub takes it (looser), and says so.
    const nulled = verdicts(schema, undefined, { 'db.password': 'pw' }, { db: null });
    expect(nulled).toMatchObject({ hub: true, client: false });
    expect(nulled.unrepresented).toEqual([{ path: 'db', kind: 'unrepresentable' }]);
  });

  it('env below a union of objects: required when every branch needs more, the union listed (its branches differ)', () => {
    const schema = z.object({ db: z.union([z.object({ host: z.string(), password: z.string() }), z.object({ url: z.string(), password: z.string() })]) });
    const empty = verdicts(schema, undefined, { 'db.password': 'pw' }, {});
    expect(empty).toMatchObject({ hub: false, client: false });
    expect(empty.schema.required).toEqual(['db']);
    expect(empty.unrepresented).toEqual([{ path: 'db', kind: 'unrepresentable' }]);
    expect(verdicts(schema, undefined, { 'db.password': 'pw' }, { db: { url: 'u' } })).toMatchObject({ hub: true, client: true });
  });

  it('defaults below a union whose branches differ: relaxed per branch (looser), a oneOf made an anyOf, listed', () => {
    const mode = z.discriminatedUnion('kind', [z.object({ kind: z.literal('a'), x: z.number() }), z.object({ kind: z.literal('b'), y: z.number() })]);
    const schema = z.object({ mode });
    const out = verdicts(schema, { mode: { kind: 'a' } }, {}, { mode: { x: 1, y: 2 } });
    // Both relaxed branches take it; a oneOf would refuse what the client (kind a from the defaults) takes.
    expect(out).toMatchObject({ hub: true, client: true });
    expect(out.schema.properties.mode.oneOf).toBeUndefined();
    expect(out.schema.properties.mode.anyOf).toHaveLength(2);
    expect(out.unrepresented).toEqual([{ path: 'mode', kind: 'unrepresentable' }]);
    // A nullable object has one object branch: exact, nothing listed.
    expect(exportSchema(z.object({ db: db.nullable() }), { db: { host: 'a' } }, []).upload.unrepresented).toEqual([]);
  });

  it('a hub value that is not an object where env values lie below is replaced by them: taken when they suffice', () => {
    const schema = z.object({ db: z.object({ password: z.string(), port: z.number().default(5432) }) });
    expect(verdicts(schema, undefined, { 'db.password': 'pw' }, { db: 'oops' })).toMatchObject({ hub: true, client: true, unrepresented: [] });
    const strict = z.object({ db: z.object({ password: z.string(), port: z.number() }) });
    expect(verdicts(strict, undefined, { 'db.password': 'pw' }, { db: 'oops' })).toMatchObject({ hub: false, client: false, unrepresented: [] });
  });
});

describe('$ref and $defs: inlined, recursion cut looser, no default value of a critical path leaks', () => {
  it('inlines a .meta({ id }) schema: no $defs, its descriptions kept', () => {
    const Db = z.object({ host: z.string(), password: z.string() }).meta({ id: 'Db', description: 'the database' });
    const exported = exportSchema(z.object({ db: Db }), undefined, ['db.password']);
    expect(exported.body).not.toContain('$defs');
    expect(exported.body).not.toContain('$ref');
    expect(schemaOf(exported).properties.db).toEqual({ type: 'object', description: 'the database', properties: { host: { type: 'string' } }, required: ['host'] });
    expect(verdicts(z.object({ db: Db }), undefined, { 'db.password': 'p' }, { db: { host: 'x' } })).toMatchObject({ hub: true, client: true });
  });

  it('does not upload the default of a critical path inside a .meta({ id }) schema (password: "dev-secret")', () => {
    const Db = z.object({ host: z.string(), password: z.string().default('dev-secret') }).meta({ id: 'Db2' });
    const exported = exportSchema(z.object({ db: Db }), undefined, ['db.password']);
    expect(exported.body).not.toContain('dev-secret');
    expect(exported.body).not.toContain('password');
  });

  it('cuts a recursion at its repeat with {} (looser), listed; never leaves a $ref or $defs', () => {
    interface Tree {
      name: string;
      children: Tree[];
    }
    const tree: z.ZodType<Tree> = z.lazy(() => z.object({ name: z.string(), children: z.array(tree) }));
    const schema = z.object({ tree });
    const exported = exportSchema(schema, { tree: { name: 'root', children: [] } }, []);
    expect(exported.body).not.toContain('$ref');
    expect(exported.body).not.toContain('$defs');
    expect(exported.upload.unrepresented).toEqual([{ path: 'tree.children.*', kind: 'unrepresentable' }]);
    // The defaults' name reaches the inlined level.
    expect(verdicts(schema, { tree: { name: 'root', children: [] } }, {}, { tree: { children: [{ name: 1 }] } })).toMatchObject({ hub: true, client: false });
    expect(verdicts(schema, undefined, {}, { tree: { children: [] } })).toMatchObject({ hub: false, client: false });
    const root: z.ZodType<{ n: number; next?: unknown }> = z.lazy(() => z.object({ n: z.number(), next: root.optional() }));
    const self = exportSchema(root, undefined, []);
    expect(self.body).not.toContain('$ref');
    expect(self.upload.unrepresented).toEqual([{ path: 'next.next', kind: 'unrepresentable' }]);
  });
});

describe('a critical property of an object that constrains undeclared keys becomes {}', () => {
  it('in a strict object: the key the client drops still passes the hub', () => {
    const schema = z.strictObject({ db: z.strictObject({ host: z.string(), port: z.number() }), token: z.string() });
    const out = verdicts(schema, undefined, { 'db.host': 'h', token: 't' }, { db: { host: 'hub', port: 5 }, token: 'hub' });
    expect(out).toMatchObject({ hub: true, client: true, unrepresented: [] });
    expect(out.schema.properties.token).toEqual({});
    expect(out.schema.properties.db.properties.host).toEqual({});
    expect(verdicts(schema, undefined, { 'db.host': 'h', token: 't' }, { db: { port: 5 }, extra: 1 })).toMatchObject({ hub: false, client: false });
  });

  it('in a catchall object: the critical key is not checked against the catchall', () => {
    const schema = z.object({ a: z.number() }).catchall(z.number());
    expect(verdicts(schema, undefined, { secret: 7 }, { a: 1, secret: 'from-the-hub' })).toMatchObject({ hub: true, client: true, unrepresented: [] });
  });

  it('a non-strict object keeps deleting it (its name is not sent)', () => {
    expect(exportSchema(z.object({ password: z.string() }), undefined, ['password']).body).not.toContain('password');
  });

  it('the keys the client drops everywhere (constructor, prototype, __proto__) pass a strict object and a record', () => {
    const schema = z.strictObject({ a: z.number(), r: z.record(z.enum(['x']), z.number()) });
    const hub = JSON.parse('{"a":1,"constructor":"c","__proto__":{},"r":{"x":1,"prototype":"p"}}') as PlainObject;
    expect(verdicts(schema, undefined, {}, hub)).toMatchObject({ hub: true, client: true });
  });
});

describe('records and catchall objects: the keys the defaults supply', () => {
  it('a record key the defaults supply part of gets its own relaxed property, required when the rest must come from the hub', () => {
    const schema = z.object({ rec: z.record(z.string(), z.object({ a: z.string(), b: z.number() })) });
    const out = verdicts(schema, { rec: { x: { a: 'q' } } }, {}, { rec: { x: { b: 2 } } });
    expect(out).toMatchObject({ hub: true, client: true, unrepresented: [] });
    expect(out.schema.properties.rec.properties.x.required).toEqual(['b']);
    expect(out.schema.properties.rec.required).toEqual(['x']);
    expect(verdicts(schema, { rec: { x: { a: 'q' } } }, {}, { rec: {} })).toMatchObject({ hub: false, client: false });
  });

  it('a catchall object likewise', () => {
    const schema = z.object({}).catchall(z.object({ a: z.string(), b: z.number() }));
    expect(verdicts(schema, { x: { a: 'q' } }, {}, { x: { b: 2 } })).toMatchObject({ hub: true, client: true, unrepresented: [] });
    expect(verdicts(schema, { x: { a: 'q' } }, {}, {})).toMatchObject({ hub: false, client: false });
  });

  it('an enum-keyed record requires the keys the defaults do not supply', () => {
    const schema = z.object({ r: z.record(z.enum(['a', 'b']), z.number()) });
    expect(schemaOf(exportSchema(schema, { r: { a: 1 } }, [])).properties.r.required).toEqual(['b']);
    expect(verdicts(schema, { r: { a: 1, b: 2 } }, {}, { r: { a: 3 } })).toMatchObject({ hub: true, client: true });
    expect(verdicts(schema, { r: { a: 1 } }, {}, { r: {} })).toMatchObject({ hub: false, client: false });
  });
});

describe('string and number checks the hub does not make as zod does: removed or listed, never stricter', () => {
  it('lists a format without a pattern (z.url(), z.httpUrl(), z.jwt()) as custom', () => {
    const exported = exportSchema(z.object({ u: z.url(), h: z.httpUrl(), j: z.jwt(), e: z.email() }), undefined, []);
    expect(exported.upload.unrepresented).toEqual([
      { path: 'h', kind: 'custom' },
      { path: 'j', kind: 'custom' },
      { path: 'u', kind: 'custom' },
    ]);
  });

  it('removes the pattern of a regex with flags (zod writes its source alone) and lists it', () => {
    const schema = z.object({ s: z.string().regex(/^[a-z]+$/i), t: z.string().regex(/^[a-z]+$/).regex(/x/u) });
    const out = verdicts(schema, undefined, {}, { s: 'ABC', t: 'abx' });
    expect(out).toMatchObject({ hub: true, client: true });
    expect(out.schema.properties.s).toEqual({ type: 'string' });
    expect(out.schema.properties.t).toEqual({ type: 'string', allOf: [{ pattern: '^[a-z]+$' }] });
    expect(out.unrepresented).toEqual([
      { path: 's', kind: 'custom' },
      { path: 't', kind: 'custom' },
    ]);
  });

  it('removes a pattern that does not compile with the u flag (Ajv would refuse the upload) and lists it', () => {
    const out = verdicts(z.object({ s: z.string().regex(/^[\w-.]+$/) }), undefined, {}, { s: 'a.b' });
    expect(out).toMatchObject({ hub: true, client: true, unrepresented: [{ path: 's', kind: 'custom' }] });
  });

  it('removes the pattern of a format zod checks otherwise (z.ipv6(), z.base64()) and lists it', () => {
    const exported = exportSchema(z.object({ ip: z.ipv6(), b: z.base64() }), undefined, []);
    expect(exported.body).not.toContain('pattern');
    expect(exported.upload.unrepresented).toEqual([
      { path: 'b', kind: 'custom' },
      { path: 'ip', kind: 'custom' },
    ]);
  });

  it('removes a multipleOf that is not an integer (floating point would refuse exact decimal multiples) and lists it', () => {
    const out = verdicts(z.object({ n: z.number().multipleOf(0.1), m: z.number().multipleOf(5) }), undefined, {}, { n: 123456789.1, m: 10 });
    expect(out).toMatchObject({ hub: true, client: true, unrepresented: [{ path: 'n', kind: 'custom' }] });
    expect(out.schema.properties.m.multipleOf).toBe(5);
  });
});
