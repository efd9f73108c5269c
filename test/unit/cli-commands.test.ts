/**
 * The CLI's commands in process (`runCli`), the hub answered through the msw ↔ undici bridge: what each
 * command sends (If-Match, query, content type, X-API-Key), what it prints (human and --json), and the exit
 * code of every kind of answer (0 ok, 1 refused/conflict, 3 unreachable).
 */
import { Readable } from 'node:stream';
import { delay, HttpResponse, http } from 'msw';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliIo, runCli } from '../../src/cli/main.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';

const HUB = 'http://hub.test';
const API = `${HUB}/api/v1/config`;
const SVC = 'tick-aggregator';
const ENV = { CENTRAL_HUB_URL: HUB, CENTRAL_HUB_API_KEY: 'cli-test-key' };

let agent: MswAgent;
beforeEach(() => {
  agent = createMswAgent([]);
});
afterEach(async () => {
  await agent.close();
});

interface RunOptions {
  stdin?: string;
  isTTY?: boolean;
  env?: Record<string, string>;
  signal?: AbortSignal;
  onStdout?: (text: string) => void;
}

async function run(argv: string[], options: RunOptions = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: {
      write: (s: string) => {
        stdout += s;
        options.onStdout?.(stdout);
      },
    },
    stderr: { write: (s: string) => (stderr += s) },
    env: { ...ENV, ...options.env },
    stdin: options.stdin === undefined ? undefined : Readable.from([options.stdin]),
    isTTY: options.isTTY,
    dispatcher: agent,
    signal: options.signal,
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

const doc = (revision: number, config: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  service_name: SVC,
  config,
  version: '1.0.0',
  updated_at: 1_760_000_000_000 + revision,
  revision,
  ...extra,
});
const etagOf = (revision: number) => `"${revision}-x"`;
const serve = (revision: number, config: Record<string, unknown>) =>
  http.get(`${API}/${SVC}`, () => HttpResponse.json(doc(revision, config), { headers: { etag: etagOf(revision) } }));
const written = (revision: number, config: Record<string, unknown>, status = 'updated') =>
  HttpResponse.json({ status, service_name: SVC, config, version: '1.0.0', updated_at: 1, updated_by: 'admin', broadcast: 'sent', revision });
const entry = (revision: number, config: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  version: '1.0.0',
  action: revision === 1 ? 'created' : 'updated',
  changed_by: 'admin',
  changed_at: 1_760_000_000_000 + revision * 60_000,
  change_reason: null,
  config,
  revision,
  ...extra,
});
const historyOf = (...entries: ReturnType<typeof entry>[]) =>
  http.get(`${API}/history/${SVC}`, ({ request }) =>
    HttpResponse.json({ service_name: SVC, history: entries, total: entries.length, limit: Number(new URL(request.url).searchParams.get('limit')) }),
  );
const requestsOf = (method: string) => agent.requests.filter((r) => r.method === method);

