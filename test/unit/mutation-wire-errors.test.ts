/**
 * The small pure modules at their edges, found by mutation testing (`npm run test:mutation`): the error
 * classes (`src/errors.ts`), the logger wrapper (`src/logger.ts`), retry classification and backoff
 * (`src/hub/retry.ts`) and the wire contract's schemas (`src/hub/wire.ts`, published as
 * `@central-hub/config/wire`).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigInvalidError, errorMessage, HubHttpError, isConfigError } from '../../src/errors.js';
import { backoffDelay, isRetryableStatus, parseRetryAfter } from '../../src/hub/retry.js';
import { type Logger, safeLogger, silentLogger } from '../../src/logger.js';
import {
  broadcastStatusSchema,
  configDocumentSchema,
  DEFAULT_SUBJECT_PREFIX,
  epochMsSchema,
  errorBodySchema,
  historyActionSchema,
  historyEntrySchema,
  historyResponseSchema,
  isForbiddenKey,
  isValidServiceName,
  noticeSchema,
  SERVICE_NAME_MAX_LENGTH,
  serviceNameSchema,
  subjectFor,
  wireConfigSchema,
  writeResponseSchema,
} from '../../src/wire.js';

/** The messages of every issue of a failed parse, nested union issues included. */
function issueMessages(result: { success: boolean; error?: unknown }): string {
  expect(result.success).toBe(false);
  return JSON.stringify(result.error);
}

describe('ConfigError', () => {
  it('carries its code, message and service; a cause only when one is given', () => {
    const plain = new ConfigError('HUB_ERROR', 'boom');
    expect(plain).toBeInstanceOf(Error);
    expect(plain.code).toBe('HUB_ERROR');
    expect(plain.message).toBe('boom');
    expect(plain.service).toBeUndefined();
    expect('cause' in plain).toBe(false);
    const root = new Error('root');
    const wrapped = new ConfigError('CONFIG_INVALID', 'bad', { service: 'svc-a', cause: root });
    expect(wrapped.service).toBe('svc-a');
    expect(wrapped.cause).toBe(root);
  });

  it('names itself ConfigError and is recognized by isConfigError through a non-enumerable brand', () => {
    const error = new ConfigError('CLIENT_CLOSED', 'closed');
    expect(error.name).toBe('ConfigError');
    expect(String(error)).toBe('ConfigError: closed');
    expect(isConfigError(error)).toBe(true);
    expect(Object.keys(error)).not.toContain(Symbol.for('@central-hub/config.ConfigError'));
    expect(Object.getOwnPropertySymbols(error).map((s) => Object.getOwnPropertyDescriptor(error, s)?.enumerable)).toEqual([false]);
  });

  it('isConfigError holds for another copy of the class (the brand is Symbol.for), and only for a brand of true', () => {
    const brand = Symbol.for('@central-hub/config.ConfigError');
    expect(isConfigError({ [brand]: true })).toBe(true);
    expect(isConfigError({ [brand]: 1 })).toBe(false);
    expect(isConfigError({})).toBe(false);
    expect(isConfigError(new Error('x'))).toBe(false);
    expect(isConfigError(null)).toBe(false);
    expect(isConfigError(undefined)).toBe(false);
    expect(isConfigError('ConfigError')).toBe(false);
    const fn = Object.assign(() => undefined, { [brand]: true });
    expect(isConfigError(fn)).toBe(false);
  });
});

describe('ConfigInvalidError and HubHttpError', () => {
  it('ConfigInvalidError: CONFIG_INVALID with its issues, its own name, a ConfigError', () => {
    const issues = [{ path: 'a.b', message: 'Expected number' }];
    const error = new ConfigInvalidError('invalid config', issues, { service: 'svc-a' });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.issues).toBe(issues);
    expect(error.service).toBe('svc-a');
    expect(error.name).toBe('ConfigInvalidError');
    expect(isConfigError(error)).toBe(true);
  });

  it('HubHttpError: the status, and the detail in the message when there is one', () => {
    const bare = new HubHttpError('HUB_ERROR', 503, undefined);
    expect(bare.message).toBe('hub answered 503');
    expect(bare.status).toBe(503);
    expect(bare.detail).toBeUndefined();
    expect(bare.name).toBe('HubHttpError');
    expect(bare).toBeInstanceOf(ConfigError);
    expect(new HubHttpError('CONFIG_NOT_FOUND', 404, 'Config not found', { service: 's' })).toMatchObject({
      code: 'CONFIG_NOT_FOUND',
      message: 'hub answered 404: Config not found',
      detail: 'Config not found',
      service: 's',
    });
    expect(new HubHttpError('UNAUTHORIZED', 401, { reason: 'bad key' }).message).toBe('hub answered 401: {"reason":"bad key"}');
  });

  it('HubHttpError: a detail longer than 200 characters is cut at 200 with an ellipsis', () => {
    expect(new HubHttpError('HUB_ERROR', 500, 'x'.repeat(200)).message).toBe(`hub answered 500: ${'x'.repeat(200)}`);
    expect(new HubHttpError('HUB_ERROR', 500, 'y'.repeat(201)).message).toBe(`hub answered 500: ${'y'.repeat(200)}…`);
    const long = new HubHttpError('HUB_ERROR', 500, { list: 'z'.repeat(300) });
    expect(long.message).toBe(`hub answered 500: ${JSON.stringify({ list: 'z'.repeat(300) }).slice(0, 200)}…`);
    expect(long.detail).toEqual({ list: 'z'.repeat(300) });
  });

  it('errorMessage: an Error’s message, anything else as text', () => {
    expect(errorMessage(new TypeError('bad type'))).toBe('bad type');
    expect(errorMessage(new ConfigError('HUB_ERROR', 'hub down'))).toBe('hub down');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(undefined)).toBe('undefined');
  });
});

