/**
 * src/options.ts at its edges, found by mutation testing (`npm run test:mutation`): every check of
 * resolveOptions() with its message, the defaults it fills in, the frozen result, and the "did you mean"
 * suggestions for unknown keys (edit distance, case slips and prefixes, and the distance beyond which
 * nothing is suggested).
 */
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { silentLogger } from '../../src/logger.js';
import {
  type ConfigClientOptions,
  DEFAULT_CACHE_TTL_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_MAX_RETRY_AFTER_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_RECOVERY_MAX_DELAY_MS,
  DEFAULT_RECOVERY_MIN_DELAY_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRIES,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  DEFAULT_SNAPSHOT_DIR,
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_UNAUTHORIZED_DELAY_MS,
  resolveOptions,
} from '../../src/options.js';

const HUB = 'http://127.0.0.1:7000';
const NATS = 'nats://127.0.0.1:4222';

/** The INVALID_OPTIONS message `options` are refused with (untyped on purpose: these are mistakes). */
function refusal(options: unknown): string {
  try {
    resolveOptions(options as ConfigClientOptions);
  } catch (error) {
    expect(error).toMatchObject({ code: 'INVALID_OPTIONS' });
    return (error as Error).message;
  }
  throw new Error(`options were accepted: ${JSON.stringify(options)}`);
}

const resolve = (options: Record<string, unknown>) => resolveOptions({ hubUrl: HUB, ...options } as ConfigClientOptions);

describe('defaults', () => {
  it('fills in every default, in a frozen result', () => {
    const r = resolveOptions({ hubUrl: HUB });
    // toMatchObject: options added later (fleet reporting) have tests of their own.
    expect(r).toMatchObject({
      hubUrls: [`${HUB}/`],
      apiKey: undefined,
      services: {},
      cacheTtlMs: DEFAULT_CACHE_TTL_MS,
      startupTimeoutMs: DEFAULT_STARTUP_TIMEOUT_MS,
      strictStartup: false,
      snapshotDir: join(process.cwd(), DEFAULT_SNAPSHOT_DIR),
      transport: {
        connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
        requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
        retries: DEFAULT_RETRIES,
        retryBaseDelayMs: DEFAULT_RETRY_BASE_DELAY_MS,
        retryMaxDelayMs: DEFAULT_RETRY_MAX_DELAY_MS,
        maxRetryAfterMs: DEFAULT_MAX_RETRY_AFTER_MS,
        keepAliveTimeoutMs: DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
        maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
        dispatcher: undefined,
      },
      recovery: {
        minDelayMs: DEFAULT_RECOVERY_MIN_DELAY_MS,
        maxDelayMs: DEFAULT_RECOVERY_MAX_DELAY_MS,
        unauthorizedDelayMs: DEFAULT_UNAUTHORIZED_DELAY_MS,
      },
      nats: undefined,
      pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
      logger: silentLogger,
    });
    expect(r.env).toBe(process.env);
    expect(r.nats).toBeUndefined();
    expect(r.apiKey).toBeUndefined();
    expect(Object.keys(r.transport).sort()).toEqual([
      'connectTimeoutMs',
      'dispatcher',
      'keepAliveTimeoutMs',
      'maxResponseBytes',
      'maxRetryAfterMs',
      'requestTimeoutMs',
      'retries',
      'retryBaseDelayMs',
      'retryMaxDelayMs',
    ]);
    expect(DEFAULT_SNAPSHOT_DIR).toBe('.central-hub-config');
    for (const part of [r, r.hubUrls, r.services, r.transport, r.recovery]) expect(Object.isFrozen(part)).toBe(true);
  });

  it('keeps what was given, without mutating the caller’s objects', () => {
    const env = { A: '1' };
    const logged: string[] = [];
    const schema = z.object({ a: z.number() });
    const services = { 'svc-a': { schema, defaults: { a: 1 }, env: { a: 'A' } } };
    const options = {
      hubUrl: ['http://Hub.Test:80/x', 'https://other.test'],
      apiKey: 'key',
      services,
      cacheTtlMs: 7,
      startupTimeoutMs: 0,
      strictStartup: true,
      snapshotDir: '/tmp/snaps',
      transport: { connectTimeoutMs: 1, requestTimeoutMs: 2, retries: 10, retryBaseDelayMs: 0, retryMaxDelayMs: 0, maxRetryAfterMs: 0, keepAliveTimeoutMs: 3, maxResponseBytes: 4 },
      recovery: { minDelayMs: 5, maxDelayMs: 6, unauthorizedDelayMs: 7 },
      pollIntervalMs: 8,
      env,
      logger: { info: (_o: object, m?: string) => logged.push(m ?? '') },
    } satisfies ConfigClientOptions;
    const r = resolveOptions(options);
    expect(r.hubUrls).toEqual(['http://hub.test/x', 'https://other.test/']);
    expect(r.apiKey).toBe('key');
    expect(r.services).toEqual(services);
    expect(r.services['svc-a']).not.toBe(services['svc-a']);
    expect(r.services['svc-a']?.schema).toBe(schema);
    expect(r).toMatchObject({ cacheTtlMs: 7, startupTimeoutMs: 0, strictStartup: true, snapshotDir: '/tmp/snaps', pollIntervalMs: 8 });
    expect(r.transport).toEqual({ ...options.transport, dispatcher: undefined });
    expect(r.recovery).toEqual(options.recovery);
    expect(r.env).toBe(env);
    r.logger.info({}, 'through the wrapper');
    expect(logged).toEqual(['through the wrapper']);
    expect(Array.isArray(options.hubUrl) && options.hubUrl[0]).toBe('http://Hub.Test:80/x');
    expect(resolve({ snapshotDir: false }).snapshotDir).toBe(false);
    expect(resolve({ pollIntervalMs: false }).pollIntervalMs).toBe(false);
    expect(resolve({ strictStartup: false }).strictStartup).toBe(false);
  });

  it('nats: the default subject prefix, applyPayload off, the rest kept, frozen', () => {
    const keys = { k1: generateKeyPairSync('ed25519').publicKey };
    const n = resolve({ services: { 'svc-a': {} }, nats: { servers: NATS, verifyKeys: keys, connectOptions: { name: 'n' } } }).nats;
    expect(n).toEqual({ servers: NATS, verifyKeys: keys, connectOptions: { name: 'n' }, subjectPrefix: 'config.update', applyPayload: false });
    expect(Object.isFrozen(n)).toBe(true);
    expect(resolve({ nats: { servers: [NATS], subjectPrefix: 'a-b.c_d', applyPayload: true } }).nats).toMatchObject({
      subjectPrefix: 'a-b.c_d',
      applyPayload: true,
    });
    expect(resolve({ nats: undefined }).nats).toBeUndefined();
    expect(resolve({ nats: null }).nats).toBeUndefined();
  });
});

