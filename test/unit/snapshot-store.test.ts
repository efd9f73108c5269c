/**
 * src/snapshot/file-store.ts on real temp dirs: writes of one service land in the order they were issued,
 * remove() takes its place in that order, and read() neither hangs, nor reads without bound, nor throws —
 * a FIFO, a symlink to /dev/zero, an oversize or too deeply nested file is a SNAPSHOT_INVALID result.
 */
import { execFileSync } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpResponse, http } from 'msw';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigClient } from '../../src/index.js';
import { type Snapshot, type SnapshotReadResult, SnapshotStore } from '../../src/snapshot/file-store.js';
import { createMswAgent } from '../helpers/lab/msw-undici.js';

const SERVICE = 'tick-aggregator';
let dir: string;
let fifos: string[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chc-store-'));
  fifos = [];
});

afterEach(async () => {
  // Releases a reader blocked in open() on a FIFO (the old store's hang), so no pool thread stays stuck.
  for (const fifo of fifos) {
    const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
    await writer?.close();
  }
  await rm(dir, { recursive: true, force: true });
});

function snapshot(revision: number, config: Record<string, unknown> = { r: revision }): Omit<Snapshot, 'savedAt'> {
  return { service: SERVICE, config, version: '1.0.0', updatedAt: 1_760_000_000_000 + revision, revision, etag: `"${revision}"` };
}

function fileBody(config: unknown): string {
  return JSON.stringify({ format: 1, service: SERVICE, config, version: '1', updated_at: 1, saved_at: 1 });
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
  fifos.push(path);
}

