/**
 * src/watch/nats-watcher.ts against real nats-servers, found by mutation testing (`npm run test:mutation`):
 * the constructor's checks, subscriptions and what each message becomes, the state machine and the resync
 * after a late first connect or a reconnect, close() for owned and handed connections, and the log lines.
 *
 * NATS is never faked: the shared nats-server at 127.0.0.1:4222 carries the traffic, reached directly or
 * through a TCP proxy (test/helpers/lab/tcp-proxy.ts) that can drop, reset or refuse connections; the
 * credential and permission cases use one private nats-server with a users block. Timings are short
 * (reconnect waits of 10–100 ms) because Stryker reruns the covering tests for every mutant.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ConfigError } from '../../src/errors.js';
import { signNotice } from '../../src/hub/notice-signature.js';
import type { Notice } from '../../src/hub/wire.js';
import type { Logger } from '../../src/logger.js';
import { type NatsState, NatsWatcher, type NatsWatcherOptions } from '../../src/watch/nats-watcher.js';
import { NATS_SERVER_BIN, type NatsServerHandle, startNatsServer } from '../helpers/lab/nats-server.js';
import { freePort, waitForPort } from '../helpers/lab/ports.js';
import { startTcpProxy, type TcpProxy } from '../helpers/lab/tcp-proxy.js';
import { bounded, sleep, waitFor } from '../helpers/settle.js';

const SHARED_NATS = 'nats://127.0.0.1:4222';
const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
/** Unique per test: the shared server is shared with parallel test files. */
function names(): { prefix: string; a: string; b: string } {
  const id = randomUUID().slice(0, 8);
  return { prefix: `m${id}.config.update`, a: `svc-a-${id}`, b: `svc-b-${id}` };
}

interface LogEntry {
  level: keyof Logger;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

interface Recorder {
  notices: Array<{ service: string; notice: Notice; verified: boolean }>;
  invalid: Array<{ service: string; error: ConfigError }>;
  /** Notices and invalid reports, in the order they were made. */
  calls: string[];
  resyncs: number;
  states: NatsState[];
  logs: LogEntry[];
  /** The log lines of one level, as `msg`. */
  messages(level: keyof Logger): Array<string | undefined>;
  options: Pick<NatsWatcherOptions, 'onNotice' | 'onInvalidNotice' | 'onResync' | 'onStateChange' | 'logger'>;
}

function recorder(): Recorder {
  const log =
    (level: keyof Logger) =>
    (obj: object, msg?: string): void => {
      r.logs.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  const r: Recorder = {
    notices: [],
    invalid: [],
    calls: [],
    resyncs: 0,
    states: [],
    logs: [],
    messages: (level) => r.logs.filter((l) => l.level === level).map((l) => l.msg),
    options: {
      onNotice: (service, notice, verified) => {
        r.notices.push({ service, notice, verified });
        r.calls.push(`notice ${service}`);
      },
      onInvalidNotice: (service, error) => {
        r.invalid.push({ service, error });
        r.calls.push(`invalid ${service} ${error.code}`);
      },
      onResync: () => {
        r.resyncs += 1;
      },
      onStateChange: (state) => r.states.push(state),
      logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    },
  };
  return r;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

function watcher(options: Partial<NatsWatcherOptions> & Pick<NatsWatcherOptions, 'services'>, r: Recorder): NatsWatcher {
  const w = new NatsWatcher({
    ...r.options,
    ...(options.connection === undefined && options.servers === undefined ? { servers: SHARED_NATS } : {}),
    ...options,
  } as NatsWatcherOptions);
  cleanups.push(() => w.close());
  return w;
}

async function proxy(): Promise<TcpProxy> {
  const p = await startTcpProxy({ target: { port: 4222 } });
  cleanups.push(() => p.close());
  return p;
}

async function handedConnection(servers = SHARED_NATS): Promise<NatsConnection> {
  const nc = await connect({ servers });
  cleanups.push(() => nc.close());
  return nc;
}

let pub: NatsConnection;
beforeAll(async () => {
  pub = await connect({ servers: SHARED_NATS });
});
afterAll(async () => {
  await pub?.close();
});

async function publish(subject: string, data: unknown): Promise<void> {
  pub.publish(subject, data instanceof Uint8Array ? data : enc(data));
  await pub.flush();
}

/** Publishes `data` every 20 ms until `done()` (a subscription being re-established elsewhere). */
async function publishUntil(done: () => boolean, subject: string, data: unknown): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`nothing arrived on ${subject}`);
    await publish(subject, data);
    await sleep(20);
  }
}