describe('refusals, each with its message', () => {
  it('options and their sections must be objects', () => {
    expect(refusal(null)).toBe('options must be an object');
    expect(refusal('http://hub')).toBe('options must be an object');
    for (const section of ['transport', 'recovery', 'services'] as const) {
      for (const value of [5, null, [], 'x']) expect(refusal({ hubUrl: HUB, [section]: value })).toBe(`${section} must be an object`);
    }
    for (const value of [5, [], 'x', true]) expect(refusal({ hubUrl: HUB, nats: value })).toBe('nats must be an object');
  });

  it('hubUrl: required, URLs, http(s) only', () => {
    expect(refusal({})).toBe('hubUrl is required');
    expect(refusal({ hubUrl: [] })).toBe('hubUrl is required');
    expect(refusal({ hubUrl: 'not a url' })).toBe('hubUrl "not a url" is not a URL');
    expect(refusal({ hubUrl: [HUB, 'ftp://hub.test'] })).toBe('hubUrl ftp://hub.test must be http(s)');
    expect(resolve({ hubUrl: 'https://hub.test' }).hubUrls).toEqual(['https://hub.test/']);
  });

  it('apiKey: a non-empty string when given', () => {
    expect(refusal({ hubUrl: HUB, apiKey: '' })).toBe('apiKey must be a non-empty string');
    expect(refusal({ hubUrl: HUB, apiKey: 5 })).toBe('apiKey must be a non-empty string');
    expect(resolve({ apiKey: undefined }).apiKey).toBeUndefined();
  });

  it('services: valid names, object definitions, zod schemas, dotted env paths naming variables', () => {
    const s = (services: unknown) => refusal({ hubUrl: HUB, services });
    expect(s({ 'Bad Name': {} })).toBe('service name "Bad Name" must match ^[a-z0-9-]+$ (≤ 100 chars)');
    expect(s({ 'svc-a': null })).toBe('service svc-a: definition must be an object');
    expect(s({ 'svc-a': 'schema' })).toBe('service svc-a: definition must be an object');
    expect(s({ 'svc-a': { schema: {} } })).toBe('service svc-a: schema must be a zod schema');
    expect(s({ 'svc-a': { schema: { safeParse: true } } })).toBe('service svc-a: schema must be a zod schema');
    for (const path of ['', '.a', 'a.', 'a..b', 'a b', 'a.b c', 'a/b']) {
      expect(s({ 'svc-a': { env: { [path]: 'VAR' } } })).toBe(`service svc-a: env path ${JSON.stringify(path)} is not a dotted path`);
    }
    expect(s({ 'svc-a': { env: { a: '' } } })).toBe('service svc-a: env a must name a variable');
    expect(s({ 'svc-a': { env: { a: 5 } } })).toBe('service svc-a: env a must name a variable');
    expect(resolve({ services: { 'svc-a': { env: { 'A_b-1.c2': 'V', x: 'X' } } } }).services['svc-a']?.env).toEqual({ 'A_b-1.c2': 'V', x: 'X' });
    expect(resolve({ services: { 'svc-a': { schema: z.object({}) } } }).services['svc-a']).toBeDefined();
  });

  it('transport.retries: an integer in 0..10', () => {
    for (const retries of [-1, 11, 1.5, Number.NaN, '2']) {
      expect(refusal({ hubUrl: HUB, transport: { retries } })).toBe('transport.retries must be an integer in 0..10');
    }
    expect(resolve({ transport: { retries: 0 } }).transport.retries).toBe(0);
    expect(resolve({ transport: { retries: 10 } }).transport.retries).toBe(10);
  });

  it.each([
    ['cacheTtlMs', false],
    ['startupTimeoutMs', true],
    ['pollIntervalMs', false],
    ['transport.connectTimeoutMs', false],
    ['transport.requestTimeoutMs', false],
    ['transport.retryBaseDelayMs', true],
    ['transport.retryMaxDelayMs', true],
    ['transport.maxRetryAfterMs', true],
    ['transport.keepAliveTimeoutMs', false],
    ['transport.maxResponseBytes', false],
    ['recovery.minDelayMs', false],
    ['recovery.maxDelayMs', false],
    ['recovery.unauthorizedDelayMs', false],
  ])('%s must be a finite number of milliseconds (zero allowed: %s)', (name, allowZero) => {
    const [section, key] = name.includes('.') ? (name.split('.') as [string, string]) : [undefined, name];
    const options = (value: unknown) => ({ hubUrl: HUB, ...(section ? { [section]: { [key]: value } } : { [key]: value }) });
    const kind = allowZero ? 'non-negative' : 'positive';
    for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5']) {
      expect(refusal(options(value))).toBe(`${name} must be a ${kind} number of milliseconds, got ${String(value)}`);
    }
    const read = (value: number) => {
      const r = resolveOptions(options(value) as ConfigClientOptions) as unknown as Record<string, Record<string, number>>;
      return section ? r[section]?.[key] : (r as unknown as Record<string, number>)[key];
    };
    if (allowZero) expect(read(0)).toBe(0);
    else expect(refusal(options(0))).toBe(`${name} must be a positive number of milliseconds, got 0`);
    expect(read(0.5)).toBe(0.5);
  });

  it('nats: servers or a connection (not both), a plain subject prefix, valid verifyKeys', async () => {
    const n = (nats: unknown) => refusal({ hubUrl: HUB, nats });
    expect(n({})).toBe('nats needs servers or a connection');
    expect(n({ servers: '' })).toBe('nats needs servers or a connection');
    expect(n({ servers: NATS, connection: {} })).toBe('nats takes servers or a connection, not both');
    expect(resolve({ nats: { connection: {} } }).nats?.connection).toEqual({});
    for (const subjectPrefix of ['', 'a.*', 'a.>', '.a', 'a.', 'a..b', 'a b']) {
      expect(n({ servers: NATS, subjectPrefix })).toBe('nats.subjectPrefix must be a plain subject (no wildcards)');
    }
    expect(n({ servers: NATS, verifyKeys: {} })).toBe('nats.verifyKeys is empty; omit it to accept unsigned notices');
  });
});