describe('get', () => {
  it('prints the config pretty with sorted keys on stdout and what it is on stderr, sending the API key', async () => {
    agent.use(serve(7, { z: 1, a: { y: true, b: 'x' } }));
    const { code, stdout, stderr } = await run(['get', SVC]);
    expect(code).toBe(0);
    expect(stdout).toBe('{\n  "a": {\n    "b": "x",\n    "y": true\n  },\n  "z": 1\n}\n');
    expect(stderr).toContain(`# ${SVC} revision 7, version 1.0.0, updated 2025-10-09T08:53:20Z`);
    expect(agent.requests[0]!.headers.get('x-api-key')).toBe('cli-test-key');
  });

  it('--json prints the one document the hub sent', async () => {
    agent.use(serve(7, { a: 1 }));
    const { code, stdout } = await run(['get', SVC, '--json']);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(stdout)).toEqual(doc(7, { a: 1 }));
  });

  it.each([
    [404, 1, `hub refused (HTTP 404): no config for service '${SVC}'`, { detail: `no config for service '${SVC}'` }],
    [401, 1, 'hub refused (HTTP 401): missing API key', { detail: 'missing API key' }],
    [403, 1, 'HTTP 403', { detail: "API key 'x' may not read" }],
    [503, 3, 'failed (HTTP 503): database unavailable', { detail: 'database unavailable, retry later' }],
    [500, 3, 'failed (HTTP 500): HTTP 500', undefined],
  ])('a %i answer exits %i with the hub detail on stderr (%s)', async (status, exitCode, message, body) => {
    agent.use(http.get(`${API}/${SVC}`, () => (body === undefined ? new HttpResponse('oops', { status }) : HttpResponse.json(body, { status }))));
    const { code, stdout, stderr } = await run(['get', SVC]);
    expect(code).toBe(exitCode);
    expect(stderr).toContain(message);
    expect(stdout).toBe('');
  });

  it('a network error and a hub that never answers (--timeout-ms) exit 3', async () => {
    agent.use(http.get(`${API}/a`, () => HttpResponse.error()));
    agent.use(http.get(`${API}/b`, async () => {
      await delay('infinite');
      return HttpResponse.json({});
    }));
    const down = await run(['get', 'a']);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain(`hub ${HUB} unreachable`);
    const started = Date.now();
    const hung = await run(['get', 'b', '--timeout-ms', '150']);
    expect(hung.code).toBe(3);
    expect(hung.stderr).toContain('no answer within 150 ms');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('an answer that breaks the wire contract exits 3 and says where', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({ service_name: SVC, config: [1, 2], updated_at: 1 })));
    const { code, stderr } = await run(['get', SVC]);
    expect(code).toBe(3);
    expect(stderr).toContain('does not follow the wire contract: config');
  });

  it('--json on a refusal prints an error document on stdout as well', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'nope' }, { status: 404 })));
    const { code, stdout } = await run(['get', SVC, '--json']);
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toEqual({ error: { status: 404, detail: 'nope' } });
  });
});

describe('history and instances', () => {
  it('history prints an aligned table, newest first, with the limit sent', async () => {
    agent.use(historyOf(entry(2, { a: 2 }, { change_reason: 'bigger' }), entry(1, { a: 1 }, { changed_by: 'system', version: null })));
    const { code, stdout, stderr } = await run(['history', SVC, '--limit', '5']);
    expect(code).toBe(0);
    expect(stdout.split('\n')).toEqual([
      'REVISION  ACTION   VERSION  CHANGED BY  CHANGED AT            REASON',
      '2         updated  1.0.0    admin       2025-10-09T08:55:20Z  bigger',
      '1         created  -        system      2025-10-09T08:54:20Z  -',
      '',
    ]);
    expect(stderr).toContain('# 2 of 2 entries');
    expect(new URL(agent.requests[0]!.url).searchParams.get('limit')).toBe('5');
  });

  it('history --json prints the hub answer', async () => {
    agent.use(historyOf(entry(1, { a: 1 })));
    const { stdout } = await run(['history', SVC, '--json']);
    expect(JSON.parse(stdout)).toMatchObject({ service_name: SVC, total: 1, limit: 10, history: [{ revision: 1, config: { a: 1 } }] });
  });

  it('instances prints the summary and a table of who runs what', async () => {
    const view = {
      service_name: SVC,
      revision: 4,
      instances: [
        { instance_id: 'web-1', host: 'h1', pid: 10, client_version: '0.1.0', revision: 4, source: 'hub', stale: false, last_seen: 1_760_000_000_000, last_error: null, schema_hash: 'a'.repeat(64) },
        { instance_id: 'worker-22', host: 'host-2', pid: 2345, client_version: '0.1.0', revision: 3, source: 'snapshot', stale: true, last_seen: 1_760_000_000_000, last_error: 'CONFIG_INVALID', schema_hash: null },
      ],
      summary: { total: 2, on_latest: 1, behind: 0, rejected: 1 },
    };
    agent.use(http.get(`${API}/${SVC}/instances`, () => HttpResponse.json(view)));
    const { code, stdout } = await run(['instances', SVC]);
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toBe(`${SVC} at revision 4: 2 instance(s), 1 on latest, 0 behind, 1 rejected`);
    expect(lines[2]).toBe('INSTANCE   HOST    PID   CLIENT  REVISION  SOURCE    STALE  LAST SEEN             ERROR           SCHEMA');
    expect(lines[3]).toBe('web-1      h1      10    0.1.0   4         hub       no     2025-10-09T08:53:20Z  -               aaaaaaaaaaaa');
    expect(lines[4]).toBe('worker-22  host-2  2345  0.1.0   3         snapshot  yes    2025-10-09T08:53:20Z  CONFIG_INVALID  -');
    const json = await run(['instances', SVC, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ summary: view.summary, instances: [{ instance_id: 'web-1' }, { instance_id: 'worker-22' }] });
  });
});