describe('the constructor refuses programmer errors with INVALID_OPTIONS', () => {
  const r = recorder();
  const make = (options: Partial<NatsWatcherOptions>) => () =>
    new NatsWatcher({ ...r.options, services: ['svc-a'], servers: SHARED_NATS, ...options } as NatsWatcherOptions);

  it('services must be a non-empty array of valid service names', () => {
    const none = { code: 'INVALID_OPTIONS', message: 'NatsWatcher needs at least one service' };
    expect(make({ services: [] })).toThrow(expect.objectContaining(none));
    // A string has a length, and each of its letters is a valid name: refused as not an array.
    expect(make({ services: 'svc' as unknown as string[] })).toThrow(expect.objectContaining(none));
    expect(make({ services: ['svc-a', 'Bad Name'] })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'invalid service name for NATS: "Bad Name"' }),
    );
    expect(make({ services: ['svc-a', 'svc-b'] })).not.toThrow();
  });

  it.each(['', 'a b', 'a\tb', 'config.*', 'config.>', '>', '.config', 'config.'])('refuses the subject prefix %j', (prefix) => {
    expect(make({ subjectPrefix: prefix })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: `invalid NATS subject prefix: ${JSON.stringify(prefix)}` }),
    );
  });

  it.each(['a', 'config.update', 'my_app-1.config'])('accepts the plain subject prefix %j', (prefix) => {
    expect(make({ subjectPrefix: prefix })).not.toThrow();
  });

  it('needs exactly one of servers (non-empty) or connection', async () => {
    const nc = await handedConnection();
    const one = { code: 'INVALID_OPTIONS', message: 'NatsWatcher needs exactly one of `servers` or `connection`' };
    expect(make({ servers: undefined })).toThrow(expect.objectContaining(one));
    expect(make({ servers: '' })).toThrow(expect.objectContaining(one));
    expect(make({ servers: [] })).toThrow(expect.objectContaining(one));
    expect(make({ connection: nc })).toThrow(expect.objectContaining(one));
    expect(make({ servers: undefined, connection: nc })).not.toThrow();
    expect(make({ servers: [SHARED_NATS] })).not.toThrow();
  });

  it.each([0, -1, 1.5, Number.NaN])('maxNoticeBytes %d is refused; 1 is the smallest accepted', (maxNoticeBytes) => {
    expect(make({ maxNoticeBytes })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: 'maxNoticeBytes must be a positive integer' }),
    );
    expect(make({ maxNoticeBytes: 1 })).not.toThrow();
  });

  it('verifyKeys are checked up front; without them nothing is', () => {
    expect(make({ verifyKeys: {} })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringMatching(/empty/) }));
    expect(make({ verifyKeys: { 'k 1': 'x' } })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    expect(make({ verifyKeys: undefined })).not.toThrow();
  });

  it('a new watcher is off and does no I/O; start() after close() rejects with CLIENT_CLOSED', async () => {
    const w = new NatsWatcher({ ...r.options, services: ['svc-a'], servers: 'nats://127.0.0.1:1' });
    expect(w.state).toBe('off');
    await bounded(w.close(), 'close()');
    expect(w.state).toBe('closed');
    await expect(w.start()).rejects.toMatchObject({ code: 'CLIENT_CLOSED', message: 'NatsWatcher is closed' });
  });
});

