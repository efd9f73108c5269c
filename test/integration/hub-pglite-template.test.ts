import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '../../examples/hub/store/migrate.js';
import { createPgliteStore } from '../../examples/hub/store/pglite.js';
import type { TemplateUse } from '../../examples/hub/store/pglite-template.js';

/** Real PGlite, a private template directory per test: what an in-memory start does with the template it finds. */
const root = mkdtempSync(path.join(os.tmpdir(), 'hub-pglite-template-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function open(dir: string) {
  let use: TemplateUse | undefined;
  const store = await createPgliteStore({ templateDir: dir, onTemplate: (u) => (use = u) });
  return { store, use: () => use };
}

function templates(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.tar'));
}

/** A first start in `dir` (which writes the template), closed; the template's path. */
async function templateWrittenIn(dir: string): Promise<string> {
  const first = await open(dir);
  expect(first.use()).toBe('written');
  await first.store.close();
  return path.join(dir, templates(dir)[0]!);
}

describe('embedded hub: the PGlite template (bench figure 9)', () => {
  it('the first in-memory start writes the template, the next loads it: migrated, and no data of the first start', async () => {
    const dir = path.join(root, 'fresh');
    const first = await open(dir);
    expect(first.use()).toBe('written');
    expect(await first.store.migrate()).toEqual([]); // the template carries the migrations
    expect(await first.store.seed([{ service_name: 'only-in-first', config: { a: 1 } }])).toEqual(['only-in-first']);
    await first.store.close();
    expect(templates(dir)).toHaveLength(1);
    expect(statSync(path.join(dir, templates(dir)[0]!)).mode & 0o077).toBe(0);

    const second = await open(dir);
    expect(second.use()).toBe('loaded');
    expect(await second.store.migrate()).toEqual([]);
    await expect(second.store.assertMigrated()).resolves.toBeUndefined();
    const names = (await loadMigrations()).map((m) => m.name);
    expect(names.length).toBeGreaterThan(0);
    expect((await second.store.list()).map((s) => s.service_name)).not.toContain('only-in-first');
    await second.store.close();
  }, 60_000);

  it('a damaged template is replaced and the start still works', async () => {
    const file = await templateWrittenIn(path.join(root, 'damaged'));
    writeFileSync(file, Buffer.alloc(4096, 7), { mode: 0o600 });
    const second = await open(path.dirname(file));
    expect(second.use()).toBe('written');
    expect(await second.store.migrate()).toEqual([]);
    await second.store.close();
    expect(statSync(file).size).toBeGreaterThan(4096);
  }, 60_000);

  it('a template others may write, or a directory others may write, is never loaded', async () => {
    const file = await templateWrittenIn(path.join(root, 'shared-file'));
    chmodSync(file, 0o666);
    const second = await open(path.dirname(file));
    expect(second.use()).toBe('written'); // initdb, and a private file in its place
    expect(statSync(file).mode & 0o077).toBe(0);
    await second.store.close();

    const open777 = path.join(root, 'shared-dir');
    mkdirSync(open777);
    chmodSync(open777, 0o777);
    const third = await open(open777);
    expect(third.use()).toBe('unwritable');
    expect(await third.store.migrate()).not.toEqual([]); // a plain initdb: the migrations ran here
    await third.store.close();
    expect(existsSync(open777) && templates(open777)).toEqual([]);
  }, 90_000);
});
