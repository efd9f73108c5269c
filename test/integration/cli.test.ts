/**
 * The built `central-hub` bin (dist/cli.js, run as a child process) against the real reference hub over real
 * sockets: PGlite on port 0 (and one PostgreSQL case), the shared nats-server for `watch --nats`, a real
 * ConfigClient as the consumer that `validate` and `instances` see.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Hub } from '../../examples/hub/server.js';
import { ConfigClient } from '../../src/index.js';
import { dropSchema, freePort, KEYS, SHARED_NATS_URL, startHub, TcpProxy, uniqueSchema, uniqueService, waitFor } from '../helpers/hub-fixtures.js';

const root = join(import.meta.dirname, '..', '..');
const CLI = join(root, 'dist', 'cli.js');

/** The newest mtime under `dir` (what the bin is built from). */
function newest(dir: string): number {
  let max = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, name.name);
    max = Math.max(max, name.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return max;
}

beforeAll(() => {
  // Like dist-smoke: build when dist/cli.js is missing, or older than the CLI's sources.
  const sources = Math.max(newest(join(root, 'src', 'cli')), statSync(join(root, 'src', 'hub', 'wire.ts')).mtimeMs);
  if (!existsSync(CLI) || statSync(CLI).mtimeMs < sources) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'ignore' });
}, 180_000);

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running bin: its output so far, a wait for a pattern, and its exit. */
interface Running {
  child: ChildProcessWithoutNullStreams;
  out(): string;
  err(): string;
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<Ran>;
}

/** Bins still running: a test that fails before it stops its `watch` must not leave the process behind. */
const running = new Set<ChildProcessWithoutNullStreams>();
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

function start(args: string[], options: { hub: string; stdin?: string; env?: Record<string, string> }): Running {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', CENTRAL_HUB_URL: options.hub, CENTRAL_HUB_API_KEY: KEYS.admin.key, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdin.end(options.stdin ?? '');
  const exited = new Promise<Ran>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return {
    child,
    out: () => stdout,
    err: () => stderr,
    waitFor: (stream, pattern, timeoutMs = 10_000) => waitFor(() => pattern.test(stream === 'stdout' ? stdout : stderr), timeoutMs),
    exited,
  };
}