describe('a connection the watcher opens (shared nats-server)', () => {
  it('start() connects and subscribes before it resolves; a second start() returns the same promise', async () => {
    const { prefix, a, b } = names();
    const r = recorder();
    const w = watcher({ services: [a, b, a], subjectPrefix: prefix }, r);
    const started = w.start();
    expect(w.start()).toBe(started);
    expect(w.state).toBe('connecting');
    await started;
    expect(w.state).toBe('connected');
    expect(r.states).toEqual(['connecting', 'connected']);
    // Published the moment start() resolved: the subscriptions are already known to the server.
    await publish(`${prefix}.${a}`, { service_name: a, revision: 1 });
    await publish(`${prefix}.${b}`, { service_name: b, revision: 1 });
    await publish(`${prefix}.${a}`, { service_name: a, revision: 2 });
    await waitFor(() => r.notices.length >= 3, 'three notices');
    await sleep(20);
    // A service listed twice is subscribed once.
    expect(r.notices.map((n) => [n.service, n.notice.revision, n.verified])).toEqual([
      [a, 1, false],
      [b, 1, false],
      [a, 2, false],
    ]);
    expect(r.invalid).toEqual([]);
    // A first connection made inside start() is no resync.
    expect(r.resyncs).toBe(0);
  });

  it('the default subject prefix is config.update', async () => {
    const { a } = names();
    const r = recorder();
    const w = watcher({ services: [a] }, r);
    await bounded(w.start(), 'start()');
    await publish(`config.update.${a}`, { service_name: a, revision: 4 });
    await waitFor(() => r.notices.length === 1, 'the notice on config.update');
    expect(r.notices[0]?.notice.revision).toBe(4);
  });

  it('an invalid payload is reported (NOTICE_INVALID) and logged, then dropped; the limit is maxNoticeBytes', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const w = watcher({ services: [a], subjectPrefix: prefix, maxNoticeBytes: 64 }, r);
    await bounded(w.start(), 'start()');
    await publish(`${prefix}.${a}`, '{"service_name":');
    await publish(`${prefix}.${a}`, { service_name: a, config: { pad: 'x'.repeat(64) } });
    await publish(`${prefix}.${a}`, { service_name: a, revision: 9 });
    await waitFor(() => r.notices.length === 1, 'the valid notice');
    expect(r.invalid.map((i) => [i.service, i.error.code])).toEqual([
      [a, 'NOTICE_INVALID'],
      [a, 'NOTICE_INVALID'],
    ]);
    expect(r.invalid[1]?.error.message).toMatch(/above the 64-byte limit/);
    const dropped = r.logs.filter((l) => l.msg === 'dropped invalid NATS notice');
    expect(dropped).toHaveLength(2);
    expect(dropped[0]).toEqual({ level: 'warn', obj: { component: 'nats', service: a, err: r.invalid[0]?.error }, msg: 'dropped invalid NATS notice' });
  });

  it('with verifyKeys: a signed notice is verified; an unsigned one is reported NOTICE_UNVERIFIED, then delivered as a hint', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const w = watcher({ services: [a], subjectPrefix: prefix, verifyKeys: { k1: publicKey } }, r);
    await bounded(w.start(), 'start()');
    await publish(`${prefix}.${a}`, signNotice({ service_name: a, revision: 1 }, privateKey, 'k1'));
    await publish(`${prefix}.${a}`, { service_name: a, revision: 2 });
    await waitFor(() => r.notices.length === 2, 'two notices');
    expect(r.notices.map((n) => [n.notice.revision, n.verified])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(r.calls).toEqual([`notice ${a}`, `invalid ${a} NOTICE_UNVERIFIED`, `notice ${a}`]);
    expect(r.invalid[0]?.error.message).toMatch(/is not signed/);
    expect(r.logs).toContainEqual({
      level: 'warn',
      obj: { component: 'nats', service: a, err: r.invalid[0]?.error },
      msg: 'unverified NATS notice: treated as a hint',
    });
  });

  it('a throwing onInvalidNotice for an unverified notice is caught and logged; the notice is still delivered', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const w = watcher(
      {
        services: [a],
        subjectPrefix: prefix,
        verifyKeys: { k1: generateKeyPairSync('ed25519').publicKey },
        onInvalidNotice: () => {
          throw new Error('report bug');
        },
      },
      r,
    );
    await bounded(w.start(), 'start()');
    await publish(`${prefix}.${a}`, { service_name: a, revision: 1 });
    await waitFor(() => r.notices.length === 1, 'the unverified notice');
    expect(r.notices[0]?.verified).toBe(false);
    expect(r.logs).toContainEqual({
      level: 'error',
      obj: { component: 'nats', callback: 'onInvalidNotice', err: expect.objectContaining({ message: 'report bug' }) },
      msg: 'NatsWatcher callback threw',
    });
  });

  it('a throwing callback is caught and logged with its name; the watcher goes on', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const boom = (what: string) => () => {
      throw new Error(what);
    };
    const p = await proxy();
    const w = watcher(
      {
        services: [a],
        subjectPrefix: prefix,
        servers: p.url('nats'),
        connectOptions: { reconnectTimeWait: 10, reconnectJitter: 0 },
        onNotice: (service, notice, verified) => {
          r.options.onNotice(service, notice, verified);
          throw new Error('onNotice bug');
        },
        onInvalidNotice: boom('onInvalidNotice bug'),
        onStateChange: (state) => {
          r.states.push(state);
          throw new Error('onStateChange bug');
        },
        onResync: boom('onResync bug'),
      },
      r,
    );
    await bounded(w.start(), 'start()');
    await publish(`${prefix}.${a}`, 'not json');
    await publish(`${prefix}.${a}`, { service_name: a, revision: 1 });
    await publish(`${prefix}.${a}`, { service_name: a, revision: 2 });
    await waitFor(() => r.notices.length === 2, 'both notices despite the throwing listener');
    p.dropConnections();
    await waitFor(() => r.logs.some((l) => l.obj.callback === 'onResync'), 'the resync after the reconnect');
    const threw = r.logs.filter((l) => l.msg === 'NatsWatcher callback threw');
    expect(threw.every((l) => l.level === 'error' && l.obj.component === 'nats' && l.obj.err instanceof Error)).toBe(true);
    expect(new Set(threw.map((l) => l.obj.callback))).toEqual(new Set(['onStateChange', 'onInvalidNotice', 'onNotice', 'onResync']));
    expect(threw.find((l) => l.obj.callback === 'onNotice')?.obj.err).toMatchObject({ message: 'onNotice bug' });
    await waitFor(() => w.state === 'connected', 'connected again');
  });

  it('without onStateChange the state still changes, and nothing is logged as a failed callback', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const w = watcher({ services: [a], subjectPrefix: prefix, onStateChange: undefined }, r);
    await bounded(w.start(), 'start()');
    expect(w.state).toBe('connected');
    await bounded(w.close(), 'close()');
    expect(w.state).toBe('closed');
    expect(r.states).toEqual([]);
    expect(r.messages('error')).toEqual([]);
  });

  it('close() drains and closes the connection it opened: no more notices, state closed, idempotent', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const p = await proxy();
    const w = watcher({ services: [a], subjectPrefix: prefix, servers: p.url('nats') }, r);
    await bounded(w.start(), 'start()');
    expect(p.connections).toBe(1);
    const closing = w.close();
    expect(w.close()).toBe(closing);
    await closing;
    expect(w.state).toBe('closed');
    expect(r.states).toEqual(['connecting', 'connected', 'closed']);
    await waitFor(() => p.connections === 0, 'the owned connection closed');
    await publish(`${prefix}.${a}`, { service_name: a, revision: 1 });
    await sleep(30);
    expect(r.notices).toEqual([]);
    await expect(w.start()).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(r.messages('error')).toEqual([]);
  });

  it('Symbol.asyncDispose closes the watcher', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const p = await proxy();
    const w = watcher({ services: [a], subjectPrefix: prefix, servers: p.url('nats') }, r);
    await bounded(w.start(), 'start()');
    await w[Symbol.asyncDispose]();
    expect(w.state).toBe('closed');
    await waitFor(() => p.connections === 0, 'the owned connection closed');
  });

  it('close() right after start() closes the connection still being dialled and never reports connected', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const p = await proxy();
    p.delay(30);
    const w = watcher({ services: [a], subjectPrefix: prefix, servers: p.url('nats') }, r);
    const started = w.start();
    await bounded(w.close(), 'close()');
    expect(w.state).toBe('closed');
    await started;
    expect(p.totalConnections).toBe(1);
    await waitFor(() => p.connections === 0, 'the dialled connection closed');
    expect(w.state).toBe('closed');
    expect(r.states).toEqual(['connecting', 'closed']);
    expect(r.resyncs).toBe(0);
  });

  it('status events it does not act on are logged at debug with their type (the ping timer)', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const w = watcher({ services: [a], subjectPrefix: prefix, connectOptions: { pingInterval: 10 } }, r);
    await bounded(w.start(), 'start()');
    await waitFor(() => r.logs.some((l) => l.msg === 'NATS status'), 'a ping timer status');
    expect(r.logs).toContainEqual({ level: 'debug', obj: { component: 'nats', type: 'pingTimer' }, msg: 'NATS status' });
    expect(w.state).toBe('connected');
  });
});

