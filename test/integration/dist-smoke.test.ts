/**
 * The published artefacts: the built ESM and CJS entry points load, expose the API, and share the error brand;
 * they load without `@opentelemetry/api` (an optional peer) and record through it when it is there.
 */
import { execFileSync, execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

beforeAll(() => {
  // `npm test` on a fresh clone has no dist/ yet; CI builds first and this is then a no-op.
  if (!existsSync(join(root, 'dist', 'index.cjs')) || !existsSync(join(root, 'dist', 'index.js'))) {
    execFileSync('npx', ['tsup'], { cwd: root, stdio: 'ignore' });
  }
}, 120_000);

describe('built package', () => {
  it('imports as ESM and requires as CJS, through the exports map', async () => {
    const esm = await import(pathToFileURL(join(root, 'dist', 'index.js')).href);
    const require = createRequire(join(root, 'package.json'));
    const cjs = require('@central-hub/config');
    const cjsWire = require('@central-hub/config/wire');
    for (const mod of [esm, cjs]) {
      expect(typeof mod.ConfigClient).toBe('function');
      expect(typeof mod.isConfigError).toBe('function');
      expect(mod.DEFAULT_CACHE_TTL_MS).toBe(300_000);
    }
    expect(cjsWire.serviceNameSchema.safeParse('tick-aggregator').success).toBe(true);
    // The brand is a registered symbol: an error from one copy is recognised by the other.
    const fromEsm = new esm.ConfigError('CONFIG_INVALID', 'x');
    expect(cjs.isConfigError(fromEsm)).toBe(true);
    expect(esm.isConfigError(new cjs.ConfigError('HUB_UNREACHABLE', 'y'))).toBe(true);
    expect(esm.isConfigError(new Error('plain'))).toBe(false);
  });

  it('a client from the CJS build constructs without I/O and closes', async () => {
    const require = createRequire(join(root, 'package.json'));
    const { ConfigClient } = require('@central-hub/config');
    const client = new ConfigClient({ hubUrl: 'http://127.0.0.1:1', snapshotDir: false });
    await client.close();
    await expect(client.get('x')).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
  });
});

/**
 * An application directory outside the repository (so nothing up the tree resolves `@opentelemetry/api`):
 * the built package copied into its node_modules, its dependencies linked, and the OpenTelemetry packages
 * linked only when asked for.
 */
function appDir(withOtel: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'chc-dist-otel-'));
  const pkgDir = join(dir, 'node_modules', '@central-hub', 'config');
  mkdirSync(join(pkgDir, 'dist'), { recursive: true });
  copyFileSync(join(root, 'package.json'), join(pkgDir, 'package.json'));
  for (const file of readdirSync(join(root, 'dist'))) {
    if (/^(index|wire)\.(c?js|d\.c?ts)$/.test(file)) copyFileSync(join(root, 'dist', file), join(pkgDir, 'dist', file));
  }
  const deps = ['lru-cache', 'nats', 'undici', 'zod', ...(withOtel ? ['@opentelemetry/api', '@opentelemetry/sdk-metrics'] : [])];
  mkdirSync(join(dir, 'node_modules', '@opentelemetry'));
  for (const dep of deps) symlinkSync(join(root, 'node_modules', dep), join(dir, 'node_modules', dep), 'dir');
  return dir;
}

const run = promisify(execFile);

/** Runs `file` in `dir` with node, no NODE_PATH and no NODE_OPTIONS of the test runner; returns stdout. */
async function node(dir: string, file: string, source: string): Promise<string> {
  writeFileSync(join(dir, file), source);
  const { NODE_PATH: _path, NODE_OPTIONS: _options, ...env } = process.env;
  const { stdout } = await run(process.execPath, [file], { cwd: dir, env, timeout: 20_000 });
  return stdout.trim();
}

// A client whose hub refuses connections: the first get falls back to the defaults after one failed fetch.
const CLIENT = `{ hubUrl: 'http://127.0.0.1:1', snapshotDir: false, pollIntervalMs: false, fleetReport: false,
  transport: { retries: 0 }, startupTimeoutMs: 500, services: { app: { defaults: { a: 1 } } }, logger: { debug: (o, m) => logs.push(m) } }`;

