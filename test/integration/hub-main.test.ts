import { spawn } from 'node:child_process';
import net from 'node:net';
import { connect } from 'nats';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { dropSchema, PG_URL, SHARED_NATS_URL, uniqueSchema, withPg } from '../helpers/hub-fixtures.js';

const LINE = /^hub listening on (http:\/\/127\.0\.0\.1:(\d+)) \(store: (pglite|postgres), nats: (on|off)\)$/;

/** `npm run hub` = `tsx examples/hub/main.ts`, as a child process: one stdout line, graceful SIGTERM. */
function spawnMain(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/hub/main.ts'], {
    cwd: join(import.meta.dirname, '../..'),
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => {
    output.stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output.stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output, exited };
}

async function runMain(env: Record<string, string>, exercise: (url: string) => Promise<void>) {
  const { child, output, exited } = spawnMain({ HUB_LOG_LEVEL: 'warn', ...env });
  try {
    const deadline = Date.now() + 60_000;
    while (!output.stdout.includes('\n')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`hub did not start: ${output.stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    await exercise(output.stdout.trim());
    child.kill('SIGTERM');
    const code = await exited;
    return { code, ...output };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

describe('npm run hub (examples/hub/main.ts)', { timeout: 90_000 }, () => {
  it('PGlite in a data dir, no NATS: prints one line, serves, exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hub-data-'));
    try {
      const keys = JSON.stringify([{ name: 'ops', key: 'canary-key-7f3a9c', scopes: ['read:*', 'write:*'] }]);
      const result = await runMain({ HUB_DATA_DIR: dir, HUB_API_KEYS: keys, HUB_LOG_LEVEL: 'debug' }, async (line) => {
        const m = LINE.exec(line);
        expect(m, line).not.toBeNull();
        expect(m![3]).toBe('pglite');
        expect(m![4]).toBe('off');
        const res = await request(`${m![1]}/api/v1/config/data-bridge`, { headers: { 'x-api-key': 'canary-key-7f3a9c' } });
        expect(res.statusCode).toBe(200);
        expect(((await res.body.json()) as { revision: number }).revision).toBe(1);
        const denied = await request(`${m![1]}/api/v1/config/data-bridge`, { headers: { 'x-api-key': 'wrong' } });
        expect(denied.statusCode).toBe(401);
        await denied.body.dump();
        const write = await request(`${m![1]}/api/v1/config/data-bridge?version=2.0.0`, {
          method: 'POST',
          headers: { 'x-api-key': 'canary-key-7f3a9c', 'content-type': 'application/json' },
          body: JSON.stringify({ persisted: true }),
        });
        expect(write.statusCode).toBe(200);
        await write.body.dump();
      });
      expect(result.code).toBe(0);
      expect(result.stdout.split('\n').filter(Boolean)).toHaveLength(1);
      expect(result.stderr).not.toContain('canary-key-7f3a9c');

      // Restart on the same HUB_DATA_DIR: the write is still there, the seed is not re-applied.
      const again = await runMain({ HUB_DATA_DIR: dir, DISABLE_AUTH: 'true' }, async (line) => {
        const url = LINE.exec(line)![1];
        const res = await request(`${url}/api/v1/config/data-bridge`);
        expect(await res.body.json()).toMatchObject({ config: { persisted: true }, version: '2.0.0', revision: 2 });
      });
      expect(again.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('DATABASE_URL and NATS_URL set: store postgres, nats on', async () => {
    const schema = uniqueSchema('hubmain');
    try {
      const result = await runMain(
        { DATABASE_URL: PG_URL, HUB_PG_SCHEMA: schema, NATS_URL: SHARED_NATS_URL, DISABLE_AUTH: 'true' },
        async (line) => {
          const m = LINE.exec(line);
          expect(m, line).not.toBeNull();
          expect([m![3], m![4]]).toEqual(['postgres', 'on']);
          const res = await request(`${m![1]}/health`);
          expect(res.statusCode).toBe(200);
          expect(await res.body.json()).toMatchObject({ store: 'postgres', db: true });
        },
      );
      expect(result.code).toBe(0);
    } finally {
      await dropSchema(schema);
    }
  });

  it('SIGTERM with one client stalled in its body: exits 0 within a bounded time, after flushing the outbox and draining NATS', async () => {
    const schema = uniqueSchema('hubstall');
    const service = `stall-${Date.now().toString(36)}`;
    const nc = await connect({ servers: SHARED_NATS_URL });
    try {
      const notices: string[] = [];
      const sub = nc.subscribe(`config.update.${service}`, { callback: (_err, msg) => notices.push(msg.string()) });
      await nc.flush();
      const { child, output, exited } = spawnMain({
        DATABASE_URL: PG_URL,
        HUB_PG_SCHEMA: schema,
        NATS_URL: SHARED_NATS_URL,
        DISABLE_AUTH: 'true',
        HUB_LOG_LEVEL: 'warn',
      });
      try {
        const deadline = Date.now() + 60_000;
        while (!output.stdout.includes('\n')) {
          if (Date.now() > deadline || child.exitCode !== null) throw new Error(`hub did not start: ${output.stderr}`);
          await new Promise((r) => setTimeout(r, 25));
        }
        const url = new URL(LINE.exec(output.stdout.trim())![1]!);
        // One client sends its headers and part of its body, then nothing.
        const stalled = net.connect({ host: url.hostname, port: Number(url.port) });
        stalled.on('error', () => {});
        const stalledClosed = new Promise<void>((r) => stalled.once('close', () => r()));
        stalled.write(`POST /api/v1/config/${service} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":`);
        await new Promise((r) => setTimeout(r, 300));
        // A change committed behind the hub's back just before SIGTERM: a pending outbox row the close flushes.
        await withPg(async (c) => {
          await c.query(`INSERT INTO service_configs (service_name, config_json, version) VALUES ($1, '{"flushed":true}'::jsonb, '1.0.0')`, [service]);
        }, schema);
        const started = Date.now();
        child.kill('SIGTERM');
        const code = await exited;
        const tookMs = Date.now() - started;
        console.log(`[issue 10] SIGTERM with one stalled client: exit ${code} after ${tookMs} ms`);
        expect(code, output.stderr).toBe(0);
        expect(tookMs).toBeLessThan(5000);
        expect(output.stderr).not.toContain('shutdown took too long');
        await stalledClosed;
        const pending = await withPg((c) => c.query('SELECT count(*)::int AS n FROM config_outbox WHERE published_at IS NULL'), schema);
        expect(pending.rows[0].n).toBe(0);
        await nc.flush();
        expect(notices.map((n) => JSON.parse(n).config)).toContainEqual({ flushed: true });
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        sub.unsubscribe();
      }
    } finally {
      await nc.close();
      await dropSchema(schema);
    }
  });

  it('HUB_SKIP_MIGRATIONS=true on a database that was never migrated: exits 1 with a clear message', async () => {
    const { output, exited } = spawnMain({ DISABLE_AUTH: 'true', HUB_SKIP_MIGRATIONS: 'true' });
    const code = await exited;
    const { stdout, stderr } = output;
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/hub: failed to start: the hub schema is not migrated: no table hub_schema_migrations/);
  });
});