describe('first connect failing, reconnects and resyncs (through a TCP proxy to the shared server)', () => {
  it('start() resolves after a failed first attempt, state connecting; retries every reconnectTimeWait + jitter; a late connect resyncs once', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const p = await proxy();
    await p.break('reset');
    const attempts: number[] = [];
    const counting = setInterval(() => {
      while (attempts.length < p.totalConnections) attempts.push(Date.now());
    }, 1);
    cleanups.push(async () => clearInterval(counting));
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const w = watcher(
      { services: [a], subjectPrefix: prefix, servers: p.url('nats'), connectOptions: { reconnectTimeWait: 40, reconnectJitter: 60 } },
      r,
    );
    const t0 = Date.now();
    await bounded(w.start(), 'start()');
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(w.state).toBe('connecting');
    expect(r.messages('warn')).toEqual(['NATS connect failed; retrying in the background']);
    expect(r.logs[0]?.obj).toMatchObject({ component: 'nats', err: expect.anything() });
    await waitFor(() => attempts.length >= 4, 'three retries');
    // 40 + 0.5 · 60 = 70 ms between attempts: not 40 − 30, not 40 + 0.5 / 60, not the defaults' 40 + 0.5 · 500
    // or 1 000 + 0.5 · 60 (the median, so that one late timer on a loaded machine does not decide it).
    const gaps = attempts.slice(1, 4).map((at, i) => at - (attempts[i] ?? 0));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(65);
    expect([...gaps].sort((x, y) => x - y)[1]).toBeLessThan(200);
    expect(w.state).toBe('connecting');
    expect(r.resyncs).toBe(0);
    await p.restore();
    await waitFor(() => w.state === 'connected', 'the late first connect');
    await waitFor(() => r.resyncs === 1, 'the resync after the late first connect');
    expect(r.logs).toContainEqual({ level: 'info', obj: { component: 'nats' }, msg: 'NATS (re)connected: resync' });
    await publish(`${prefix}.${a}`, { service_name: a, revision: 1 });
    await waitFor(() => r.notices.length === 1, 'a notice after the late connect');
    await sleep(30);
    expect(r.resyncs).toBe(1);
    expect(r.states).toEqual(['connecting', 'connected']);
  });

  it('close() while the first connect fails stops the retries', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const p = await proxy();
    await p.break('reset');
    const w = watcher(
      { services: [a], subjectPrefix: prefix, servers: p.url('nats'), connectOptions: { reconnectTimeWait: 10, reconnectJitter: 0 } },
      r,
    );
    const started = w.start();
    const closed = w.close();
    await Promise.all([started, closed]);
    const attempts = p.totalConnections;
    await p.restore();
    await sleep(60);
    expect(p.totalConnections).toBe(attempts);
    expect(w.state).toBe('closed');
    expect(r.states).toEqual(['connecting', 'closed']);
  });

  it('close() while a retry is waiting cancels it', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const p = await proxy();
    await p.break('reset');
    const w = watcher(
      { services: [a], subjectPrefix: prefix, servers: p.url('nats'), connectOptions: { reconnectTimeWait: 60, reconnectJitter: 0 } },
      r,
    );
    await bounded(w.start(), 'start()');
    const attempts = p.totalConnections;
    await bounded(w.close(), 'close()');
    await p.restore();
    await sleep(120);
    expect(p.totalConnections).toBe(attempts);
    expect(w.state).toBe('closed');
    expect(r.resyncs).toBe(0);
  });

  it('close() while a retry is dialling closes that connection and does not resync', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const p = await proxy();
    await p.break('reset');
    const w = watcher(
      { services: [a], subjectPrefix: prefix, servers: p.url('nats'), connectOptions: { reconnectTimeWait: 10, reconnectJitter: 0 } },
      r,
    );
    await bounded(w.start(), 'start()');
    p.delay(40);
    await p.restore();
    await waitFor(() => p.connections === 1, 'a retry dialling through the slow proxy');
    await bounded(w.close(), 'close()');
    await waitFor(() => p.connections === 0, 'the dialled connection closed');
    await sleep(30);
    expect(r.resyncs).toBe(0);
    expect(w.state).toBe('closed');
    expect(r.states).toEqual(['connecting', 'closed']);
  });

  it('a dropped connection: reconnecting at once, connected and a resync after every reconnect, subscriptions restored', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const p = await proxy();
    const w = watcher(
      { services: [a], subjectPrefix: prefix, servers: p.url('nats'), connectOptions: { reconnectTimeWait: 300, reconnectJitter: 0 } },
      r,
    );
    await bounded(w.start(), 'start()');
    // Within reconnectTimeWait of the last connect nats waits before it redials: only the `disconnect`
    // event can report `reconnecting` this early.
    const droppedAt = Date.now();
    p.dropConnections();
    await waitFor(() => w.state === 'reconnecting', 'reconnecting', 2_000);
    expect(Date.now() - droppedAt).toBeLessThan(200);
    await waitFor(() => r.resyncs === 1, 'the resync after the reconnect');
    expect(w.state).toBe('connected');
    // nats.js resends the SUB on reconnect without waiting for the server: publish until it is in place.
    await publishUntil(() => r.notices.length > 0, `${prefix}.${a}`, { service_name: a, revision: 1 });
    expect(r.states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    expect(r.logs).toContainEqual({ level: 'info', obj: { component: 'nats' }, msg: 'NATS (re)connected: resync' });
  });

  it('reconnects never give up: many refused attempts, then the server is back', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const p = await proxy();
    const w = watcher(
      { services: [a], subjectPrefix: prefix, servers: p.url('nats'), connectOptions: { reconnectTimeWait: 10, reconnectJitter: 0 } },
      r,
    );
    await bounded(w.start(), 'start()');
    const before = p.totalConnections;
    await p.break('reset');
    await waitFor(() => w.state === 'reconnecting', 'reconnecting');
    // nats' default gives up after 10 attempts.
    await waitFor(() => p.totalConnections >= before + 12, 'twelve failed reconnect attempts');
    expect(w.state).toBe('reconnecting');
    await p.restore();
    await waitFor(() => r.resyncs === 1, 'the resync once the server is back');
    expect(w.state).toBe('connected');
    expect(r.states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
  });
});

