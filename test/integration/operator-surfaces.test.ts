/**
 * Issue 12, "done when": the CLI, /admin, /openapi.json and /metrics work against a hub started with the
 * README's command (`HUB_API_KEYS='[…]' npm run hub`), over real sockets.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/hub-fixtures.js';

const root = join(import.meta.dirname, '..', '..');
const CLI = join(root, 'dist', 'cli.js');
const KEY = 'ops-key-0123456789abcdef';

let npm: ChildProcess | undefined;
let url = '';
let answered = 0;

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await request(`${url}${path}`, { headers, headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await res.body.text();
  answered++;
  return { status: res.statusCode, type: String(res.headers['content-type'] ?? ''), text };
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, CENTRAL_HUB_URL: url, CENTRAL_HUB_API_KEY: KEY, NO_COLOR: '1' }, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  if (!existsSync(CLI)) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'ignore' });
  npm = spawn('npm', ['run', '--silent', 'hub'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: '0',
      NATS_URL: '',
      DATABASE_URL: '',
      HUB_LOG_LEVEL: 'warn',
      HUB_API_KEYS: JSON.stringify([{ name: 'ops', key: KEY, scopes: ['read:*', 'write:*'] }]),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npm.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  npm.stderr!.resume();
  await waitFor(() => /hub listening on (http:\/\/\S+)/.test(out), 45_000, 50);
  url = /hub listening on (http:\/\/\S+)/.exec(out)![1]!;
}, 180_000);

afterAll(async () => {
  npm?.kill('SIGTERM');
  expect(answered).toBeGreaterThan(0);
});

describe('operator surfaces on a hub started with the README command', () => {
  it('serves the admin page at /admin', async () => {
    const page = await get('/admin');
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.text).toMatch(/<script type="module" src="[^"]+\.js"><\/script>/);
  });

  it('serves an OpenAPI 3.1 description at /openapi.json', async () => {
    const doc = await get('/openapi.json');
    expect(doc.status).toBe(200);
    const parsed = JSON.parse(doc.text) as { openapi: string; paths: Record<string, unknown> };
    expect(parsed.openapi).toMatch(/^3\.1\./);
    expect(Object.keys(parsed.paths)).toEqual(expect.arrayContaining(['/api/v1/config/{service}', '/health']));
  });

  it('serves Prometheus metrics at /metrics, counting the requests it answered', async () => {
    await get('/api/v1/config/tick-aggregator', { 'x-api-key': KEY });
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toMatch(/^text\/plain/);
    expect(metrics.text).toMatch(/^hub_http_requests_total\{[^}]*route="\/api\/v1\/config\/:service"[^}]*\} [1-9]/m);
  });

  it('the CLI reads, writes with If-Match and lists history through it', async () => {
    const got = await cli(['get', 'tick-aggregator', '--json']);
    expect(got.code, got.stderr).toBe(0);
    const doc = JSON.parse(got.stdout) as { revision: number; config: Record<string, unknown> };
    expect(doc.revision).toBe(1);
    const dir = mkdtempSync(join(tmpdir(), 'ops-cli-'));
    const patchFile = join(dir, 'patch.json');
    writeFileSync(patchFile, JSON.stringify({ operator_surfaces_test: 42 }));
    const patched = await cli(['patch', 'tick-aggregator', '--file', patchFile, '--if-match', '1']);
    expect(patched.code, patched.stderr).toBe(0);
    // A second writer still based on revision 1 is refused (412 → exit 1), never overwriting revision 2.
    const stale = await cli(['patch', 'tick-aggregator', '--file', patchFile, '--if-match', '1']);
    expect(stale.code).toBe(1);
    rmSync(dir, { recursive: true, force: true });
    const history = await cli(['history', 'tick-aggregator', '--json']);
    expect(history.code, history.stderr).toBe(0);
    expect((JSON.parse(history.stdout) as { total: number }).total).toBe(2);
  });
});