describe('unknown keys: refused, with the option probably meant', () => {
  it.each([
    // A case slip is the nearest miss.
    ['apikey', 'apiKey'],
    ['HUBURL', 'hubUrl'],
    ['ENV', 'env'],
    // Edit distance 1, 2 or (for longer keys) up to a third of the key's length.
    ['loggr', 'logger'],
    ['nat', 'nats'],
    ['servics', 'services'],
    ['caheTtlMs', 'cacheTtlMs'],
    ['apKy', 'apiKey'],
    ['tarnsport', 'transport'],
    ['nvv', 'env'],
    // A prefix either way: distance ⌈length difference / 4⌉ (at least 1).
    ['snap', 'snapshotDir'],
    ['strict', 'strictStartup'],
    ['pollInterval', 'pollIntervalMs'],
    ['cacheTtlMsxyzwv', 'cacheTtlMs'],
    ['pollIntervalMsMsMs', 'pollIntervalMs'],
    ['lo', 'logger'],
    ['hub', 'hubUrl'],
    // A long key that starts with an option: the prefix rule, not the edit distance, finds it.
    ['hubUrlxxxxxxxxxxxxxxxx', 'hubUrl'],
    // A tie (nats and env are both 2 away): the first option listed wins.
    ['nt', 'nats'],
  ])('%s → %s', (key, meant) => {
    expect(refusal({ hubUrl: HUB, [key]: 1 })).toBe(`unknown option ${JSON.stringify(key)} (did you mean ${JSON.stringify(meant)}?)`);
  });

  it.each(['lgr', 'logxxx', 'rcvry', 'sD', 'xyz', 'ab', 'pollIntervalMilliseconds', 'zzzqqq'])('%s: no suggestion', (key) => {
    expect(refusal({ hubUrl: HUB, [key]: 1 })).toBe(`unknown option ${JSON.stringify(key)}`);
  });

  it('inside sections the path is named, and the suggestion too', () => {
    expect(refusal({ hubUrl: HUB, transport: { retry: 1 } })).toBe('unknown option "transport.retry"');
    expect(refusal({ hubUrl: HUB, transport: { retriez: 1 } })).toBe('unknown option "transport.retriez" (did you mean "transport.retries"?)');
    expect(refusal({ hubUrl: HUB, transport: { maxRetryAfter: 1 } })).toBe(
      'unknown option "transport.maxRetryAfter" (did you mean "transport.maxRetryAfterMs"?)',
    );
    expect(refusal({ hubUrl: HUB, recovery: { maxDelay: 1 } })).toBe('unknown option "recovery.maxDelay" (did you mean "recovery.maxDelayMs"?)');
    expect(refusal({ hubUrl: HUB, nats: { servers: NATS, verifyKey: {} } })).toBe('unknown option "nats.verifyKey" (did you mean "nats.verifyKeys"?)');
    expect(refusal({ hubUrl: HUB, services: { 'svc-a': { default: {} } } })).toBe(
      'unknown option "services.svc-a.default" (did you mean "services.svc-a.defaults"?)',
    );
  });

  it('an unknown key is refused before anything else is checked; inherited keys are not options', () => {
    expect(refusal({ hubUrl: 'not a url', snapshot: false })).toBe('unknown option "snapshot" (did you mean "snapshotDir"?)');
    expect(refusal({ hubUrl: HUB, transport: { retries: 99, retry: 1 } })).toBe('unknown option "transport.retry"');
    expect(refusal({ hubUrl: HUB, toString: 1 })).toBe('unknown option "toString"');
    const inherited = Object.create({ snapshot: false }) as Record<string, unknown>;
    inherited.hubUrl = HUB;
    expect(resolveOptions(inherited as unknown as ConfigClientOptions).hubUrls).toEqual([`${HUB}/`]);
  });
});