describe('a connection handed to the watcher (shared nats-server)', () => {
  it('is adopted as it is (no connecting state) and never closed or drained; close() unsubscribes', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const nc = await handedConnection();
    const w = watcher({ services: [a], subjectPrefix: prefix, connection: nc }, r);
    await bounded(w.start(), 'start()');
    expect(r.states).toEqual(['connected']);
    await publish(`${prefix}.${a}`, { service_name: a, revision: 1 });
    await waitFor(() => r.notices.length === 1, 'a notice on the handed connection');
    await bounded(w.close(), 'close()');
    expect(w.state).toBe('closed');
    expect(r.states).toEqual(['connected', 'closed']);
    expect(r.messages('warn')).toEqual([]);
    expect(nc.isClosed()).toBe(false);
    expect(nc.isDraining()).toBe(false);
    // The application's own traffic on it still flows; the watcher no longer listens.
    const own: string[] = [];
    nc.subscribe(`${prefix}.own`, { callback: (_e, m) => own.push(m.string()) });
    await nc.flush();
    await publish(`${prefix}.${a}`, { service_name: a, revision: 2 });
    await publish(`${prefix}.own`, 'still here');
    await waitFor(() => own.length === 1, 'the app message');
    expect(r.notices).toHaveLength(1);
  });

  it('a handed connection that is already closed: start() resolves, state closed, a warning', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const nc = await connect({ servers: SHARED_NATS });
    await nc.close();
    const w = watcher({ services: [a], subjectPrefix: prefix, connection: nc }, r);
    await bounded(w.start(), 'start()');
    expect(w.state).toBe('closed');
    expect(r.states).toEqual(['closed']);
    expect(r.logs).toEqual([{ level: 'warn', obj: { component: 'nats' }, msg: 'handed NATS connection is already closed' }]);
  });

  it('the application closing the handed connection makes the watcher closed, without an error', async () => {
    const { prefix, a } = names();
    const r = recorder();
    const nc = await connect({ servers: SHARED_NATS });
    const w = watcher({ services: [a], subjectPrefix: prefix, connection: nc }, r);
    await bounded(w.start(), 'start()');
    await nc.close();
    await waitFor(() => w.state === 'closed', 'closed');
    expect(r.states).toEqual(['connected', 'closed']);
    expect(r.messages('error')).toEqual([]);
    // Closing the watcher afterwards has nothing left to unsubscribe.
    await bounded(w.close(), 'close()');
    expect(r.logs).toEqual([]);
  });

  it('a handed connection that is draining: each refused subscribe is logged, start() still resolves', async () => {
    const { prefix, a, b } = names();
    const r = recorder();
    const nc = await connect({ servers: SHARED_NATS });
    const drained = nc.drain();
    const w = watcher({ services: [a, b], subjectPrefix: prefix, connection: nc }, r);
    await bounded(w.start(), 'start()');
    await drained;
    const failed = r.logs.filter((l) => l.msg === 'NATS subscribe failed');
    expect(failed.map((l) => [l.level, l.obj.component, l.obj.subject])).toEqual([
      ['error', 'nats', `${prefix}.${a}`],
      ['error', 'nats', `${prefix}.${b}`],
    ]);
    expect(failed[0]?.obj.err).toMatchObject({ code: 'CONNECTION_DRAINING' });
    await waitFor(() => w.state === 'closed', 'closed once drained');
  });
});