describe('writes name the revision they are based on', () => {
  it('set reads the current revision, sends If-Match with it and the write query, and prints the diff', async () => {
    agent.use(serve(7, { a: 1, keep: true }), http.post(`${API}/${SVC}`, async ({ request }) => written(8, (await request.json()) as Record<string, unknown>)));
    const { code, stdout } = await run(['set', SVC, '--change-reason', 'why not', '--version-tag', '1.1.0'], { stdin: '{"a":2,"keep":true}' });
    expect(code).toBe(0);
    const post = requestsOf('POST')[0]!;
    expect(post.headers.get('if-match')).toBe('"7"');
    expect(post.headers.get('content-type')).toBe('application/json');
    expect(await post.json()).toEqual({ a: 2, keep: true });
    const query = new URL(post.url).searchParams;
    expect([query.get('change_reason'), query.get('version'), query.get('force')]).toEqual(['why not', '1.1.0', null]);
    expect(stdout).toContain(`updated ${SVC}: revision 7 → 8, version 1.0.0, broadcast sent`);
    expect(stdout).toContain(`--- ${SVC}@7\n+++ ${SVC}@8\n`);
    expect(stdout).toContain('-  "a": 1,\n+  "a": 2,');
  });

  it('set of a service the hub does not have creates it with If-Match "0" (fails if someone else created it meanwhile)', async () => {
    agent.use(
      http.get(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'no config' }, { status: 404 })),
      http.post(`${API}/${SVC}`, () => written(1, { a: 1 }, 'created')),
    );
    const { code, stdout } = await run(['set', SVC], { stdin: '{"a":1}' });
    expect(code).toBe(0);
    expect(requestsOf('POST')[0]!.headers.get('if-match')).toBe('"0"');
    expect(stdout).toContain(`created ${SVC}: revision 1`);
  });

  it('--if-match N skips the read and sends N; --force sends force=true with the reason', async () => {
    agent.use(http.post(`${API}/${SVC}`, () => written(6, { a: 1 })));
    const { code } = await run(['set', SVC, '--if-match', '5', '--force', '--change-reason', 'incident 42'], { stdin: '{"a":1}' });
    expect(code).toBe(0);
    expect(requestsOf('GET')).toHaveLength(0);
    const post = requestsOf('POST')[0]!;
    expect(post.headers.get('if-match')).toBe('"5"');
    expect(new URL(post.url).searchParams.get('force')).toBe('true');
  });

  it('patch sends the merge patch as application/merge-patch+json with If-Match', async () => {
    agent.use(serve(3, { a: 1, b: 2 }), http.patch(`${API}/${SVC}`, () => written(4, { a: 1 })));
    const { code, stdout } = await run(['patch', SVC], { stdin: '{"b":null}' });
    expect(code).toBe(0);
    const patch = requestsOf('PATCH')[0]!;
    expect(patch.headers.get('content-type')).toBe('application/merge-patch+json');
    expect(patch.headers.get('if-match')).toBe('"3"');
    expect(await patch.json()).toEqual({ b: null });
    expect(stdout).toContain('-  "b": 2');
  });

  it('patch of a service the hub does not have exits 1 and sends no PATCH', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'no config' }, { status: 404 })));
    const { code, stderr } = await run(['patch', SVC], { stdin: '{"b":1}' });
    expect(code).toBe(1);
    expect(stderr).toContain('HTTP 404');
    expect(requestsOf('PATCH')).toHaveLength(0);
  });

  it('--json prints the write answer with the revision it replaced', async () => {
    agent.use(serve(3, { a: 1 }), http.patch(`${API}/${SVC}`, () => written(4, { a: 2 })));
    const { stdout } = await run(['patch', SVC, '--json'], { stdin: '{"a":2}' });
    expect(JSON.parse(stdout)).toMatchObject({ status: 'updated', revision: 4, previous_revision: 3, config: { a: 2 } });
  });

  it('rollback sends {revision} or {version} to /rollback/{service} with If-Match', async () => {
    agent.use(serve(9, { a: 9 }), http.post(`${API}/rollback/${SVC}`, () => written(10, { a: 3 }, 'rollback')));
    expect((await run(['rollback', SVC, '--revision', '3'])).code).toBe(0);
    expect((await run(['rollback', SVC, '--version', '0.9.0', '--change-reason', 'r'])).code).toBe(0);
    const [byRevision, byVersion] = requestsOf('POST');
    expect(await byRevision!.json()).toEqual({ revision: 3 });
    expect(await byVersion!.json()).toEqual({ version: '0.9.0' });
    expect(byRevision!.headers.get('if-match')).toBe('"9"');
    expect(new URL(byVersion!.url).searchParams.get('change_reason')).toBe('r');
  });

  it('rollback of a deleted config (GET 404) names the delete revision from the history', async () => {
    agent.use(
      http.get(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'no config' }, { status: 404 })),
      historyOf(entry(5, { a: 4 }, { action: 'deleted' })),
      http.post(`${API}/rollback/${SVC}`, () => written(6, { a: 4 }, 'rollback')),
    );
    const { code, stdout } = await run(['rollback', SVC, '--revision', '4']);
    expect(code).toBe(0);
    expect(requestsOf('POST')[0]!.headers.get('if-match')).toBe('"5"');
    expect(stdout).toContain(`rollback ${SVC}: revision 5 → 6`);
  });
});

