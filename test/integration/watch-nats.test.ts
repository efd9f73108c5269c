/**
 * NatsWatcher against real nats-servers: the shared one on 4222 (never stopped here) for the message
 * path, and a private one on a spare port that this file kills and restarts for the resync path.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, Socket } from 'node:net';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigError } from '../../src/errors.js';
import type { Notice } from '../../src/hub/wire.js';
import { type NatsState, NatsWatcher, type NatsWatcherOptions } from '../../src/watch/nats-watcher.js';

const SHARED_NATS = 'nats://127.0.0.1:4222';
const NATS_SERVER_BIN = '/usr/sbin/nats-server';
const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

async function waitFor(cond: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Unique per test so that parallel runs on the shared server never see each other's notices. */
function uniqueNames(): { prefix: string; a: string; b: string } {
  const id = randomUUID().slice(0, 8);
  return { prefix: `t${id}.config.update`, a: `svc-a-${id}`, b: `svc-b-${id}` };
}

interface Recorder {
  notices: Array<{ service: string; notice: Notice }>;
  invalid: Array<{ service: string; error: ConfigError }>;
  resyncs: number;
  states: NatsState[];
  errorsLogged: number;
  options: Pick<NatsWatcherOptions, 'onNotice' | 'onInvalidNotice' | 'onResync' | 'onStateChange' | 'logger'>;
}