describe('a nats-server with users and permissions (private)', () => {
  const DENIED = 'perm.config.update.svc-denied';
  let server: NatsServerHandle;
  beforeAll(async () => {
    server = await startNatsServer({
      config: `authorization {
        users = [
          { user: "watcher", password: "secret", permissions: { subscribe: { allow: [">"], deny: ["${DENIED}"] } } }
          { user: "publisher", password: "secret" }
        ]
      }`,
    });
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('identifies itself to the server as @central-hub/config', async () => {
    const r = recorder();
    const w = watcher({ services: ['svc-name'], servers: server.url, connectOptions: { user: 'watcher', pass: 'secret' } }, r);
    await bounded(w.start(), 'start()');
    expect(w.state).toBe('connected');
    const connz = await server.monitor<{ connections: Array<{ name?: string }> }>('connz');
    expect(connz.connections.map((c) => c.name)).toContain('@central-hub/config');
  });

  it('refused credentials are logged as an error (no retry fixes them alone); state stays connecting', async () => {
    const r = recorder();
    const w = watcher(
      { services: ['svc-auth'], servers: server.url, connectOptions: { user: 'watcher', pass: 'wrong', reconnectTimeWait: 5_000 } },
      r,
    );
    await bounded(w.start(), 'start()');
    expect(w.state).toBe('connecting');
    expect(r.logs).toHaveLength(1);
    expect(r.logs[0]).toMatchObject({
      level: 'error',
      obj: { component: 'nats', err: expect.objectContaining({ code: 'AUTHORIZATION_VIOLATION' }) },
      msg: 'NATS refused our credentials; retrying in the background',
    });
  });

  it('a refused subscription is reported as NATS_PERMISSION_DENIED for its service; the others keep their notices', async () => {
    const r = recorder();
    const w = watcher(
      {
        services: ['svc-denied', 'svc-allowed'],
        subjectPrefix: 'perm.config.update',
        servers: server.url,
        connectOptions: { user: 'watcher', pass: 'secret' },
      },
      r,
    );
    await bounded(w.start(), 'start()');
    await waitFor(() => r.invalid.length === 1, 'the permission report');
    const report = r.invalid[0];
    expect(report?.service).toBe('svc-denied');
    expect(report?.error).toMatchObject({
      code: 'NATS_PERMISSION_DENIED',
      service: 'svc-denied',
      message: `the NATS server refused the subscription to ${DENIED} (permissions violation): no hot reload for svc-denied, only the poll`,
      cause: expect.objectContaining({ code: 'PERMISSIONS_VIOLATION' }),
    });
    expect(r.logs).toContainEqual({
      level: 'error',
      obj: { component: 'nats', service: 'svc-denied', subject: DENIED, err: report?.error.cause },
      msg: 'NATS subscription ended with an error',
    });
    await waitFor(() => r.logs.some((l) => l.msg === 'NATS async error'), 'the async error status');
    expect(r.logs).toContainEqual({
      level: 'warn',
      obj: {
        component: 'nats',
        data: 'PERMISSIONS_VIOLATION',
        permissionContext: expect.objectContaining({ operation: 'subscription', subject: DENIED }),
      },
      msg: 'NATS async error',
    });
    expect(w.state).toBe('connected');
    // A report listener that throws is caught too.
    const r2 = recorder();
    const throwing = watcher(
      {
        services: ['svc-denied'],
        subjectPrefix: 'perm.config.update',
        servers: server.url,
        connectOptions: { user: 'watcher', pass: 'secret' },
        onInvalidNotice: () => {
          throw new Error('report bug');
        },
      },
      r2,
    );
    await bounded(throwing.start(), 'start()');
    await waitFor(() => r2.logs.some((l) => l.msg === 'NatsWatcher callback threw'), 'the caught report');
    expect(r2.logs.find((l) => l.msg === 'NatsWatcher callback threw')?.obj).toMatchObject({ component: 'nats', callback: 'onInvalidNotice' });
    const publisher = await connect({ servers: server.url, user: 'publisher', pass: 'secret' });
    cleanups.push(() => publisher.close());
    publisher.publish('perm.config.update.svc-allowed', enc({ service_name: 'svc-allowed', revision: 3 }));
    await publisher.flush();
    await waitFor(() => r.notices.length === 1, 'the allowed service’s notice');
    expect(r.notices[0]?.service).toBe('svc-allowed');
  });
});

describe('a nats-server that stops accepting our user (private, config reloaded)', () => {
  it('the connection closes for good: logged as an error, state closed', async () => {
    const confDir = await mkdtemp(join(tmpdir(), 'mut-nats-conf-'));
    cleanups.push(() => rm(confDir, { recursive: true, force: true }));
    const conf = join(confDir, 'nats.conf');
    const users = (user: string) => `authorization { users = [ { user: "${user}", password: "secret" } ] }\n`;
    await writeFile(conf, users('watcher'));
    const port = await freePort();
    const child = spawn(NATS_SERVER_BIN, ['-c', conf, '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    await waitForPort(port, { timeoutMs: 5_000 });
    const r = recorder();
    const w = watcher(
      {
        services: ['svc-fatal'],
        servers: `nats://127.0.0.1:${port}`,
        connectOptions: { user: 'watcher', pass: 'secret', reconnectTimeWait: 20, reconnectJitter: 0 },
      },
      r,
    );
    await bounded(w.start(), 'start()');
    expect(w.state).toBe('connected');
    await writeFile(conf, users('someone-else'));
    child.kill('SIGHUP');
    await waitFor(() => w.state === 'closed', 'closed for good', 5_000);
    expect(r.logs).toContainEqual({ level: 'error', obj: { component: 'nats', err: expect.objectContaining({ code: 'AUTHORIZATION_VIOLATION' }) }, msg: 'NATS connection closed for good' });
    expect(r.states.at(-1)).toBe('closed');
  });
});

describe('a nats-server entering lame duck mode (private)', () => {
  it('is logged at info', async () => {
    const server = await startNatsServer({ config: 'lame_duck_duration: "30s"\nlame_duck_grace_period: "10s"' });
    cleanups.push(() => server.dispose());
    const r = recorder();
    const w = watcher({ services: ['svc-ldm'], servers: server.url }, r);
    await bounded(w.start(), 'start()');
    process.kill(server.pid, 'SIGUSR2');
    await waitFor(() => r.logs.some((l) => l.level === 'info'), 'the lame duck status');
    expect(r.logs).toContainEqual({ level: 'info', obj: { component: 'nats' }, msg: 'NATS server entering lame duck mode' });
    await bounded(w.close(), 'close()');
    await server.kill();
  });
});