describe('refusals of a write', () => {
  it('a 412 exits 1 naming the current revision and what changed since the base revision; nothing else is sent', async () => {
    let gets = 0;
    agent.use(
      http.get(`${API}/${SVC}`, () => {
        gets++;
        // The first read is the base (7); someone writes 8 before our POST arrives.
        return gets === 1 ? HttpResponse.json(doc(7, { a: 1, b: 1 })) : HttpResponse.json(doc(8, { a: 1, b: 5, c: true }));
      }),
      http.post(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'revision mismatch: If-Match 7, current 8', revision: 8 }, { status: 412 })),
    );
    const { code, stdout, stderr } = await run(['set', SVC], { stdin: '{"a":2,"b":1}' });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(`conflict: '${SVC}' changed since revision 7, the one this edit was based on; nothing was written`);
    expect(stderr).toContain('the hub is at revision 8 now');
    expect(stderr).toContain(`--- ${SVC}@7 (your base)\n+++ ${SVC}@8 (current)`);
    expect(stderr).toContain('-  "b": 1\n+  "b": 5,\n+  "c": true');
    expect(stderr).toContain('your config differs from the current one at: a, b, c');
    expect(stderr).toContain('--if-match 8');
    expect(requestsOf('POST')).toHaveLength(1);
  });

  it('a 412 with --if-match takes the base config from the history, and --json gives the conflict document', async () => {
    agent.use(
      serve(9, { a: 3 }),
      historyOf(entry(9, { a: 3 }), entry(8, { a: 2 }), entry(7, { a: 1 })),
      http.patch(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'revision mismatch: If-Match 7, current 9', revision: 9 }, { status: 412 })),
    );
    const { code, stdout, stderr } = await run(['patch', SVC, '--if-match', '7', '--json'], { stdin: '{"b":1}' });
    expect(code).toBe(1);
    expect(stderr).toContain('-  "a": 1\n+  "a": 3');
    expect(JSON.parse(stdout)).toMatchObject({
      error: { status: 412, expected_revision: 7, current_revision: 9, current: { revision: 9 }, changes: [{ path: 'a', op: 'replace', from: 1, to: 3 }] },
    });
  });

  it('a create that lost the race (If-Match "0" → 412) shows everything the other writer created', async () => {
    let gets = 0;
    agent.use(
      http.get(`${API}/${SVC}`, () => (gets++ === 0 ? HttpResponse.json({ detail: 'no config' }, { status: 404 }) : HttpResponse.json(doc(1, { theirs: true })))),
      http.post(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'revision mismatch: If-Match 0, current 1', revision: 1 }, { status: 412 })),
    );
    const { code, stderr } = await run(['set', SVC], { stdin: '{"mine":true}' });
    expect(code).toBe(1);
    expect(stderr).toContain(`changed since revision 0`);
    expect(stderr).toContain(`--- ${SVC}@0 (your base)\n+++ ${SVC}@1 (current)`);
    expect(stderr).toContain('+  "theirs": true');
  });

  it('a 422 from the consumers exits 1 with the detail, the issues, the consumers and how to force it', async () => {
    agent.use(
      serve(2, { operational: { batch_size: 10 } }),
      http.patch(`${API}/${SVC}`, () =>
        HttpResponse.json(
          {
            detail: '1 consumer (3 instances) would reject this config',
            issues: [{ path: 'operational.batch_size', message: 'must be > 0', keyword: 'exclusiveMinimum' }],
            consumers: [{ schema_hash: 'f'.repeat(64), instances: 3, instance_ids: ['a', 'b', 'c'], issues: [{ path: 'operational.batch_size', message: 'must be > 0', keyword: 'exclusiveMinimum' }] }],
            unchecked: [],
            unknown_schemas: [],
          },
          { status: 422 },
        ),
      ),
    );
    const { code, stderr } = await run(['patch', SVC], { stdin: '{"operational":{"batch_size":-1}}' });
    expect(code).toBe(1);
    expect(stderr).toContain('hub refused (HTTP 422): 1 consumer (3 instances) would reject this config');
    expect(stderr).toContain('issues:\n  operational.batch_size: must be > 0 (exclusiveMinimum)');
    expect(stderr).toContain('consumers that would reject it:\n  schema ffffffffffff…, 3 instance(s): a, b, c\n    operational.batch_size: must be > 0');
    expect(stderr).toContain('--force --change-reason R commits anyway');
  });

  it('a 422 for secret-looking keys lists the paths', async () => {
    agent.use(serve(2, {}), http.post(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'secret-looking keys are not accepted', paths: ['db.password'] }, { status: 422 })));
    const { code, stderr } = await run(['set', SVC], { stdin: '{"db":{"password":"x"}}' });
    expect(code).toBe(1);
    expect(stderr).toContain('paths: db.password');
  });
});