function recorder(): Recorder {
  const r: Recorder = {
    notices: [],
    invalid: [],
    resyncs: 0,
    states: [],
    errorsLogged: 0,
    options: {
      onNotice: (service, notice) => r.notices.push({ service, notice }),
      onInvalidNotice: (service, error) => r.invalid.push({ service, error }),
      onResync: () => {
        r.resyncs += 1;
      },
      onStateChange: (state) => r.states.push(state),
      logger: {
        error: () => {
          r.errorsLogged += 1;
        },
      },
    },
  };
  return r;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

describe('NatsWatcher on the shared nats-server', () => {
  let pub: NatsConnection;
  beforeAll(async () => {
    pub = await connect({ servers: SHARED_NATS });
  });
  afterAll(async () => {
    await pub?.close();
  });

  async function publish(subject: string, data: Uint8Array): Promise<void> {
    pub.publish(subject, data);
    await pub.flush();
  }

  async function started(
    services: string[],
    prefix: string,
    r: Recorder,
    extra: Partial<NatsWatcherOptions> = {},
  ): Promise<NatsWatcher> {
    const w = new NatsWatcher({ services, subjectPrefix: prefix, servers: SHARED_NATS, ...r.options, ...extra });
    cleanups.push(() => w.close());
    await w.start();
    expect(w.state).toBe('connected');
    return w;
  }

  it('delivers a valid notice and the original Python-format notice', async () => {
    const { prefix, a } = uniqueNames();
    const r = recorder();
    await started([a], prefix, r);
    await publish(
      `${prefix}.${a}`,
      enc({ service_name: a, config: { x: 1 }, version: '3', updated_at: Date.now(), updated_by: 'me', revision: 3 }),
    );
    await publish(
      `${prefix}.${a}`,
      enc({
        service_name: a,
        config: JSON.stringify({ batch_size: 100, nested: { k: 'v' } }),
        version: '1.0.0',
        updated_at: 1_700_000_000_000,
        updated_by: 'admin',
      }),
    );
    await waitFor(() => r.notices.length === 2, 5_000, 'two notices');
    expect(r.notices[0]?.notice.revision).toBe(3);
    expect(r.notices[1]?.notice).toMatchObject({
      service_name: a,
      version: '1.0.0',
      config: { batch_size: 100, nested: { k: 'v' } },
    });
    expect(r.notices[1]?.notice.revision).toBeUndefined();
    expect(r.invalid).toEqual([]);
    expect(r.resyncs).toBe(0); // a first connection made inside start() is not a resync
  });

  it('reports malformed, foreign and oversize payloads and keeps delivering', async () => {
    const { prefix, a, b } = uniqueNames();
    const r = recorder();
    await started([a], prefix, r, { maxNoticeBytes: 1024 });
    const subject = `${prefix}.${a}`;
    const bad: Uint8Array[] = [
      new Uint8Array([0xff, 0xfe, 0xfd]),
      enc('null'),
      enc('[]'),
      enc('{"service_name":'),
      enc({ service_name: b, config: {} }),
      enc({ service_name: a, config: { blob: 'x'.repeat(4096) } }),
      new Uint8Array(),
    ];
    for (const data of bad) await publish(subject, data);
    await publish(subject, enc({ service_name: a, revision: 1 }));
    await waitFor(() => r.notices.length === 1, 5_000, 'the valid notice after the bad ones');
    expect(r.invalid).toHaveLength(bad.length);
    for (const { service, error } of r.invalid) {
      expect(service).toBe(a);
      expect(error.code).toBe('NOTICE_INVALID');
    }
    expect(r.invalid[6 - 1]?.error.message).toMatch(/limit/);
  });

  it('subscribes to exact subjects only: other services and deeper subjects are never seen', async () => {
    const { prefix, a, b } = uniqueNames();
    const r = recorder();
    await started([a], prefix, r);
    await publish(`${prefix}.${b}`, enc({ service_name: b, revision: 1 }));
    await publish(`${prefix}.${a}.extra`, enc({ service_name: a, revision: 1 }));
    // Same publisher, same order: once this arrives, the two above would have too.
    await publish(`${prefix}.${a}`, enc({ service_name: a, revision: 2 }));
    await waitFor(() => r.notices.length >= 1);
    await new Promise((res) => setTimeout(res, 50));
    expect(r.notices).toHaveLength(1);
    expect(r.notices[0]?.notice.revision).toBe(2);
    expect(r.invalid).toEqual([]);
  });

  it('watches several services, each on its own subject', async () => {
    const { prefix, a, b } = uniqueNames();
    const r = recorder();
    await started([a, b, a], prefix, r);
    await publish(`${prefix}.${a}`, enc({ service_name: a, revision: 1 }));
    await publish(`${prefix}.${b}`, enc({ service_name: b, revision: 1 }));
    await waitFor(() => r.notices.length === 2);
    expect(r.notices.map((n) => n.service).sort()).toEqual([a, b].sort());
  });

  it('a throwing onNotice is caught and logged; the next notice still arrives', async () => {
    const { prefix, a } = uniqueNames();
    const r = recorder();
    let calls = 0;
    await started([a], prefix, r, {
      onNotice: () => {
        calls += 1;
        if (calls === 1) throw new Error('listener bug');
      },
    });
    await publish(`${prefix}.${a}`, enc({ service_name: a, revision: 1 }));
    await publish(`${prefix}.${a}`, enc({ service_name: a, revision: 2 }));
    await waitFor(() => calls === 2);
    expect(r.errorsLogged).toBe(1);
  });

  it('never closes a handed connection; close() unsubscribes and is idempotent', async () => {
    const { prefix, a } = uniqueNames();
    const r = recorder();
    const nc = await connect({ servers: SHARED_NATS });
    cleanups.push(() => nc.close());
    const w = new NatsWatcher({ services: [a], subjectPrefix: prefix, connection: nc, ...r.options });
    await w.start();
    expect(w.state).toBe('connected');
    await publish(`${prefix}.${a}`, enc({ service_name: a, revision: 1 }));
    await waitFor(() => r.notices.length === 1);

    const first = w.close();
    expect(w.close()).toBe(first);
    await first;
    await w.close();
    expect(w.state).toBe('closed');
    expect(nc.isClosed()).toBe(false);
    expect(nc.isDraining()).toBe(false);
    // The handed connection still works, and the watcher no longer listens on it.
    nc.publish(`${prefix}.${a}`, enc({ service_name: a, revision: 2 }));
    await nc.flush();
    await publish(`${prefix}.${a}`, enc({ service_name: a, revision: 3 }));
    await new Promise((res) => setTimeout(res, 50));
    expect(r.notices).toHaveLength(1);
    await expect(w.start()).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
  });

  it('closes the connection it opened; close() is idempotent and reports closed', async () => {
    const { prefix, a } = uniqueNames();
    const r = recorder();
    const w = await started([a], prefix, r);
    await Promise.all([w.close(), w.close()]);
    await w.close();
    expect(w.state).toBe('closed');
    expect(r.states).toEqual(['connecting', 'connected', 'closed']);
    await publish(`${prefix}.${a}`, enc({ service_name: a, revision: 1 }));
    await new Promise((res) => setTimeout(res, 50));
    expect(r.notices).toEqual([]);
  });

  it('a 20 000-level notice is reported once and breaks nothing: later notices and the handed connection keep flowing (issue 9 #6)', async () => {
    const { prefix, a } = uniqueNames();
    const r = recorder();
    const warnings: string[] = [];
    const nc = await connect({ servers: SHARED_NATS });
    cleanups.push(() => nc.close());
    // The application's own subscription on the connection it hands to the client.
    const appSubject = `${prefix}.app-own`;
    const appMessages: string[] = [];
    nc.subscribe(appSubject, { callback: (_error, message) => appMessages.push(message.string()) });
    const w = new NatsWatcher({
      services: [a],
      subjectPrefix: prefix,
      connection: nc,
      ...r.options,
      logger: { ...r.options.logger, warn: (_obj, msg) => warnings.push(msg ?? '') },
    });
    cleanups.push(() => w.close());
    await w.start();

    const deep = `{"service_name":"${a}","config":{"a":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_001)}}`;
    expect(deep.length).toBeGreaterThan(117_000);
    await publish(`${prefix}.${a}`, enc(deep));
    await publish(appSubject, enc('after the deep notice'));
    await publish(`${prefix}.${a}`, enc({ service_name: a, revision: 2 }));

    await waitFor(() => r.notices.length === 1 && appMessages.length === 1, 5_000, 'the valid notice and the app message');
    expect(r.notices[0]?.notice.revision).toBe(2);
    expect(r.invalid).toHaveLength(1);
    expect(r.invalid[0]?.error.code).toBe('NOTICE_INVALID');
    expect(r.invalid[0]?.error.message).toMatch(/nested deeper than 64/);
    expect(warnings).toEqual(['dropped invalid NATS notice']);
    expect(appMessages).toEqual(['after the deep notice']);
    expect(w.state).toBe('connected');
    expect(nc.isClosed()).toBe(false);
    // Still alive a round later, for both subscriptions.
    await publish(appSubject, enc('again'));
    await publish(`${prefix}.${a}`, enc({ service_name: a, revision: 3 }));
    await waitFor(() => r.notices.length === 2 && appMessages.length === 2, 5_000, 'second round');
  });

  it('rejects programmer errors in the constructor', () => {
    const r = recorder();
    const base = { ...r.options, servers: SHARED_NATS };
    expect(() => new NatsWatcher({ ...base, services: [] })).toThrow(/at least one/);
    expect(() => new NatsWatcher({ ...base, services: ['Bad Name'] })).toThrow(/invalid service/);
    expect(() => new NatsWatcher({ ...base, services: ['a'], subjectPrefix: 'config.*' })).toThrow(/prefix/);
    expect(() => new NatsWatcher({ ...base, services: ['a'], subjectPrefix: 'config.>' })).toThrow(/prefix/);
    expect(() => new NatsWatcher({ ...r.options, services: ['a'] })).toThrow(/exactly one/);
  });
});

describe('NatsWatcher against a private nats-server that is killed and restarted', () => {
  let port = 0;
  let server: ChildProcess | undefined;

  async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const address = s.address();
        const p = typeof address === 'object' && address ? address.port : 0;
        s.close(() => resolve(p));
      });
    });
  }

  async function accepts(p: number): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.connect(p, '127.0.0.1');
    });
  }

  async function startServer(): Promise<void> {
    const child = spawn(NATS_SERVER_BIN, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    server = child;
    const deadline = Date.now() + 5_000;
    while (!(await accepts(port))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error('nats-server did not start');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function killServer(): Promise<void> {
    const child = server;
    server = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async function publishOnce(notice: unknown, subject: string): Promise<void> {
    const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
    nc.publish(subject, enc(notice));
    await nc.flush();
    await nc.close();
  }

  beforeAll(async () => {
    port = await freePort();
  });
  afterAll(async () => {
    await killServer();
  });

  it('keeps trying when the first connect fails, then resyncs after every reconnect', async () => {
    const { prefix, a } = uniqueNames();
    const subject = `${prefix}.${a}`;
    const r = recorder();
    const w = new NatsWatcher({
      services: [a],
      subjectPrefix: prefix,
      servers: `nats://127.0.0.1:${port}`,
      connectOptions: { reconnectTimeWait: 100, reconnectJitter: 50, pingInterval: 1_000, timeout: 1_000 },
      ...r.options,
    });
    cleanups.push(() => w.close());

    // No server yet: start() returns instead of hanging, and the watcher keeps trying.
    await w.start();
    expect(w.state).toBe('connecting');
    await new Promise((res) => setTimeout(res, 300));
    expect(w.state).toBe('connecting');

    await startServer();
    await waitFor(() => w.state === 'connected', 5_000, 'late first connect');
    // Notices published while we were not connected are lost: the late connection asks for a resync.
    await waitFor(() => r.resyncs === 1, 2_000, 'resync after late first connect');
    await publishOnce({ service_name: a, revision: 1 }, subject);
    await waitFor(() => r.notices.length === 1, 5_000, 'notice before the kill');

    await killServer();
    await waitFor(() => w.state === 'reconnecting', 5_000, 'reconnecting state');
    const killedAt = Date.now();
    await startServer();
    await waitFor(() => r.resyncs === 2, 10_000, 'resync after restart');
    const resyncMs = Date.now() - killedAt;
    expect(w.state).toBe('connected');
    expect(resyncMs).toBeLessThan(10_000);

    // The subscription was restored on the new server: notices flow again.
    await publishOnce({ service_name: a, revision: 2 }, subject);
    await waitFor(() => r.notices.length === 2, 5_000, 'notice after the restart');
    expect(r.notices[1]?.notice.revision).toBe(2);
    expect(r.states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);

    await w.close();
    expect(w.state).toBe('closed');
  });

  it('close() while the first connect keeps failing stops the retries', async () => {
    await killServer();
    const { prefix, a } = uniqueNames();
    const r = recorder();
    const w = new NatsWatcher({
      services: [a],
      subjectPrefix: prefix,
      servers: `nats://127.0.0.1:${port}`,
      connectOptions: { reconnectTimeWait: 50, reconnectJitter: 10 },
      ...r.options,
    });
    await w.start();
    expect(w.state).toBe('connecting');
    await w.close();
    expect(w.state).toBe('closed');
    // A server appearing later must not revive a closed watcher.
    await startServer();
    await new Promise((res) => setTimeout(res, 300));
    expect(w.state).toBe('closed');
    expect(r.resyncs).toBe(0);
    expect(r.states).toEqual(['connecting', 'closed']);
  });
});