const WITHOUT_OTEL = (load: string) => `${load}
const assert = require('node:assert');
const { createRequire } = require('node:module');
// The premise: from the package's own files, the API does not resolve.
assert.throws(() => createRequire(require.resolve('@central-hub/config'))('@opentelemetry/api'), { code: 'MODULE_NOT_FOUND' });
const logs = [];
const client = new ConfigClient(${CLIENT});
client.get('app').then(async (value) => {
  assert.deepStrictEqual(value, { a: 1 });
  assert.ok(logs.includes('metrics off: @opentelemetry/api is not installed'), logs.join('; '));
  await client.close();
  console.log('ok');
});
`;

const WITH_OTEL = (load: string) => `${load}
const assert = require('node:assert');
const reader = new (class extends MetricReader { onForceFlush() { return Promise.resolve(); } onShutdown() { return Promise.resolve(); } })();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
const logs = [];
const client = new ConfigClient(${CLIENT});
client.get('app').then(async (value) => {
  assert.deepStrictEqual(value, { a: 1 });
  const { resourceMetrics } = await reader.collect();
  const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name + ' ' + JSON.stringify(m.dataPoints.map((p) => p.attributes))));
  await client.close();
  console.log(names.sort().join('\\n'));
});
`;

describe('built package and the optional @opentelemetry/api peer', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('neither bundle imports or requires @opentelemetry/api statically, nor do the types name it', () => {
    for (const file of ['index.js', 'index.cjs']) {
      const code = readFileSync(join(root, 'dist', file), 'utf8');
      expect(code).not.toMatch(/from\s*["']@opentelemetry\/api["']|\brequire\(\s*["']@opentelemetry\/api["']\s*\)|\bimport\(\s*["']@opentelemetry\/api["']\s*\)/);
      // The one way it is loaded: resolved at run time from the package's location.
      expect(code).toMatch(/createRequire\((import\.meta\.url|importMetaUrl)\)\("@opentelemetry\/api"\)/);
    }
    // The types name the API in prose only: a TypeScript app without it installed still compiles against them.
    for (const file of ['index.d.ts', 'index.d.cts']) {
      const types = readFileSync(join(root, 'dist', file), 'utf8');
      expect(types).toContain('MetricsMeter');
      expect(types).not.toMatch(/(from|import\()\s*["']@opentelemetry\//);
    }
  });

  it('loads, serves and closes as ESM and as CJS where @opentelemetry/api cannot be resolved', async () => {
    const dir = appDir(false);
    dirs.push(dir);
    expect(await node(dir, 'app.cjs', WITHOUT_OTEL(`const { ConfigClient } = require('@central-hub/config');`))).toBe('ok');
    expect(
      await node(dir, 'app.mjs', WITHOUT_OTEL(`import { createRequire as cr } from 'node:module'; const require = cr(import.meta.url); import { ConfigClient } from '@central-hub/config';`)),
    ).toBe('ok');
  }, 60_000);

  it('records through the global meter provider as ESM and as CJS when the API and an SDK are there', async () => {
    const dir = appDir(true);
    dirs.push(dir);
    const expected = ['central_hub.errors [{"service":"app","code":"HUB_UNREACHABLE"}]', 'central_hub.fetch.duration [{"service":"app","outcome":"error"}]'].join('\n');
    const cjs = `const { ConfigClient } = require('@central-hub/config'); const { metrics } = require('@opentelemetry/api'); const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');`;
    expect(await node(dir, 'app.cjs', WITH_OTEL(cjs))).toBe(expected);
    // The ESM app gets the API's ESM build, the package requires its CJS build: the global provider is shared.
    const esm = `import { createRequire as cr } from 'node:module'; const require = cr(import.meta.url); import { ConfigClient } from '@central-hub/config'; import { metrics } from '@opentelemetry/api'; import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';`;
    expect(await node(dir, 'app.mjs', WITH_OTEL(esm))).toBe(expected);
  }, 60_000);
});