describe('validate', () => {
  const validateRoute = `${API}/${SVC}/validate`;

  it('a config the hub accepts exits 0 and says against how many consumer schemas it was checked', async () => {
    agent.use(http.post(validateRoute, () => HttpResponse.json({ valid: true, consumers: [{ schema_hash: 'ab'.repeat(32), instances: 2, instance_ids: ['x', 'y'], issues: [] }], unchecked: [{ schema_hash: 'ab'.repeat(32), path: 'operational', kind: 'refinement' }], unknown_schemas: [] })));
    const { code, stdout } = await run(['validate', SVC], { stdin: '{"a":1}' });
    expect(code).toBe(0);
    expect(stdout).toContain(`valid: ${SVC} accepts it (checked against 1 consumer schema(s))`);
    expect(stdout).toContain('schema abababababab…, 2 instance(s): x, y');
    expect(stdout).toContain('operational: refinement');
    expect(await requestsOf('POST')[0]!.json()).toEqual({ a: 1 });
  });

  it('a config the consumers reject exits 1; --json prints {valid:false, …the 422 body}', async () => {
    const body = { detail: '1 consumer (1 instance) would reject this config', issues: [{ path: 'a', message: 'must be string', keyword: 'type' }], consumers: [], unchecked: [], unknown_schemas: [] };
    agent.use(http.post(validateRoute, () => HttpResponse.json(body, { status: 422 })));
    const human = await run(['validate', SVC], { stdin: '{"a":1}' });
    expect(human.code).toBe(1);
    expect(human.stderr).toContain('invalid: 1 consumer (1 instance) would reject this config');
    expect(human.stderr).toContain('a: must be string (type)');
    const json = await run(['validate', SVC, '--json'], { stdin: '{"a":1}' });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ valid: false, ...body });
  });

  it('a hub without the validate route exits 1 and says so', async () => {
    agent.use(http.post(validateRoute, () => HttpResponse.json({ detail: `no route POST /api/v1/config/${SVC}/validate` }, { status: 404 })));
    const { code, stderr } = await run(['validate', SVC], { stdin: '{}' });
    expect(code).toBe(1);
    expect(stderr).toContain(`hub ${HUB} has no validate route`);
  });
});