/** The read's outcome, or 'hung' when it has not settled within `ms`. */
async function within(ms: number, read: Promise<SnapshotReadResult>): Promise<SnapshotReadResult | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), ms);
  });
  try {
    return await Promise.race([read, hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe('writes', () => {
  it('the newest issued write wins: 200 rounds of two back-to-back writes never leave the older revision on disk', async () => {
    const store = new SnapshotStore(dir);
    let older = 0;
    for (let round = 0; round < 200; round++) {
      // The first write is the larger one, so it would finish last if the two ran side by side.
      const first = store.write(snapshot(round * 2, { big: 'x'.repeat(200_000) }));
      const second = store.write(snapshot(round * 2 + 1));
      await Promise.all([first, second]);
      if ((await store.read(SERVICE)).snapshot?.revision !== round * 2 + 1) older++;
    }
    expect(older).toBe(0);
    expect(await readdir(dir)).toEqual([`${SERVICE}.json`]);
  });

  it('50 writes issued back to back (the superseded ones may be skipped) all settle; the last one is on disk, mode 0600', async () => {
    const store = new SnapshotStore(dir);
    const writes = Array.from({ length: 50 }, (_, i) => store.write(snapshot(i)));
    await expect(Promise.all(writes)).resolves.toHaveLength(50);
    expect((await store.read(SERVICE)).snapshot?.revision).toBe(49);
    expect((await stat(join(dir, `${SERVICE}.json`))).mode & 0o777).toBe(0o600);
  });

  it('writes of different services do not wait for each other', async () => {
    const store = new SnapshotStore(dir);
    await Promise.all([store.write(snapshot(1)), store.write({ ...snapshot(2), service: 'data-bridge' })]);
    expect((await readdir(dir)).sort()).toEqual(['data-bridge.json', `${SERVICE}.json`]);
  });

  it('a failed write rejects, and the next write of that service still runs', async () => {
    const blocked = join(dir, 'not-a-dir');
    await writeFile(blocked, 'a file where the directory should be');
    const store = new SnapshotStore(blocked);
    await expect(store.write(snapshot(1))).rejects.toThrow();
    await rm(blocked);
    await store.write(snapshot(2));
    expect((await store.read(SERVICE)).snapshot?.revision).toBe(2);
  });

  it('idle() waits for every write issued so far', async () => {
    const store = new SnapshotStore(dir);
    void store.write(snapshot(1));
    void store.write(snapshot(2));
    await store.idle();
    expect(JSON.parse(await readFile(join(dir, `${SERVICE}.json`), 'utf8')).revision).toBe(2);
  });

  it('critical paths that were dropped are kept as paths (never values)', async () => {
    const store = new SnapshotStore(dir);
    await store.write({ ...snapshot(1), droppedCriticalPaths: ['database.password'] });
    expect((await store.read(SERVICE)).snapshot?.droppedCriticalPaths).toEqual(['database.password']);
  });
});

describe('remove', () => {
  it('remove(service) deletes the snapshot (a deleted config does not boot from disk after a restart)', async () => {
    const store = new SnapshotStore(dir);
    await store.write(snapshot(1));
    await store.remove(SERVICE);
    expect(await readdir(dir)).toEqual([]);
    expect(await new SnapshotStore(dir).read(SERVICE)).toEqual({ snapshot: undefined });
    await expect(store.remove(SERVICE)).resolves.toBeUndefined();
  });

  it('remove() is ordered with the writes: a write issued before it never lands after it, one issued after it does', async () => {
    const store = new SnapshotStore(dir);
    for (let round = 0; round < 50; round++) {
      const write = store.write(snapshot(round, { big: 'x'.repeat(200_000) }));
      const removal = store.remove(SERVICE);
      await Promise.all([write, removal]);
      expect(await readdir(dir)).toEqual([]);
    }
    void store.write(snapshot(1, { big: 'x'.repeat(200_000) }));
    void store.remove(SERVICE);
    await store.write(snapshot(2));
    expect((await store.read(SERVICE)).snapshot?.revision).toBe(2);
  });
});

describe('read never hangs, never reads without bound, never throws', () => {
  const file = () => join(dir, `${SERVICE}.json`);

  it('a FIFO (no writer) in place of the snapshot is SNAPSHOT_INVALID at once', async () => {
    mkfifo(file());
    const started = performance.now();
    const result = await within(1_000, new SnapshotStore(dir).read(SERVICE));
    expect(result).not.toBe('hung');
    expect((result as SnapshotReadResult).problem?.code).toBe('SNAPSHOT_INVALID');
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('a symlink to /dev/zero in place of the snapshot is SNAPSHOT_INVALID at once and reads nothing', async () => {
    await symlink('/dev/zero', file());
    const rss = process.memoryUsage().rss;
    const result = await within(1_000, new SnapshotStore(dir).read(SERVICE));
    expect(result).not.toBe('hung');
    expect((result as SnapshotReadResult).problem?.code).toBe('SNAPSHOT_INVALID');
    expect(process.memoryUsage().rss - rss).toBeLessThan(32 * 1024 * 1024);
  });

  it('a symlink to a valid snapshot elsewhere is refused too (the store only ever renames regular files into place)', async () => {
    const elsewhere = join(dir, 'elsewhere.json');
    await writeFile(elsewhere, fileBody({ a: 1 }));
    await symlink(elsewhere, file());
    const result = await new SnapshotStore(dir).read(SERVICE);
    expect(result.snapshot).toBeUndefined();
    expect(result.problem?.message).toMatch(/symbolic link/);
  });

  it('a directory in place of the snapshot is SNAPSHOT_INVALID', async () => {
    await rm(file(), { force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(file()));
    expect((await new SnapshotStore(dir).read(SERVICE)).problem?.code).toBe('SNAPSHOT_INVALID');
  });

  it('a file over the size cap (default 4 MiB) is SNAPSHOT_INVALID; the cap is an option', async () => {
    await writeFile(file(), fileBody({ blob: 'x'.repeat(5 * 1024 * 1024) }));
    const result = await new SnapshotStore(dir).read(SERVICE);
    expect(result.snapshot).toBeUndefined();
    expect(result.problem?.message).toMatch(/larger than 4194304 bytes/);

    await writeFile(file(), fileBody({ blob: 'x'.repeat(2_000) }));
    expect((await new SnapshotStore(dir).read(SERVICE)).snapshot?.config).toEqual({ blob: 'x'.repeat(2_000) });
    expect((await new SnapshotStore(dir, { maxBytes: 1_000 }).read(SERVICE)).problem?.code).toBe('SNAPSHOT_INVALID');
  });

  it('a snapshot nested 20 000 levels is SNAPSHOT_INVALID, not a RangeError; 64 levels of config are read', async () => {
    const deep = `{"format":1,"service":"${SERVICE}","config":${'{"n":'.repeat(20_000)}1${'}'.repeat(20_000)},"version":"1","updated_at":1,"saved_at":1}`;
    await writeFile(file(), deep);
    const result = await new SnapshotStore(dir).read(SERVICE);
    expect(result.snapshot).toBeUndefined();
    expect(result.problem?.code).toBe('SNAPSHOT_INVALID');
    expect(result.problem?.message).toMatch(/nested deeper than 64/);

    // The same depth hidden in a string-encoded config (as older hubs send it).
    await writeFile(file(), fileBody(`${'{"n":'.repeat(20_000)}1${'}'.repeat(20_000)}`));
    expect((await new SnapshotStore(dir).read(SERVICE)).problem?.message).toMatch(/nested deeper than 64/);

    let config: Record<string, unknown> = { leaf: 1 };
    for (let i = 1; i < 64; i++) config = { n: config };
    await writeFile(file(), fileBody(config));
    expect((await new SnapshotStore(dir).read(SERVICE)).snapshot?.config).toEqual(config);
  });

  it('read() gives up at its deadline when the file system is slow (the thread pool is saturated)', async () => {
    await writeFile(file(), fileBody({ a: 1 }));
    const store = new SnapshotStore(dir);
    // Every libuv pool thread busy for a while: the read's open() waits behind them, like a stalled disk.
    const busy = Array.from({ length: 8 }, () => new Promise((resolve) => pbkdf2('p', 's', 100_000, 32, 'sha512', resolve)));
    const started = performance.now();
    const result = await store.read(SERVICE, { timeoutMs: 20 });
    const elapsed = performance.now() - started;
    await Promise.all(busy);
    expect(result.problem?.message).toMatch(/not read within 20 ms/);
    expect(elapsed).toBeLessThan(150);
    expect((await store.read(SERVICE)).snapshot?.config).toEqual({ a: 1 });
  });

  it('read() ends when its signal aborts', async () => {
    await writeFile(file(), fileBody({ a: 1 }));
    const store = new SnapshotStore(dir);
    expect((await store.read(SERVICE, { signal: AbortSignal.abort() })).problem?.code).toBe('SNAPSHOT_INVALID');
    const controller = new AbortController();
    const reading = store.read(SERVICE, { signal: controller.signal });
    controller.abort(new Error('closing'));
    expect((await reading).problem?.code).toBe('SNAPSHOT_INVALID');
  });
});

describe('through the client', () => {
  it('a FIFO in place of the snapshot does not hold the first get() past startupTimeoutMs: defaults are served', async () => {
    mkfifo(join(dir, `${SERVICE}.json`));
    const agent = createMswAgent([http.get('http://hub.test/api/v1/config/:service', () => HttpResponse.error())]);
    const client = new ConfigClient({
      hubUrl: 'http://hub.test',
      snapshotDir: dir,
      pollIntervalMs: false,
      startupTimeoutMs: 300,
      transport: { dispatcher: agent, retryBaseDelayMs: 1, retryMaxDelayMs: 5 },
      services: { [SERVICE]: { defaults: { mode: 'safe' } } },
    });
    const errors: string[] = [];
    client.onError((e) => errors.push(e.code));
    try {
      const started = performance.now();
      const got = await Promise.race([client.get(SERVICE), new Promise((resolve) => setTimeout(() => resolve('hung'), 2_000))]);
      expect(got).toEqual({ mode: 'safe' });
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(errors).toContain('SNAPSHOT_INVALID');
    } finally {
      await client.close();
      await agent.close();
    }
  });
});
