/** `npm run hub` stops its hub when npm is killed (issue 12: SIGTERM to npm left the hub running, port held). */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/hub-fixtures.js';

const root = new URL('../..', import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startNpmHub(): Promise<{ npm: ChildProcess; url: string; hubPid: number }> {
  const npm = spawn('npm', ['run', '--silent', 'hub'], {
    cwd: root,
    env: { ...process.env, PORT: '0', DISABLE_AUTH: 'true', NATS_URL: '', DATABASE_URL: '', HUB_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npm.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  npm.stderr!.resume();
  await waitFor(() => /hub listening on (http:\/\/\S+)/.test(out), 30_000, 50);
  const url = /hub listening on (http:\/\/\S+)/.exec(out)![1]!;
  const health = await request(`${url}/health`);
  await health.body.dump();
  expect(health.statusCode).toBe(200);
  // The hub is npm's own child: the script execs node (no sh or tsx process between them).
  const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(npm.pid)]).toString().trim().split(/\s+/).map(Number);
  expect(children).toHaveLength(1);
  return { npm, url, hubPid: children[0]! };
}

async function portClosed(url: string): Promise<boolean> {
  try {
    const res = await request(`${url}/health`, { headersTimeout: 500, bodyTimeout: 500 });
    await res.body.dump();
    return false;
  } catch {
    return true;
  }
}

describe('npm run hub', () => {
  it.each(['SIGTERM', 'SIGINT', 'SIGKILL'] as const)('stops its hub when npm gets %s (no orphan process, port released)', async (signal) => {
    const { npm, url, hubPid } = await startNpmHub();
    expect(alive(hubPid)).toBe(true);
    npm.kill(signal);
    await waitFor(() => !alive(hubPid), 10_000, 50);
    expect(await portClosed(url)).toBe(true);
  }, 60_000);
});