describe('safeLogger', () => {
  it('no logger: the silent one', () => {
    expect(safeLogger(undefined)).toBe(silentLogger);
    for (const level of ['debug', 'info', 'warn', 'error'] as const) expect(silentLogger[level]({}, 'x')).toBeUndefined();
  });

  it('each level reaches the same method, called on the logger with the object and the message', () => {
    const seen: string[] = [];
    class Recording implements Logger {
      readonly prefix = 'rec';
      debug(obj: object, msg?: string): void {
        seen.push(`${this.prefix} debug ${JSON.stringify(obj)} ${msg}`);
      }
      info(obj: object, msg?: string): void {
        seen.push(`${this.prefix} info ${JSON.stringify(obj)} ${msg}`);
      }
      warn(obj: object, msg?: string): void {
        seen.push(`${this.prefix} warn ${JSON.stringify(obj)} ${msg}`);
      }
      error(obj: object, msg?: string): void {
        seen.push(`${this.prefix} error ${JSON.stringify(obj)} ${msg}`);
      }
    }
    const log = safeLogger(new Recording());
    log.debug({ a: 1 }, 'd');
    log.info({ b: 2 }, 'i');
    log.warn({ c: 3 }, 'w');
    log.error({ d: 4 }, 'e');
    expect(seen).toEqual(['rec debug {"a":1} d', 'rec info {"b":2} i', 'rec warn {"c":3} w', 'rec error {"d":4} e']);
  });

  it('missing methods are no-ops and a throwing logger never throws out', () => {
    const seen: string[] = [];
    const log = safeLogger({
      warn: (_obj, msg) => seen.push(`warn ${msg}`),
      error: () => {
        throw new Error('logger bug');
      },
    });
    expect(() => log.debug({}, 'd')).not.toThrow();
    expect(() => log.info({}, 'i')).not.toThrow();
    expect(() => log.error({}, 'e')).not.toThrow();
    log.warn({}, 'w');
    expect(seen).toEqual(['warn w']);
  });
});

