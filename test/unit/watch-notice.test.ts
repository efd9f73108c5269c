import { describe, expect, it } from 'vitest';
import { jsonTextExceedsDepth as jsonNestingExceeds } from '../../src/json-depth.js';
import { MAX_NOTICE_CONFIG_DEPTH, parseNotice } from '../../src/watch/notice.js';

const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

describe('parseNotice', () => {
  it('accepts a reference-hub notice', () => {
    const r = parseNotice(
      'svc-a',
      enc({ service_name: 'svc-a', config: { a: 1 }, version: '2', updated_at: 1, updated_by: 'x', revision: 7 }),
    );
    expect(r.ok && r.notice.revision).toBe(7);
    expect(r.ok && r.notice.config).toEqual({ a: 1 });
  });

  it('accepts the original Python hub format (config as a JSON string, no revision)', () => {
    const r = parseNotice(
      'svc-a',
      enc({
        service_name: 'svc-a',
        config: JSON.stringify({ batch_size: 100 }),
        version: '1.0.0',
        updated_at: 1_700_000_000_000,
        updated_by: 'admin',
      }),
    );
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.notice.config).toEqual({ batch_size: 100 });
      expect(r.notice.revision).toBeUndefined();
    }
  });

  it.each([
    ['non-UTF-8 bytes', new Uint8Array([0xff, 0xfe, 0x00, 0x80])],
    ['not JSON', enc('{nope')],
    ['null', enc('null')],
    ['[]', enc('[]')],
    ['a number', enc('42')],
    ['empty', new Uint8Array()],
    ['another service', enc({ service_name: 'svc-b', config: {} })],
    ['a bad service name', enc({ service_name: 'SVC A' })],
    ['config as an array', enc({ service_name: 'svc-a', config: [1] })],
    ['config as a non-object JSON string', enc({ service_name: 'svc-a', config: '[1]' })],
    ['a negative revision', enc({ service_name: 'svc-a', revision: -1 })],
  ])('rejects %s with NOTICE_INVALID', (_label, data) => {
    const r = parseNotice('svc-a', data);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('NOTICE_INVALID');
      expect(r.error.service).toBe('svc-a');
    }
  });

  it('rejects an oversize payload before parsing it', () => {
    const big = enc({ service_name: 'svc-a', config: { blob: 'x'.repeat(2000) } });
    const r = parseNotice('svc-a', big, 1024);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/limit/);
    expect(parseNotice('svc-a', big, 4096).ok).toBe(true);
  });

  it('rejects a 20 000-level notice (issue 9 #6) with NOTICE_INVALID instead of overflowing the stack', () => {
    const deep = `{"service_name":"svc-a","config":{"a":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_001)}}`;
    expect(deep.length).toBeGreaterThan(100_000);
    const r = parseNotice('svc-a', enc(deep));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('NOTICE_INVALID');
      expect(r.error.message).toMatch(/nested deeper than 64 levels/);
    }
    const arrays = parseNotice('svc-a', enc(`{"service_name":"svc-a","config":{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`));
    expect(arrays.ok).toBe(false);
  });

  it('accepts a config exactly as deep as the hub accepts (64 levels), rejects 65', () => {
    const nested = (levels: number): unknown => {
      let v: unknown = 1;
      for (let i = 0; i < levels; i++) v = { k: v };
      return v;
    };
    expect(parseNotice('svc-a', enc({ service_name: 'svc-a', config: nested(MAX_NOTICE_CONFIG_DEPTH) })).ok).toBe(true);
    expect(parseNotice('svc-a', enc({ service_name: 'svc-a', config: nested(MAX_NOTICE_CONFIG_DEPTH + 1) })).ok).toBe(false);
  });

  it('bounds a config sent as a JSON string (original hub format) the same way', () => {
    const inner = `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`;
    const r = parseNotice('svc-a', enc({ service_name: 'svc-a', config: inner }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/nested deeper/);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const r = parseNotice('svc-a', enc({ service_name: 'svc-a', config: { s: `\\"${'[{'.repeat(5_000)}"` } }));
    expect(r.ok).toBe(true);
  });
});

describe('jsonNestingExceeds', () => {
  it.each([
    ['1', 0, false],
    ['{}', 0, true],
    ['{}', 1, false],
    ['[[1],[2]]', 2, false],
    ['[[[1]]]', 2, true],
    ['"[[[["', 0, false],
    ['["\\\\",[[1]]]', 2, true],
    ['["\\"[[",1]', 1, false],
  ])('%s with max %i → %s', (text, max, expected) => {
    expect(jsonNestingExceeds(text, max)).toBe(expected);
  });
});
