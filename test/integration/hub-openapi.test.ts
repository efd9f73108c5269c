/**
 * `GET /openapi.json` (README "OpenAPI"): the hub's OpenAPI 3.1 document, generated from the route schemas.
 * A real hub on PGlite over a real socket: the document is valid OpenAPI 3.1, lists exactly the routes the
 * router serves (the admin page's files aside), and what it promises is what the hub answers.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeReport } from '../../src/fleet/wire.js';
import { documentOf } from '../../examples/hub/routes/context.js';
import type { Hub } from '../../examples/hub/server.js';
import { KEYS, startHub, uniqueService } from '../helpers/hub-fixtures.js';

const SEED = 'polygon-historical-downloader';
const admin = { 'x-api-key': KEYS.admin.key };
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

type Json = Record<string, any>;

/** `METHOD /path` of every route in Fastify's router (its printRoutes tree), OpenAPI-style `{param}` paths. */
function routerRoutes(hub: Hub): Set<string> {
  const routes = new Set<string>();
  const segments: string[] = [];
  for (const line of hub.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (m === null) continue;
    segments.length = m[1]!.length / 4;
    segments.push(m[2]!);
    const path = segments.join('').replace(/:(\w+)/g, '{$1}');
    for (const method of m[3]?.split(', ') ?? []) routes.add(`${method} ${path}`);
  }
  return routes;
}

/** `METHOD /path` of every operation in the document. */
function documentedRoutes(doc: Json): Set<string> {
  const ops = new Set<string>();
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    for (const method of METHODS) if (item[method] !== undefined) ops.add(`${method.toUpperCase()} ${path}`);
  }
  return ops;
}

const operations = (doc: Json): [string, Json][] =>
  Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m] !== undefined).map((m): [string, Json] => [`${m.toUpperCase()} ${path}`, item[m]]),
  );

