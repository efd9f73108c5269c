/** The published artefacts: the built ESM and CJS entry points load, expose the API, and share the error brand. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

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
