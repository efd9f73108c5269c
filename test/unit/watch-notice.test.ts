import { describe, expect, it } from 'vitest';
import { parseNotice } from '../../src/watch/notice.js';

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
});