const cli = (hub: string, args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<Ran> =>
  start(args, { hub, ...options }).exited;

/** Another writer: the hub API directly, with the admin key. */
async function hubCall(base: string, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown) {
  const res = await request(`${base}/api/v1/config${path}`, {
    method,
    headers: { 'x-api-key': KEYS.admin.key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text.length > 0 ? JSON.parse(text) : undefined };
}

const dir = mkdtempSync(join(tmpdir(), 'cli-it-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

describe('central-hub against the reference hub (pglite)', () => {
  let hub: Hub;
  let url: string;

  beforeAll(async () => {
    hub = (await startHub('pglite', { natsUrl: SHARED_NATS_URL, relayIntervalMs: 100 })).hub;
    url = await hub.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await hub?.close();
  });

  /** A fresh service at revision 1 with `config`. */
  async function service(config: Record<string, unknown> = { operational: { batch_size: 10, mode: 'fast' } }): Promise<string> {
    const name = uniqueService('cli');
    expect((await hubCall(url, 'POST', `/${name}`, config)).status).toBe(201);
    return name;
  }

  it('get prints the config the hub serves (sorted, pretty), and --json its whole document', async () => {
    const name = await service({ z: 1, a: { b: true } });
    const human = await cli(url, ['get', name]);
    expect(human).toMatchObject({ code: 0, stdout: '{\n  "a": {\n    "b": true\n  },\n  "z": 1\n}\n' });
    expect(human.stderr).toContain(`# ${name} revision 1, version 1.0.0`);
    const json = await cli(url, ['get', name, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ service_name: name, config: { z: 1, a: { b: true } }, revision: 1 });
  });

  it('get of a service the hub does not have exits 1 with the hub detail', async () => {
    const ran = await cli(url, ['get', uniqueService('absent')]);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/hub refused \(HTTP 404\): no config for service/);
  });

  it('set from a file replaces the whole config and reports the revision it replaced', async () => {
    const name = await service();
    const ran = await cli(url, ['set', name, '--file', file('set.json', { operational: { batch_size: 20, mode: 'safe' } }), '--change-reason', 'from a file', '--version-tag', '1.1.0']);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain(`updated ${name}: revision 1 → 2, version 1.1.0, broadcast sent`);
    expect(ran.stdout).toContain('-    "batch_size": 10,\n-    "mode": "fast"\n+    "batch_size": 20,\n+    "mode": "safe"');
    const now = await hubCall(url, 'GET', `/${name}`);
    expect(now.body).toMatchObject({ revision: 2, version: '1.1.0', config: { operational: { batch_size: 20, mode: 'safe' } } });
    const history = await hubCall(url, 'GET', `/history/${name}?limit=1`);
    expect(history.body.history[0].change_reason).toBe('from a file');
  });

  it('set from stdin creates a service that does not exist yet', async () => {
    const name = uniqueService('cli-new');
    const ran = await cli(url, ['set', name, '--json'], { stdin: '{"feature":{"on":true}}' });
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.stdout)).toMatchObject({ status: 'created', revision: 1, previous_revision: 0, config: { feature: { on: true } } });
    expect((await hubCall(url, 'GET', `/${name}`)).body.config).toEqual({ feature: { on: true } });
  });

  it('patch applies an RFC 7396 merge patch (null removes a key) and prints what it changed', async () => {
    const name = await service({ a: 1, b: { c: 2, d: 3 } });
    const ran = await cli(url, ['patch', name], { stdin: '{"b":{"c":null,"e":5}}' });
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain('-    "c": 2,');
    expect((await hubCall(url, 'GET', `/${name}`)).body.config).toEqual({ a: 1, b: { d: 3, e: 5 } });
  });

  it('diff shows two revisions, and a revision against a file, as a unified diff of sorted, pretty JSON', async () => {
    const name = await service({ a: 1, list: [1, 2] });
    await hubCall(url, 'PATCH', `/${name}`, { a: 2, added: 'x' });
    const revisions = await cli(url, ['diff', name, '1', '2']);
    expect(revisions.code).toBe(0);
    expect(revisions.stdout).toBe(
      `--- ${name}@1\n+++ ${name}@2\n@@ -1,5 +1,6 @@\n {\n-  "a": 1,\n+  "a": 2,\n+  "added": "x",\n   "list": [\n     1,\n     2\n`,
    );
    const path = file('diff.json', { list: [1, 2], a: 1 });
    const againstFile = await cli(url, ['diff', name, '1', '--file', path]);
    expect(againstFile.code).toBe(0);
    expect(againstFile.stdout).toBe('');
    expect(againstFile.stderr).toContain(`no differences between ${name}@1 and ${path}`);
    const json = await cli(url, ['diff', name, '2', '--file', path, '--json']);
    expect(JSON.parse(json.stdout).changes).toEqual([
      { path: 'a', op: 'replace', from: 2, to: 1 },
      { path: 'added', op: 'remove', from: 'x' },
    ]);
  });

  it('history prints an aligned table, newest first; --json prints the hub answer', async () => {
    const name = await service();
    await hubCall(url, 'PATCH', `/${name}?change_reason=second`, { operational: { batch_size: 11 } });
    const table = await cli(url, ['history', name]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^REVISION {2}ACTION {3}VERSION {2}CHANGED BY {2}CHANGED AT {12}REASON$/);
    expect(lines[1]).toMatch(/^2 {9}updated {2}1\.0\.0 {4}admin {7}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}second$/);
    expect(lines[2]).toMatch(/^1 {9}created {2}1\.0\.0 {4}admin {7}\S+ {2}-$/);
    const json = await cli(url, ['history', name, '--limit', '1', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ service_name: name, total: 2, limit: 1, history: [{ revision: 2, action: 'updated' }] });
  });

  it('rollback --revision restores an earlier config as a new revision', async () => {
    const name = await service({ a: 1 });
    await hubCall(url, 'POST', `/${name}`, { a: 2 });
    const ran = await cli(url, ['rollback', name, '--revision', '1', '--change-reason', 'back to 1']);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain(`rollback ${name}: revision 2 → 3`);
    expect((await hubCall(url, 'GET', `/${name}`)).body).toMatchObject({ revision: 3, config: { a: 1 } });
    const missing = await cli(url, ['rollback', name, '--revision', '99']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('has no revision 99 to roll back to');
  });

  describe('with a running consumer', () => {
    const schema = z.object({ operational: z.object({ batch_size: z.number().int().positive(), mode: z.enum(['fast', 'safe']) }) });
    const instanceId = `cli-it-${process.pid}`;
    const consumer = (service: string) =>
      new ConfigClient({ hubUrl: url, apiKey: KEYS.reader.key, snapshotDir: false, pollIntervalMs: 60_000, instanceId, services: { [service]: { schema } } });
    let client: ReturnType<typeof consumer> | undefined;
    let name: string;

    beforeAll(async () => {
      name = await service();
      const started = consumer(name);
      client = started;
      await started.get(name);
      // The first GET names a schema the hub does not know; the client uploads it; then the hub checks against it.
      await waitFor(async () => (await hubCall(url, 'POST', `/${name}/validate`, { operational: { batch_size: 1, mode: 'fast' } })).body?.consumers?.length === 1, 10_000);
    });
    afterAll(async () => {
      await client?.close();
    });

    it('validate: a config the consumers accept exits 0, one they would reject exits 1 with the issues and the consumers', async () => {
      const good = await cli(url, ['validate', name, '--file', file('good.json', { operational: { batch_size: 5, mode: 'safe' } })]);
      expect(good.code).toBe(0);
      expect(good.stdout).toContain(`valid: ${name} accepts it (checked against 1 consumer schema(s))`);
      const bad = await cli(url, ['validate', name], { stdin: '{"operational":{"batch_size":-5,"mode":"turbo"}}' });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('invalid: 1 consumer (1 instance) would reject this config');
      expect(bad.stderr).toMatch(/issues:\n {2}operational\.batch_size: /);
      expect(bad.stderr).toContain(`1 instance(s): ${instanceId}`);
      // Nothing was written.
      expect((await hubCall(url, 'GET', `/${name}`)).body.revision).toBe(1);
      const json = await cli(url, ['validate', name, '--json'], { stdin: '{"operational":{"batch_size":0,"mode":"fast"}}' });
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ valid: false, consumers: [{ instances: 1, instance_ids: [instanceId] }] });
    });

    it('a write the consumers would reject exits 1 and says how to force it; --force with a reason commits it', async () => {
      const refused = await cli(url, ['patch', name], { stdin: '{"operational":{"batch_size":-1}}' });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('--force --change-reason R commits anyway');
      const forced = await cli(url, ['patch', name, '--force', '--change-reason', 'cli it: override'], { stdin: '{"operational":{"batch_size":-1}}' });
      expect(forced.code).toBe(0);
      expect(forced.stderr).toContain('forced: committed although running consumers would reject it');
      await hubCall(url, 'PATCH', `/${name}?force=true&change_reason=restore`, { operational: { batch_size: 10 } });
    });

    it('instances lists the instance that reported, as a table and as --json', async () => {
      const table = await cli(url, ['instances', name]);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(new RegExp(`^${name} at revision \\d+: 1 instance\\(s\\)`));
      expect(table.stdout).toMatch(/\nINSTANCE +HOST +PID +CLIENT +REVISION +SOURCE +STALE +LAST SEEN +ERROR +SCHEMA\n/);
      expect(table.stdout).toContain(instanceId);
      const json = await cli(url, ['instances', name, '--json']);
      expect(JSON.parse(json.stdout)).toMatchObject({ service_name: name, instances: [{ instance_id: instanceId, pid: process.pid }], summary: { total: 1 } });
    });
  });

  it('watch (polling) prints a change another writer made, and exits 0 on SIGINT', async () => {
    const name = await service({ n: 1 });
    const watch = start(['watch', name, '--interval-ms', '150'], { hub: url });
    await watch.waitFor('stderr', /# watching .* at revision 1/);
    await hubCall(url, 'PATCH', `/${name}`, { n: 2 });
    await watch.waitFor('stdout', /\+ {2}"n": 2\n/);
    expect(watch.out()).toMatch(/ revision 1 → 2 \(version 1\.0\.0\): n\n--- \S+@1\n\+\+\+ \S+@2\n@@ -1,3 \+1,3 @@\n {\n- {2}"n": 1\n\+ {2}"n": 2\n }\n/);
    watch.child.kill('SIGINT');
    expect((await watch.exited).code).toBe(0);
  });

  it('watch --nats prints a change as soon as its notice arrives (no polling), as NDJSON, and exits 0 on SIGTERM', async () => {
    const name = await service({ n: 1 });
    const watch = start(['watch', name, '--nats', SHARED_NATS_URL, '--json'], { hub: url });
    // Subscribed and refetched once after the subscription: from here on only a notice can bring the change.
    await watch.waitFor('stderr', /# subscribed to config\.update\.\S+ at nats:/);
    expect(watch.out()).toContain('"event":"current"');
    await hubCall(url, 'POST', `/${name}`, { n: 2 });
    await watch.waitFor('stdout', /"event":"change"/, 5_000);
    watch.child.kill('SIGTERM');
    const ran = await watch.exited;
    expect(ran.code).toBe(0);
    const events = ran.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ event: 'current', revision: 1 });
    expect(events[1]).toMatchObject({ event: 'change', revision: 2, previous_revision: 1, changes: [{ path: 'n', op: 'replace', from: 1, to: 2 }] });
  });

  it('two operators editing the same revision at once: one commits, the other gets 412, exit 1, and the diff of what changed meanwhile', async () => {
    const name = await service({ owner: 'nobody', size: 1 });
    const [a, b] = await Promise.all([
      cli(url, ['set', name, '--if-match', '1'], { stdin: '{"owner":"alice","size":1}' }),
      cli(url, ['patch', name, '--if-match', '1'], { stdin: '{"size":2}' }),
    ]);
    expect([a.code, b.code].sort()).toEqual([0, 1]);
    const loser = a.code === 1 ? a : b;
    const winnerChange = a.code === 1 ? '+  "size": 2' : '+  "owner": "alice",';
    expect(loser.stderr).toContain(`conflict: '${name}' changed since revision 1, the one this edit was based on; nothing was written`);
    expect(loser.stderr).toContain('the hub is at revision 2 now');
    expect(loser.stderr).toContain(`--- ${name}@1 (your base)\n+++ ${name}@2 (current)`);
    expect(loser.stderr).toContain(winnerChange);
    expect(loser.stderr).toContain('--if-match 2');
    expect((await hubCall(url, 'GET', `/${name}`)).body.revision).toBe(2);
  });

  it('a set that read its base before someone else wrote gets 412 too (the read revision is what it sends)', async () => {
    const name = await service({ v: 1 });
    await hubCall(url, 'PATCH', `/${name}`, { v: 2 });
    // The operator's base is revision 1 (e.g. from `get` an hour ago); the hub is at 2.
    const stale = await cli(url, ['set', name, '--if-match', '1', '--json'], { stdin: '{"v":3}' });
    expect(stale.code).toBe(1);
    expect(JSON.parse(stale.stdout)).toMatchObject({ error: { status: 412, expected_revision: 1, current_revision: 2, changes: [{ path: 'v', from: 1, to: 2 }] } });
    expect((await hubCall(url, 'GET', `/${name}`)).body.config).toEqual({ v: 2 });
  });

  it('an unreachable hub exits 3: refused connection, an unreachable NATS for watch, and a hub that accepts and never answers (--timeout-ms)', async () => {
    const refused = await cli(`http://127.0.0.1:${await freePort()}`, ['get', 'tick-aggregator']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/unreachable: .*ECONNREFUSED/);
    const noNats = await cli(url, ['watch', 'tick-aggregator', '--nats', `nats://127.0.0.1:${await freePort()}`]);
    expect(noNats.code).toBe(3);
    expect(noNats.stderr).toMatch(/NATS nats:\/\/127\.0\.0\.1:\d+ unreachable/);
    const proxy = new TcpProxy(Number(new URL(url).port));
    await proxy.listen();
    proxy.hang();
    try {
      const hung = await cli(`http://127.0.0.1:${proxy.port}`, ['get', 'tick-aggregator', '--timeout-ms', '300']);
      expect(hung.code).toBe(3);
      expect(hung.stderr).toContain('no answer within 300 ms');
    } finally {
      await proxy.close();
    }
  });

  it('usage errors exit 2 without a request; --help and --version exit 0', async () => {
    const unknown = await cli(url, ['get', 'tick-aggregator', '--frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--frobnicate'");
    expect((await cli(url, ['rollback', 'tick-aggregator'])).code).toBe(2);
    const help = await cli(url, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes:');
    const version = await cli(url, ['--version']);
    const { version: packageVersion } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(version).toMatchObject({ code: 0, stdout: `${packageVersion}\n` });
  });

  it('a wrong API key exits 1 with the hub detail', async () => {
    const ran = await cli(url, ['get', 'tick-aggregator'], { env: { CENTRAL_HUB_API_KEY: 'not-a-key-0123456789' } });
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/hub refused \(HTTP 401\)/);
  });
});

describe('central-hub against the reference hub (postgres)', () => {
  let hub: Hub;
  let url: string;
  const schema = uniqueSchema('cli');

  beforeAll(async () => {
    hub = (await startHub('postgres', { schema })).hub;
    url = await hub.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await hub?.close();
    await dropSchema(schema);
  });

  it('on PostgreSQL: set from a file, get, history, and a stale write refused with 412 and exit 1', async () => {
    const name = uniqueService('cli-pg');
    expect((await cli(url, ['set', name, '--file', file('pg.json', { a: 1 })])).code).toBe(0);
    expect((await cli(url, ['patch', name], { stdin: '{"b":2}' })).code).toBe(0);
    expect(JSON.parse((await cli(url, ['get', name, '--json'])).stdout)).toMatchObject({ revision: 2, config: { a: 1, b: 2 } });
    const history = await cli(url, ['history', name]);
    expect(history.stdout.trim().split('\n')).toHaveLength(3);
    const stale = await cli(url, ['set', name, '--if-match', '1'], { stdin: '{"a":9}' });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('the hub is at revision 2 now');
    expect(stale.stderr).toContain('+  "b": 2');
  });
});