describe('diff', () => {
  it('diffs two revisions from the history; an unknown revision exits 1', async () => {
    agent.use(historyOf(entry(3, { a: 1, b: [1] }), entry(2, { a: 1 }), entry(1, {})));
    const { code, stdout } = await run(['diff', SVC, '2', '3']);
    expect(code).toBe(0);
    expect(stdout).toBe(`--- ${SVC}@2\n+++ ${SVC}@3\n@@ -1,3 +1,6 @@\n {\n-  "a": 1\n+  "a": 1,\n+  "b": [\n+    1\n+  ]\n }\n`);
    const missing = await run(['diff', SVC, '2', '99']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('revision 99');
  });

  it('diffs a revision against stdin; equal configs print nothing on stdout; --json lists the changed paths', async () => {
    agent.use(historyOf(entry(2, { a: 1, b: 2 })));
    const equal = await run(['diff', SVC, '2', '--file', '-'], { stdin: '{"b":2,"a":1}' });
    expect(equal.code).toBe(0);
    expect(equal.stdout).toBe('');
    expect(equal.stderr).toContain('no differences');
    const json = await run(['diff', SVC, '2', '-f', '-', '--json'], { stdin: '{"a":1,"b":3}' });
    expect(JSON.parse(json.stdout)).toEqual({
      service_name: SVC,
      from: { revision: 2 },
      to: { file: 'stdin' },
      equal: false,
      changes: [{ path: 'b', op: 'replace', from: 2, to: 3 }],
    });
  });

  it('the diff is coloured on a TTY and plain with NO_COLOR', async () => {
    agent.use(historyOf(entry(2, { a: 2 }), entry(1, { a: 1 })));
    const tty = await run(['diff', SVC, '1', '2'], { isTTY: true });
    expect(tty.stdout).toContain('\u001b[31m-  "a": 1\u001b[39m');
    const noColor = await run(['diff', SVC, '1', '2'], { isTTY: true, env: { NO_COLOR: '1' } });
    expect(noColor.stdout).not.toContain('\u001b[');
  });
});

describe('watch (polling)', () => {
  /** A hub whose config moves through `revisions` one poll at a time, answering 304 when unchanged. */
  function movingHub(revisions: number[]) {
    let at = 0;
    agent.use(
      http.get(`${API}/${SVC}`, ({ request }) => {
        const revision = revisions[Math.min(at++, revisions.length - 1)]!;
        if (request.headers.get('if-none-match') === etagOf(revision)) return new HttpResponse(null, { status: 304 });
        return HttpResponse.json(doc(revision, { n: revision }), { headers: { etag: etagOf(revision) } });
      }),
    );
  }

  it('prints each change with its diff, polls with If-None-Match, and exits 0 when stopped', async () => {
    movingHub([1, 1, 2, 2, 3]);
    const stop = new AbortController();
    const { code, stdout, stderr } = await run(['watch', SVC, '--interval-ms', '100'], {
      signal: stop.signal,
      onStdout: (text) => {
        if (text.includes('revision 2 → 3')) stop.abort();
      },
    });
    expect(code).toBe(0);
    expect(stderr).toContain(`# watching ${SVC} at revision 1`);
    expect(stdout).toMatch(new RegExp(`^\\S+Z ${SVC} revision 1 → 2 \\(version 1\\.0\\.0\\): n\\n--- ${SVC}@1\\n\\+\\+\\+ ${SVC}@2\\n`));
    expect(stdout).toContain('-  "n": 1\n+  "n": 2');
    expect(stdout).toContain(`${SVC} revision 2 → 3`);
    const conditional = requestsOf('GET').slice(1).map((r) => r.headers.get('if-none-match'));
    expect(conditional.slice(0, 2)).toEqual([etagOf(1), etagOf(1)]);
  });

  it('--json prints NDJSON: the current document, then one line per change', async () => {
    movingHub([4, 5]);
    const stop = new AbortController();
    const { code, stdout } = await run(['watch', SVC, '--interval-ms', '100', '--json'], {
      signal: stop.signal,
      onStdout: (text) => {
        if (text.split('\n').length > 2) stop.abort();
      },
    });
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ event: 'current', revision: 4, config: { n: 4 } });
    expect(lines[1]).toMatchObject({ event: 'change', revision: 5, previous_revision: 4, changes: [{ path: 'n', op: 'replace', from: 4, to: 5 }] });
  });

  it('an outage while watching is reported once and waited out; a refusal (401) ends the watch with exit 1', async () => {
    const answers: Array<() => Response> = [
      () => HttpResponse.json(doc(1, { n: 1 }), { headers: { etag: etagOf(1) } }),
      () => HttpResponse.json({ detail: 'database unavailable' }, { status: 503 }),
      () => HttpResponse.json({ detail: 'database unavailable' }, { status: 503 }),
      () => HttpResponse.json(doc(2, { n: 2 }), { headers: { etag: etagOf(2) } }),
      () => HttpResponse.json({ detail: 'key revoked' }, { status: 401 }),
    ];
    let at = 0;
    agent.use(http.get(`${API}/${SVC}`, () => answers[Math.min(at++, answers.length - 1)]!()));
    const { code, stdout, stderr } = await run(['watch', SVC, '--interval-ms', '100']);
    expect(code).toBe(1);
    expect(stderr.match(/HTTP 503/g)).toHaveLength(1);
    expect(stderr).toContain(`# ${HUB} answers again`);
    expect(stdout).toContain(`${SVC} revision 1 → 2`);
    expect(stderr).toContain('hub refused (HTTP 401): key revoked');
  });

  it('a watch started on a service without a config waits for it and prints its creation and deletion', async () => {
    const answers = [404, 1, 404];
    let at = 0;
    agent.use(
      http.get(`${API}/${SVC}`, () => {
        const a = answers[Math.min(at++, answers.length - 1)]!;
        return a === 404 ? HttpResponse.json({ detail: 'no config' }, { status: 404 }) : HttpResponse.json(doc(a, { n: a }), { headers: { etag: etagOf(a) } });
      }),
    );
    const stop = new AbortController();
    const { code, stdout, stderr } = await run(['watch', SVC, '--interval-ms', '100'], {
      signal: stop.signal,
      onStdout: (text) => {
        if (text.includes('deleted')) stop.abort();
      },
    });
    expect(code).toBe(0);
    expect(stderr).toContain('at no config yet');
    expect(stdout).toContain(`${SVC} created 1`);
    expect(stdout).toContain(`${SVC} deleted (was revision 1)`);
  });
});
