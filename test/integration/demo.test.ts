/**
 * `npm run demo` end to end: runs examples/demo.ts as a child process (through node_modules/.bin/tsx,
 * as the npm script does), once with the shared NATS (when reachable) and once with NATS_URL on a
 * closed port (polling path). Asserts the exit code, the labelled steps and key lines, that the
 * critical value never appears, and that no hub is left listening afterwards.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { canConnect } from '../../examples/tcp-probe.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const SHARED_NATS = 'nats://127.0.0.1:4222';
/** The hub's cold start on PGlite takes ~4 s on an idle machine, much more on a loaded CI box. */
const DEMO_TIMEOUT_MS = 90_000;
const SECRET = 'demo-test-secret-4f1c9a';

/** A port that nothing listens on (bound, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runDemo(env: Record<string, string>): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, ['examples/demo.ts'], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own group, so a timeout kill reaches tsx's node child and a hub it started
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
      reject(new Error(`demo did not finish within ${DEMO_TIMEOUT_MS} ms.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, DEMO_TIMEOUT_MS - 5_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function expectDemoSucceeded(run: DemoRun, mode: 'nats' | 'poll'): Promise<void> {
  const out = run.stdout;
  expect(run.code, `exit code; stdout:\n${out}\nstderr:\n${run.stderr}`).toBe(0);
  for (let step = 1; step <= 7; step++) expect(out).toContain(`[${step}/7]`);
  expect(out).toMatch(/fleet view: 1 instance\(s\), 1 on the latest revision 2, 0 behind, 0 rejected/);
  expect(out).toMatch(/hub refused it: 422 /);
  expect(out).toMatch(/issue: operational\.batch_size /);
  expect(out).toMatch(/consumer: schema [0-9a-f]{12}… \(1 instance\(s\)\)/);
  expect(out).toMatch(/dry run of batch_size 500: valid for 1 consumer\(s\), nothing written/);
  expect(out).toMatch(/the service still runs operational\.batch_size = 250 \(revision 2\)/);
  const hubLine = out.match(/hub listening on (http:\/\/127\.0\.0\.1:(\d+)) \(store: pglite, nats: (on|off)\)/);
  expect(hubLine, out).not.toBeNull();
  expect(hubLine![3]).toBe(mode === 'nats' ? 'on' : 'off');
  expect(out).toMatch(mode === 'nats' ? /hot reload: NATS at nats:\/\// : /hot reload: polling every 500 ms/);

  // provenance, with the critical value redacted and never printed
  expect(out).toMatch(/operational\.batch_size\s+= 100\s+← hub/);
  expect(out).toMatch(/operational\.request_timeout_seconds\s+= 30\s+← defaults/);
  expect(out).toMatch(/database\.password\s+= "\[redacted\]"\s+← env \(DEMO_DB_PASSWORD\)/);
  expect(out + run.stderr).not.toContain(SECRET);

  // the change, its paths and the measured propagation time
  expect(out).toMatch(/onChange: changed paths \[operational\.batch_size\], revision 2, via (nats|poll)/);
  const times = [...out.matchAll(/propagation time: (\d+) ms \(HTTP write → onChange callback, via (nats|poll)\)/g)];
  expect(times).toHaveLength(2);
  if (mode === 'poll') for (const t of times) expect(t[2]).toBe('poll');

  // served while the hub is down, then converged after its restart
  expect(out).toMatch(/forced refresh failed as expected: HUB_UNREACHABLE/);
  expect(out).toMatch(/served while the hub is down: operational\.batch_size = 250 \(source (cache|snapshot), stale true/);
  expect(out).toMatch(/onChange: changed paths \[features\.enable_auto_backfill\], revision 3/);
  expect(out).toMatch(/converged after the restart: source hub, stale false, revision 3 = hub revision 3/);
  expect(out).toMatch(/demo finished in [\d.]+ s: exit 0/);

  // nothing left running: the hub's port is closed again
  expect(await canConnect(Number(hubLine![2]))).toBe(false);
}

const natsReachable = await canConnect(4222);

describe('npm run demo', () => {
  it.skipIf(!natsReachable)(
    'runs the whole story with NATS hot reload and exits 0',
    async () => {
      const run = await runDemo({ NATS_URL: SHARED_NATS, DEMO_DB_PASSWORD: SECRET });
      await expectDemoSucceeded(run, 'nats');
      expect(run.stdout).toMatch(/onChange: changed paths \[operational\.batch_size\], revision 2, via nats/);
    },
    DEMO_TIMEOUT_MS,
  );

  it(
    'falls back to polling when NATS_URL points to a closed port, and exits 0',
    async () => {
      const port = await closedPort();
      const run = await runDemo({ NATS_URL: `nats://127.0.0.1:${port}`, DEMO_DB_PASSWORD: SECRET });
      await expectDemoSucceeded(run, 'poll');
      expect(run.stdout).toContain(`no NATS reachable at nats://127.0.0.1:${port}`);
    },
    DEMO_TIMEOUT_MS,
  );
});