describe('retry classification and backoff', () => {
  it.each([
    [408, true],
    [429, true],
    [500, true],
    [503, true],
    [599, true],
    [400, false],
    [404, false],
    [407, false],
    [409, false],
    [428, false],
    [430, false],
    [499, false],
  ])('status %i retryable: %s', (status, expected) => {
    expect(isRetryableStatus(status)).toBe(expected);
  });

  it('full jitter below min(cap, base · 2^attempt), the exponent capped at 30', () => {
    expect(backoffDelay(0, 100, 2_000, () => 0.5)).toBe(50);
    expect(backoffDelay(3, 100, 2_000, () => 0.5)).toBe(400);
    expect(backoffDelay(5, 100, 2_000, () => 0.5)).toBe(1_000);
    expect(backoffDelay(3, 100, 2_000, () => 0.999)).toBe(799);
    expect(backoffDelay(3, 100, 2_000, () => 0)).toBe(0);
    expect(backoffDelay(40, 1, Number.POSITIVE_INFINITY, () => 0.5)).toBe(2 ** 29);
    const defaults = backoffDelay(2, 100, 2_000);
    expect(defaults).toBeGreaterThanOrEqual(0);
    expect(defaults).toBeLessThan(400);
  });

  it('Retry-After: delta-seconds (trimmed, first of several), an HTTP date from now, else undefined', () => {
    const now = Date.parse('2026-12-02T10:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter(' 7 ', now)).toBe(7_000);
    expect(parseRetryAfter(['2', '9'], now)).toBe(2_000);
    expect(parseRetryAfter('Wed, 02 Dec 2026 10:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter('Wed, 02 Dec 2026 09:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('3x', now)).toBeUndefined();
    expect(parseRetryAfter('x3', now)).toBeUndefined();
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter([], now)).toBeUndefined();
    const fromNow = parseRetryAfter(new Date(Date.now() + 60_000).toUTCString());
    expect(fromNow).toBeGreaterThan(50_000);
    expect(fromNow).toBeLessThanOrEqual(60_000);
  });
});

describe('the wire contract', () => {
  it('service names: 1..100 of [a-z0-9-], each rule with its message', () => {
    expect(isValidServiceName('tick-aggregator-2')).toBe(true);
    expect(isValidServiceName('a'.repeat(SERVICE_NAME_MAX_LENGTH))).toBe(true);
    expect(isValidServiceName('a'.repeat(SERVICE_NAME_MAX_LENGTH + 1))).toBe(false);
    expect(isValidServiceName(42)).toBe(false);
    expect(serviceNameSchema.safeParse('').error?.issues[0]?.message).toBe('service name is empty');
    expect(serviceNameSchema.safeParse('a'.repeat(101)).error?.issues[0]?.message).toBe('service name is longer than 100 characters');
    for (const bad of ['Tick', 'a_b', 'a b', 'a.b', '-é']) {
      expect(serviceNameSchema.safeParse(bad).error?.issues[0]?.message).toBe('service name must match ^[a-z0-9-]+$');
    }
  });

  it('the keys no config may carry', () => {
    expect(['__proto__', 'constructor', 'prototype'].map(isForbiddenKey)).toEqual([true, true, true]);
    expect(['proto', 'Constructor', '', 'toString'].map(isForbiddenKey)).toEqual([false, false, false, false]);
  });

  it('config: an object as it is, or a JSON string of an object; anything else is refused with its reason', () => {
    const object = { a: { b: 1 } };
    expect(wireConfigSchema.parse(object)).toBe(object);
    expect(wireConfigSchema.parse('{"a":[1]}')).toEqual({ a: [1] });
    for (const value of [5, true]) expect(issueMessages(wireConfigSchema.safeParse(value))).toContain('config must be a JSON object');
    expect(wireConfigSchema.safeParse('{nope').error?.issues).toMatchObject([{ code: 'custom', message: 'config is a string that is not valid JSON' }]);
    expect(wireConfigSchema.safeParse('[1]').error?.issues).toMatchObject([{ code: 'custom', message: 'config string does not encode a JSON object' }]);
    expect(issueMessages(wireConfigSchema.safeParse([1]))).toContain('config must be a JSON object');
    expect(issueMessages(wireConfigSchema.safeParse(null))).toContain('config must be a JSON object');
    expect(issueMessages(wireConfigSchema.safeParse('{nope'))).toContain('config is a string that is not valid JSON');
    for (const text of ['[1]', 'null', '5', '"s"']) {
      expect(issueMessages(wireConfigSchema.safeParse(text))).toContain('config string does not encode a JSON object');
    }
  });

  it('updated_at: epoch ms as a number or a numeric string, or an ISO date; nothing else', () => {
    expect(epochMsSchema.parse(0)).toBe(0);
    expect(epochMsSchema.parse(1_700_000_000_000)).toBe(1_700_000_000_000);
    expect(epochMsSchema.parse('1700000000000')).toBe(1_700_000_000_000);
    expect(epochMsSchema.parse('2024-01-01T00:00:00Z')).toBe(Date.parse('2024-01-01T00:00:00Z'));
    // Digits followed by a date: a date (not Number(), which gives NaN); a date followed by digits: not a number.
    expect(epochMsSchema.parse('2024-01-01')).toBe(Date.parse('2024-01-01'));
    expect(epochMsSchema.parse('Jan 1 2024 10')).toBe(Date.parse('Jan 1 2024 10'));
    expect(epochMsSchema.safeParse(-1).success).toBe(false);
    expect(epochMsSchema.safeParse(Number.POSITIVE_INFINITY).success).toBe(false);
    expect(issueMessages(epochMsSchema.safeParse('soon'))).toContain('updated_at is not a timestamp');
    expect(epochMsSchema.safeParse('soon').error?.issues).toMatchObject([
      { code: 'invalid_union', errors: [[{ code: 'invalid_type' }], [{ code: 'custom', message: 'updated_at is not a timestamp' }]] },
    ]);
  });

  it('a config document: version defaults to "", revision is coerced to a non-negative integer, extra fields kept', () => {
    const doc = configDocumentSchema.parse({ service_name: 'svc-a', config: '{"a":1}', updated_at: '5', revision: '7', extra: true });
    expect(doc).toEqual({ service_name: 'svc-a', config: { a: 1 }, version: '', updated_at: 5, revision: 7, extra: true });
    expect(configDocumentSchema.parse({ service_name: 'svc-a', config: {}, version: null, updated_at: 1 }).version).toBe('');
    expect(configDocumentSchema.parse({ service_name: 'svc-a', config: {}, version: '1.2', updated_at: 1 }).version).toBe('1.2');
    for (const revision of [-1, 1.5, 'x']) {
      expect(configDocumentSchema.safeParse({ service_name: 'svc-a', config: {}, updated_at: 1, revision }).success).toBe(false);
    }
    expect(
      configDocumentSchema.parse({ service_name: 'svc-a', config: {}, updated_at: 1, description: null, tags: ['t'], active: false }),
    ).toMatchObject({ description: null, tags: ['t'], active: false });
    expect(configDocumentSchema.safeParse({ service_name: 'svc-a', config: {}, updated_at: 1, tags: [1] }).success).toBe(false);
  });

  it('error bodies, write responses and broadcast states', () => {
    expect(errorBodySchema.parse({ detail: 'x', more: 1 })).toEqual({ detail: 'x', more: 1 });
    expect(broadcastStatusSchema.options).toEqual(['sent', 'unavailable', 'failed']);
    const write = { service_name: 'svc-a', config: {}, updated_at: 1, broadcast: 'sent', revision: 2 };
    for (const status of ['updated', 'created', 'deleted', 'rollback']) {
      expect(writeResponseSchema.parse({ ...write, status }).status).toBe(status);
    }
    expect(writeResponseSchema.safeParse({ ...write, status: 'patched' }).success).toBe(false);
    expect(writeResponseSchema.safeParse({ ...write, status: 'updated', broadcast: 'queued' }).success).toBe(false);
    expect(writeResponseSchema.parse({ ...write, status: 'updated', version: null, updated_by: 'ops' })).toMatchObject({
      version: null,
      updated_by: 'ops',
      revision: 2,
    });
  });

  it('history: actions, entries with a timestamp or any string, totals and a positive limit', () => {
    expect(historyActionSchema.options).toEqual(['created', 'updated', 'deleted', 'rollback']);
    const entry = { action: 'updated', changed_at: 1 };
    expect(historyEntrySchema.parse(entry)).toEqual(entry);
    expect(historyEntrySchema.parse({ ...entry, changed_at: 'yesterday', config: null, revision: '3' })).toMatchObject({
      changed_at: 'yesterday',
      config: null,
      revision: 3,
    });
    expect(historyEntrySchema.parse({ ...entry, config: '{"a":1}' }).config).toEqual({ a: 1 });
    expect(historyEntrySchema.safeParse({ ...entry, action: 'patched' }).success).toBe(false);
    const response = { service_name: 'svc-a', history: [entry], total: 0, limit: 1 };
    expect(historyResponseSchema.parse(response)).toEqual(response);
    expect(historyResponseSchema.safeParse({ ...response, total: -1 }).success).toBe(false);
    expect(historyResponseSchema.safeParse({ ...response, total: 1.5 }).success).toBe(false);
    expect(historyResponseSchema.safeParse({ ...response, limit: 0 }).success).toBe(false);
    expect(historyResponseSchema.safeParse({ ...response, history: [{ action: 'x', changed_at: 1 }] }).success).toBe(false);
  });

  it('notices: everything but the service name optional; a malformed kid or sig becomes undefined, not a refusal', () => {
    expect(noticeSchema.parse({ service_name: 'svc-a' })).toEqual({ service_name: 'svc-a' });
    expect(noticeSchema.parse({ service_name: 'svc-a', kid: 5, sig: ['x'] })).toEqual({ service_name: 'svc-a', kid: undefined, sig: undefined });
    expect(noticeSchema.parse({ service_name: 'svc-a', kid: 'k', sig: 's', action: 'deleted' })).toMatchObject({ kid: 'k', sig: 's', action: 'deleted' });
    expect(noticeSchema.safeParse({ service_name: 'svc-a', action: 'patched' }).success).toBe(false);
    expect(noticeSchema.safeParse({ service_name: 'svc-a', updated_by: 5 }).success).toBe(false);
  });

  it('subjects: <prefix>.<service>, config.update by default; the name is checked', () => {
    expect(DEFAULT_SUBJECT_PREFIX).toBe('config.update');
    expect(subjectFor('svc-a')).toBe('config.update.svc-a');
    expect(subjectFor('svc-a', 'x.y')).toBe('x.y.svc-a');
    expect(() => subjectFor('svc.*')).toThrow();
  });
});
