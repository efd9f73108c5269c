/**
 * src/snapshot/file-store.ts at its edges, found by mutation testing (`npm run test:mutation`): the file it
 * writes (fields, modes, the directory it creates, no temp file left after a failure), what a read gives
 * back, every SNAPSHOT_INVALID reason with its exact message, the option checks, the per-read deadline
 * and signal, and writes superseded while they wait.
 */
import { pbkdf2 } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SNAPSHOT_MAX_BYTES, DEFAULT_SNAPSHOT_READ_TIMEOUT_MS, type Snapshot, SnapshotStore } from '../../src/snapshot/file-store.js';

const SERVICE = 'tick-aggregator';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chc-mut-snap-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = (service = SERVICE): string => join(dir, `${service}.json`);

function snapshot(extra: Partial<Omit<Snapshot, 'savedAt'>> = {}): Omit<Snapshot, 'savedAt'> {
  return { service: SERVICE, config: { a: { b: 1 } }, version: '1.2.3', updatedAt: 1_760_000_000_000, revision: 7, etag: '"r7"', ...extra };
}

function body(fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ format: 1, service: SERVICE, config: { a: 1 }, version: '1', updated_at: 5, saved_at: 6, ...fields });
}

/** The SNAPSHOT_INVALID message of a read that ignored the file. */
async function problem(store: SnapshotStore, service = SERVICE): Promise<string> {
  const result = await store.read(service);
  expect(result.snapshot).toBeUndefined();
  expect(result.problem?.code).toBe('SNAPSHOT_INVALID');
  expect(result.problem?.service).toBe(service);
  return result.problem?.message ?? '';
}

describe('options', () => {
  it.each(['maxBytes', 'readTimeoutMs'] as const)('%s must be a positive integer', (name) => {
    for (const value of [0, -1, 1.5, Number.NaN]) {
      expect(() => new SnapshotStore(dir, { [name]: value })).toThrow(new TypeError(`SnapshotStore: ${name} must be a positive integer`));
    }
    expect(() => new SnapshotStore(dir, { [name]: 1 })).not.toThrow();
  });

  it('defaults: 4 MiB and 1 s', () => {
    expect(DEFAULT_SNAPSHOT_MAX_BYTES).toBe(4 * 1024 * 1024);
    expect(DEFAULT_SNAPSHOT_READ_TIMEOUT_MS).toBe(1_000);
  });
});