describe('GET /openapi.json on the real hub (PGlite)', () => {
  let hub: Hub;
  let base: string;
  let raw: string;
  let doc: Json;
  const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false });

  beforeAll(async () => {
    ({ hub } = await startHub('pglite'));
    base = await hub.listen({ port: 0 });
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    raw = await res.text();
    doc = JSON.parse(raw);
  });
  afterAll(async () => {
    await hub?.close();
  });

  /** The JSON Schema the document gives for `method path` answering `status` (undefined: no body). */
  function documentedBody(method: string, path: string, status: number): Json | undefined {
    const response = doc.paths[path]?.[method]?.responses?.[String(status)];
    expect(response, `${method.toUpperCase()} ${path} documents ${status}`).toBeDefined();
    return response.content?.['application/json']?.schema;
  }

  async function expectDocumented(method: string, path: string, res: Response): Promise<unknown> {
    const text = await res.text();
    const schema = documentedBody(method, path, res.status);
    if (schema === undefined) {
      expect(text).toBe('');
      return undefined;
    }
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(text);
    const validate = ajv.compile(schema);
    expect(validate(body), `${method.toUpperCase()} ${path} ${res.status}: ${JSON.stringify(validate.errors)}`).toBe(true);
    return body;
  }

  it('is public and served from memory: no key, JSON, the same bytes on every request', async () => {
    const again = await fetch(`${base}/openapi.json`, { headers: { 'x-api-key': 'not-a-key' } });
    expect(again.status).toBe(200);
    expect(again.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await again.text()).toBe(raw);
  });

  it('is a valid OpenAPI 3.1 document (the OpenAPI 3.1 JSON Schema, @seriousme/openapi-schema-validator)', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('has JSON Schema 2020-12 schemas that Ajv 2020 compiles, everywhere', () => {
    const schemas: unknown[] = [];
    for (const [, op] of operations(doc)) {
      for (const p of op.parameters ?? []) schemas.push(p.schema);
      for (const media of Object.values<Json>(op.requestBody?.content ?? {})) schemas.push(media.schema);
      for (const r of Object.values<Json>(op.responses)) {
        for (const media of Object.values<Json>(r.content ?? {})) schemas.push(media.schema);
        for (const h of Object.values<Json>(r.headers ?? {})) schemas.push(h.schema);
      }
    }
    expect(schemas.length).toBeGreaterThan(100);
    const strict = new Ajv2020({ strict: true, allowUnionTypes: true, logger: false });
    for (const schema of schemas) expect(() => strict.compile(schema as object)).not.toThrow();
  });

  it('lists every route the router serves with its method, and nothing else (the admin page files and auto HEAD routes aside)', () => {
    const served = routerRoutes(hub);
    expect(served.size).toBeGreaterThan(10);
    const expected = new Set(
      [...served].filter((route) => {
        const [method, path] = route.split(' ') as [string, string];
        if (/^\/admin(\/|$)/.test(path)) return false; // static files, hidden
        if (method === 'HEAD' && served.has(`GET ${path}`)) return false; // Fastify's HEAD for every GET
        // Fastify serves a prefixed '/' route at the prefix and at prefix + '/': one operation, documented without the slash.
        if (path.endsWith('/') && served.has(`${method} ${path.slice(0, -1)}`)) return false;
        return true;
      }),
    );
    expect([...documentedRoutes(doc)].sort()).toEqual([...expected].sort());
    // Everything under /api/v1/, /health and the document itself, at least.
    for (const route of ['GET /health', 'GET /openapi.json', 'GET /api/v1/config', 'GET /api/v1/config/{service}', 'PUT /api/v1/schemas/{hash}']) {
      expect(expected).toContain(route);
    }
  });

  it('names every operation (unique operationId, summary, one tag) and gives every one its answers', () => {
    const ids = new Set<string>();
    const tags = new Set((doc.tags as Json[]).map((t) => t.name));
    for (const [route, op] of operations(doc)) {
      expect(op.operationId, route).toMatch(/^[a-z][A-Za-z]+$/);
      expect(ids.has(op.operationId), `${route}: ${op.operationId} twice`).toBe(false);
      ids.add(op.operationId);
      expect(op.summary, route).toEqual(expect.any(String));
      expect(op.tags, route).toHaveLength(1);
      expect(tags, route).toContain(op.tags[0]);
      expect(Object.keys(op.responses).some((s) => s.startsWith('2')), `${route} documents a 2xx`).toBe(true);
      expect(op.responses.default, route).toBeUndefined();
    }
  });

  it('asks for the X-API-Key scheme on every /api/v1/ operation (with 401, 429 and 503), and for none on /health and /openapi.json', () => {
    expect(doc.components.securitySchemes.apiKey).toEqual(expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }));
    for (const [route, op] of operations(doc)) {
      const path = route.split(' ')[1]!;
      if (path.startsWith('/api/v1/')) {
        expect(op.security, route).toEqual([{ apiKey: [] }]);
        for (const status of ['401', '429', '503']) expect(op.responses[status], `${route} ${status}`).toBeDefined();
      } else if (path === '/health' || path === '/openapi.json') {
        expect(op.security, route).toEqual([]);
      }
    }
  });

  it('documents the conditional headers where the hub reads them: If-None-Match on GET, If-Match on writes (required on DELETE)', () => {
    const header = (method: string, path: string, name: string) =>
      (doc.paths[path][method].parameters as Json[]).find((p) => p.in === 'header' && p.name === name);
    expect(header('get', '/api/v1/config/{service}', 'if-none-match')).toMatchObject({ required: false });
    for (const method of ['post', 'patch']) expect(header(method, '/api/v1/config/{service}', 'if-match')).toMatchObject({ required: false });
    expect(header('delete', '/api/v1/config/{service}', 'if-match')).toMatchObject({ required: true });
    expect(header('post', '/api/v1/config/rollback/{service}', 'if-match')).toMatchObject({ required: false });
    expect(header('get', '/api/v1/config/{service}', 'x-config-report')).toMatchObject({ required: false });
    expect(Object.keys(doc.paths['/api/v1/config/{service}'].patch.requestBody.content).sort()).toEqual([
      'application/json',
      'application/merge-patch+json',
    ]);
  });

  it('describes real answers: GET config 200 (the bytes of JSON.stringify, no schema reshapes them), 304, 404 and 401', async () => {
    const got = await fetch(`${base}/api/v1/config/${SEED}`, { headers: admin });
    expect(got.status).toBe(200);
    const text = await got.clone().text();
    const row = await hub.store.get(SEED);
    expect(text).toBe(JSON.stringify(documentOf(row!)));
    await expectDocumented('get', '/api/v1/config/{service}', got);

    const etag = got.headers.get('etag')!;
    const notModified = await fetch(`${base}/api/v1/config/${SEED}`, { headers: { ...admin, 'if-none-match': etag } });
    expect(notModified.status).toBe(304);
    await expectDocumented('get', '/api/v1/config/{service}', notModified);

    const missing = await fetch(`${base}/api/v1/config/${uniqueService('absent')}`, { headers: admin });
    expect(missing.status).toBe(404);
    expect(await expectDocumented('get', '/api/v1/config/{service}', missing)).toEqual({ detail: expect.stringMatching(/^no config for service/) });

    const stranger = await fetch(`${base}/api/v1/config/${SEED}`);
    expect(stranger.status).toBe(401);
    await expectDocumented('get', '/api/v1/config/{service}', stranger);
  });

  it('describes real answers of the other routes: list, writes 201/200/412/422, history, fleet view, report, health', async () => {
    const service = uniqueService('openapi');
    const write = (method: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}/api/v1/config/${service}`, {
        method,
        headers: { ...admin, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    const path = '/api/v1/config/{service}';
    expect((await expectDocumented('post', path, await write('POST', { a: 1 }))) as Json).toMatchObject({ status: 'created' });
    expect((await expectDocumented('patch', path, await write('PATCH', { b: 2 }, { 'if-match': '"1"' }))) as Json).toMatchObject({ status: 'updated' });
    const conflict = await write('POST', { a: 2 }, { 'if-match': '"1"' });
    expect(conflict.status).toBe(412);
    expect(await expectDocumented('post', path, conflict)).toMatchObject({ revision: 2 });
    const secret = await write('POST', { db_password: 'hunter2' });
    expect(secret.status).toBe(422);
    expect(await expectDocumented('post', path, secret)).toMatchObject({ paths: ['db_password'] });

    await expectDocumented('get', '/api/v1/config', await fetch(`${base}/api/v1/config`, { headers: admin }));
    await expectDocumented('get', '/api/v1/config/history/{service}', await fetch(`${base}/api/v1/config/history/${service}`, { headers: admin }));

    const report = encodeReport({
      v: 1,
      id: 'openapi-test-1',
      host: 'test-host',
      pid: 4242,
      client: '0.1.0',
      poll_ms: 60_000,
      services: { [service]: { revision: 2, source: 'hub', stale: false, error: null, schema: null } },
    });
    const reported = await fetch(`${base}/api/v1/config/${service}/instances`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: report,
    });
    expect(reported.status).toBe(202);
    await expectDocumented('post', '/api/v1/config/{service}/instances', reported);
    const view = await fetch(`${base}/api/v1/config/${service}/instances`, { headers: admin });
    expect(((await expectDocumented('get', '/api/v1/config/{service}/instances', view)) as Json).instances).toHaveLength(1);

    await expectDocumented('get', '/health', await fetch(`${base}/health`));
  });

  it('documents GET /metrics (a plugin without schemas) as the text it answers, when the hub serves it', async () => {
    const res = await fetch(`${base}/metrics`);
    if (!routerRoutes(hub).has('GET /metrics')) {
      expect(doc.paths['/metrics']).toBeUndefined();
      return;
    }
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const op = doc.paths['/metrics'].get;
    expect(op).toMatchObject({ operationId: 'getMetrics', tags: ['metrics'] });
    expect(Object.keys(op.responses['200'].content)).toEqual(['text/plain']);
    expect(op.security).toContainEqual({}); // open unless the hub has a metrics key
  });

  it('never validates with the documented schemas: input outside them gets the handler\'s own {detail} answer', async () => {
    const badName = await fetch(`${base}/api/v1/config/Not_A_Name`, { headers: admin });
    expect(badName.status).toBe(400);
    expect(await badName.json()).toEqual({ detail: 'service name must match ^[a-z0-9-]+$' });

    const badLimit = await fetch(`${base}/api/v1/config/history/${SEED}?limit=many`, { headers: admin });
    expect(badLimit.status).toBe(400);
    expect(((await badLimit.json()) as Json).detail).toMatch(/^limit: /);

    const badRollback = await fetch(`${base}/api/v1/config/rollback/${SEED}`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ revision: 'one' }),
    });
    expect(badRollback.status).toBe(400);
    expect(await badRollback.json()).toEqual({ detail: 'body must be { "revision": <positive integer> } or { "version": "<string>" }' });
  });
});
