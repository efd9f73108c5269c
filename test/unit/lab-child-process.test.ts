import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupLab, isAlive, REPO_ROOT, spawnProcess, startHubProcess, startPostgres, waitForPort } from '../helpers/lab/index.js';

afterAll(async () => {
  await cleanupLab();
});

const node = process.execPath;

describe('lab: spawnProcess', () => {
  it('resolves with the ready-line match; pause/resume/stop; output()', async () => {
    const p = await spawnProcess(
      node,
      ['-e', "console.log('booting'); setTimeout(() => console.log('ready on port 1234'), 50); setInterval(() => {}, 1000)"],
      { readyLine: /ready on port (\d+)/, timeoutMs: 5_000 },
    );
    expect(p.match?.[1]).toBe('1234');
    expect(p.output()).toContain('booting');
    p.pause();
    expect(p.paused).toBe(true);
    p.resume();
    const info = await p.stop();
    expect(info.signal).toBe('SIGTERM');
    expect(p.running).toBe(false);
  });

  it('stop() of a paused process still terminates it; kill() is SIGKILL', async () => {
    const p = await spawnProcess(node, ['-e', 'setInterval(() => {}, 1000)']);
    p.pause();
    expect((await p.stop()).signal).toBe('SIGTERM');
    const q = await spawnProcess(node, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"]);
    expect((await q.kill()).signal).toBe('SIGKILL');
  });

  it('clear errors: ready-line timeout, exit before ready, missing binary', async () => {
    await expect(
      spawnProcess(node, ['-e', "console.log('nope'); setInterval(() => {}, 1000)"], { readyLine: /ready/, timeoutMs: 1_000 }),
    ).rejects.toThrow(/did not print a line matching \/ready\/ within 1000 ms/);
    await expect(spawnProcess(node, ['-e', "console.error('boom'); process.exit(2)"], { readyLine: /ready/ })).rejects.toThrow(
      /exited \(code 2[\s\S]*boom/,
    );
    await expect(spawnProcess('/nonexistent/binary', [])).rejects.toThrow(/could not spawn/);
  });

  it.each(['throw', 'exit'])('a crashing test process (%s) leaves no nats-server, postmaster or temp dir behind', async (mode) => {
    const fixture = path.join(REPO_ROOT, 'test/helpers/lab/fixtures/crash-after-start.ts');
    const p = await spawnProcess(node, ['--import', 'tsx', fixture, mode], {
      readyLine: /LAB_READY (.*)/,
      timeoutMs: 20_000,
      env: { LAB_FIXTURE_PG: mode === 'exit' ? '1' : '0' },
    });
    const info = JSON.parse(p.match![1]!) as { natsPid: number; pgPid?: number; pgDir?: string; proxyPort: number };
    const exit = await p.exited;
    expect(exit.code).not.toBe(0);
    expect(isAlive(info.natsPid)).toBe(false);
    if (info.pgPid) expect(isAlive(info.pgPid)).toBe(false);
    if (info.pgDir) expect(existsSync(info.pgDir)).toBe(false);
    await expect(waitForPort(info.proxyPort, { timeoutMs: 200 })).rejects.toThrow(/timed out/);
  });
});

const hubMain = path.join(REPO_ROOT, 'examples/hub/main.ts');
describe.skipIf(!existsSync(hubMain))('lab: startHubProcess', () => {
  // Store on a private PostgreSQL: with PGlite the hub takes ~5 s to start idle and 16–20 s on a busy machine;
  // with postgres ~3 s even when busy.
  it('starts the reference hub, parses its ready line, SIGKILL + restart on the same port', { timeout: 120_000 }, async () => {
    const db = await startPostgres();
    const t0 = Date.now();
    const hub = await startHubProcess({ DISABLE_AUTH: '1', DATABASE_URL: db.url }, { timeoutMs: 60_000 });
    console.log(`[lab timing] hub start (tsx, store ${hub.store}, nats ${hub.nats}): ${Date.now() - t0} ms`);
    expect(hub.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(hub.store).toBeTruthy();
    expect(hub.nats).toBe('off');
    expect((await fetch(`${hub.url}/health`)).status).toBe(200);

    await hub.kill();
    await expect(fetch(`${hub.url}/health`)).rejects.toThrow();
    const again = await hub.restart();
    expect(again.port).toBe(hub.port);
    expect((await fetch(`${again.url}/health`)).status).toBe(200);
    await again.stop();
    await db.destroy();
  });
});