describe('write', () => {
  it('writes every field under its file name, mode 0600, in a directory it creates with mode 0700', async () => {
    const nested = join(dir, 'a', 'b');
    const store = new SnapshotStore(nested);
    const before = Date.now();
    await store.write(snapshot({ droppedCriticalPaths: ['db.password'] }));
    const written = JSON.parse(await readFile(join(nested, `${SERVICE}.json`), 'utf8')) as Record<string, unknown>;
    expect(written).toEqual({
      format: 1,
      service: SERVICE,
      config: { a: { b: 1 } },
      version: '1.2.3',
      updated_at: 1_760_000_000_000,
      revision: 7,
      etag: '"r7"',
      saved_at: expect.any(Number),
      dropped_critical_paths: ['db.password'],
    });
    expect(written.saved_at).toBeGreaterThanOrEqual(before);
    expect(written.saved_at).toBeLessThanOrEqual(Date.now());
    expect((await stat(join(nested, `${SERVICE}.json`))).mode & 0o777).toBe(0o600);
    expect((await stat(nested)).mode & 0o777).toBe(0o700);
    expect(await readdir(nested)).toEqual([`${SERVICE}.json`]);
  });

  it('a failed write rejects and leaves no temp file behind', async () => {
    await mkdir(file());
    const store = new SnapshotStore(dir);
    await expect(store.write(snapshot())).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
    expect(await readdir(dir)).toEqual([`${SERVICE}.json`]);
  });

  it('an invalid service name is refused before anything is written or removed', async () => {
    const store = new SnapshotStore(dir);
    await expect(store.write(snapshot({ service: '../escape' }))).rejects.toThrow(/service name must match/);
    await expect(store.remove('../escape')).rejects.toThrow(/service name must match/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a write superseded while it waits is skipped: it resolves without running', async () => {
    const store = new SnapshotStore(dir);
    // This one cannot even be serialized; had it run, it would have rejected.
    const unserializable = store.write(snapshot({ config: { n: 1n } as unknown as Record<string, unknown> }));
    const newest = store.write(snapshot({ revision: 8 }));
    await expect(unserializable).resolves.toBeUndefined();
    await newest;
    expect((await store.read(SERVICE)).snapshot?.revision).toBe(8);
    // Alone, it does run and reject.
    await expect(store.write(snapshot({ config: { n: 1n } as unknown as Record<string, unknown> }))).rejects.toThrow(TypeError);
  });

  it('remove() of a missing snapshot is no error; idle() waits for it', async () => {
    const store = new SnapshotStore(dir);
    const removal = store.remove(SERVICE);
    await store.idle();
    await expect(removal).resolves.toBeUndefined();
  });
});

describe('read', () => {
  it('gives back what was written; savedAt from the file; droppedCriticalPaths only when the file has them', async () => {
    const store = new SnapshotStore(dir);
    await store.write(snapshot());
    const { snapshot: read, problem: p } = await store.read(SERVICE);
    expect(p).toBeUndefined();
    expect(read).toEqual({
      service: SERVICE,
      config: { a: { b: 1 } },
      version: '1.2.3',
      updatedAt: 1_760_000_000_000,
      revision: 7,
      etag: '"r7"',
      savedAt: expect.any(Number),
    });
    expect(read && 'droppedCriticalPaths' in read).toBe(false);
    await writeFile(file(), body({ dropped_critical_paths: ['x.y'], revision: undefined }));
    expect((await store.read(SERVICE)).snapshot).toEqual({
      service: SERVICE,
      config: { a: 1 },
      version: '1',
      updatedAt: 5,
      revision: undefined,
      etag: undefined,
      savedAt: 6,
      droppedCriticalPaths: ['x.y'],
    });
  });

  it('no file: no snapshot and no problem', async () => {
    expect(await new SnapshotStore(dir).read(SERVICE)).toStrictEqual({ snapshot: undefined });
    expect(await new SnapshotStore(join(dir, 'missing')).read(SERVICE)).toStrictEqual({ snapshot: undefined });
  });

  it('a config stored as a JSON string is read as its object, forbidden keys dropped', async () => {
    await writeFile(file(), body({ config: JSON.stringify({ ok: 1, __proto__x: 2 }) }));
    expect((await new SnapshotStore(dir).read(SERVICE)).snapshot?.config).toEqual({ ok: 1, __proto__x: 2 });
    await writeFile(file(), `{"format":1,"service":"${SERVICE}","config":{"ok":1,"__proto__":{"polluted":1},"constructor":2},"version":"1","updated_at":5,"saved_at":6}`);
    const config = (await new SnapshotStore(dir).read(SERVICE)).snapshot?.config as Record<string, unknown>;
    expect(Object.keys(config)).toEqual(['ok']);
    expect(Object.getPrototypeOf(config)).toBe(Object.prototype);
  });

  it('each reason a file is ignored, with its message', async () => {
    const store = new SnapshotStore(dir, { maxBytes: 1_000 });
    await writeFile(file(), '{"format":1,');
    expect(await problem(store)).toBe('snapshot is not valid JSON (truncated?); ignored');
    for (const fields of [{ format: 2 }, { revision: -1 }, { revision: 1.5 }, { etag: 5 }, { saved_at: 'x' }, { version: 1 }, { dropped_critical_paths: [1] }]) {
      await writeFile(file(), body(fields));
      expect(await problem(store)).toBe('snapshot has the wrong shape; ignored');
    }
    await writeFile(file(), body({ service: 'other-service' }));
    expect(await problem(store)).toBe('snapshot belongs to other-service; ignored');
    await writeFile(file(), body({ config: { blob: 'x'.repeat(1_000) } }));
    expect(await problem(store)).toBe('snapshot is larger than 1000 bytes; ignored');
    await writeFile(file(), 'x'.repeat(1_000));
    expect(await problem(store)).toBe('snapshot is not valid JSON (truncated?); ignored');
    await writeFile(file(), `${'['.repeat(66)}${']'.repeat(66)}`);
    expect(await problem(store)).toBe('snapshot is nested deeper than 64 levels; ignored');
    await rm(file());
    await mkdir(file());
    expect(await problem(store)).toBe('snapshot is not a regular file; ignored');
  });

  it('the depth limit: a config of 64 levels is read, 65 are not, as an object or as a JSON string', async () => {
    const nested = (levels: number): Record<string, unknown> => {
      let v: Record<string, unknown> = { leaf: 1 };
      for (let i = 1; i < levels; i++) v = { n: v };
      return v;
    };
    const store = new SnapshotStore(dir);
    await writeFile(file(), body({ config: nested(64) }));
    expect((await store.read(SERVICE)).snapshot?.config).toEqual(nested(64));
    await writeFile(file(), body({ config: nested(65) }));
    expect(await problem(store)).toBe('snapshot is nested deeper than 64 levels; ignored');
    await writeFile(file(), body({ config: JSON.stringify(nested(64)) }));
    expect((await store.read(SERVICE)).snapshot?.config).toEqual(nested(64));
    await writeFile(file(), body({ config: JSON.stringify(nested(65)) }));
    expect(await problem(store)).toBe('snapshot is nested deeper than 64 levels; ignored');
  });

  it('a file of exactly maxBytes is read; one byte more is not', async () => {
    const text = body();
    await writeFile(file(), text);
    expect((await new SnapshotStore(dir, { maxBytes: text.length }).read(SERVICE)).snapshot?.config).toEqual({ a: 1 });
    expect(await problem(new SnapshotStore(dir, { maxBytes: text.length - 1 }))).toBe(`snapshot is larger than ${text.length - 1} bytes; ignored`);
  });

  it('a large file is read whole, in more than one chunk when it has to be', async () => {
    const config = { blob: 'é'.repeat(200_000), tail: 'end' };
    await writeFile(file(), body({ config }));
    expect((await new SnapshotStore(dir).read(SERVICE)).snapshot?.config).toEqual(config);
  });

  it('a path that cannot be opened is unreadable, with the cause', async () => {
    const notADir = join(dir, 'plain-file');
    await writeFile(notADir, 'x');
    const result = await new SnapshotStore(notADir).read(SERVICE);
    expect(result.problem?.message).toBe('snapshot unreadable; ignored');
    expect(result.problem?.cause).toMatchObject({ code: 'ENOTDIR' });
  });

  it('a deadline of zero or less gives up at once, naming it; the signal’s reason is the cause of an abandoned read', async () => {
    await writeFile(file(), body());
    const store = new SnapshotStore(dir);
    // Every libuv pool thread busy: the read's open() waits behind them, so the deadline comes first.
    const busy = Array.from({ length: 8 }, () => new Promise((resolve) => pbkdf2('p', 's', 50_000, 32, 'sha512', resolve)));
    expect((await store.read(SERVICE, { timeoutMs: -5 })).problem?.message).toBe('snapshot not read within 0 ms; ignored');
    // Without a per-read deadline the store's readTimeoutMs applies.
    expect((await new SnapshotStore(dir, { readTimeoutMs: 2 }).read(SERVICE)).problem?.message).toBe('snapshot not read within 2 ms; ignored');
    await Promise.all(busy);
    const reason = new Error('client closing');
    const controller = new AbortController();
    controller.abort(reason);
    const abandoned = await store.read(SERVICE, { signal: controller.signal });
    expect(abandoned.problem?.message).toBe('snapshot read abandoned; ignored');
    expect(abandoned.problem?.cause).toBe(reason);
    const later = new AbortController();
    const reading = store.read(SERVICE, { signal: later.signal });
    later.abort(reason);
    expect(await reading).toEqual({ snapshot: undefined, problem: expect.objectContaining({ message: 'snapshot read abandoned; ignored', cause: reason }) });
  });

  it('every read closes its file, whatever it found', async () => {
    const openFiles = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
    const store = new SnapshotStore(dir, { maxBytes: 100 });
    await writeFile(file(), body());
    await store.read(SERVICE);
    const before = await openFiles();
    for (const text of [body(), '{"format":1,', body({ service: 'other-service' }), 'x'.repeat(200), body({ config: { x: 'y'.repeat(60) } })]) {
      await writeFile(file(), text);
      for (let i = 0; i < 5; i++) await store.read(SERVICE);
    }
    expect(await openFiles()).toBe(before);
  });

  it('a read that finishes leaves no abort listener behind', async () => {
    await writeFile(file(), body());
    const controller = new AbortController();
    const result = await new SnapshotStore(dir).read(SERVICE, { signal: controller.signal });
    expect(result.snapshot?.config).toEqual({ a: 1 });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
