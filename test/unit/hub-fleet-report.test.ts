/** The hub's report parsing (examples/hub/fleet/report.ts): the x-config-report header → rows, bounded and cached. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkReport, headerSafe, parseReportHeader, ReportCache } from '../../examples/hub/fleet/report.js';
import { encodeReport, type InstanceReport, MAX_REPORT_BYTES } from '../../src/fleet/wire.js';

const HASH = 'a'.repeat(64);
const report = (over: Partial<InstanceReport> = {}): InstanceReport => ({
  v: 1,
  id: 'inst-1',
  host: 'web-1',
  pid: 42,
  client: '0.1.0',
  poll_ms: 60_000,
  services: { 'data-bridge': { revision: 3, source: 'hub', stale: false, error: null, schema: HASH } },
  ...over,
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('parseReportHeader', () => {
  it('a valid header becomes one row per reported service, with its expiry window', () => {
    const parsed = parseReportHeader(
      encodeReport(report({ services: { a: { revision: 1, source: 'hub', stale: false, error: null, schema: null }, b: { revision: null, source: null, stale: true, error: 'CONFIG_INVALID', schema: HASH } } })),
    );
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.entries).toEqual([
      { service_name: 'a', instance_id: 'inst-1', host: 'web-1', pid: 42, client_version: '0.1.0', revision: 1, source: 'hub', stale: false, last_error: null, schema_hash: null, expiry_ms: 180_000 },
      { service_name: 'b', instance_id: 'inst-1', host: 'web-1', pid: 42, client_version: '0.1.0', revision: null, source: null, stale: true, last_error: 'CONFIG_INVALID', schema_hash: HASH, expiry_ms: 180_000 },
    ]);
  });

  it('refuses a header over MAX_REPORT_BYTES before JSON.parse ever sees it', () => {
    const parse = vi.spyOn(JSON, 'parse');
    const big = `{"v":1,"host":"${'x'.repeat(MAX_REPORT_BYTES)}"}`;
    expect(parseReportHeader(big)).toEqual({ ok: false, reason: `report is larger than ${MAX_REPORT_BYTES} bytes` });
    expect(parse).not.toHaveBeenCalled();
  });

  it.each([
    ['not JSON', '{"v":1', /not valid JSON/],
    ['non-ASCII bytes (must be \\u-escaped)', `{"v":1,"host":"h\u00e9"}`, /printable ASCII/],
    ['a wrong protocol version', encodeReport(report()).replace('"v":1', '"v":2'), /invalid report: v:/],
    ['an unknown field (strict)', encodeReport(report()).replace('"v":1', '"v":1,"x":1'), /invalid report/],
    ['a bad instance id', encodeReport(report({ id: 'has space' })), /invalid report: id:/],
    ['a bad service name', encodeReport(report({ services: { Bad_Name: { revision: 1, source: 'hub', stale: false, error: null, schema: null } } })), /invalid report: services/],
    ['a bad schema hash', encodeReport(report({ services: { a: { revision: 1, source: 'hub', stale: false, error: null, schema: 'ABC' } } })), /invalid report: services.a.schema/],
    ['a NUL in host (PostgreSQL text cannot hold it)', encodeReport(report({ host: 'a\u0000b' })), /control characters/],
    ['a lone surrogate in client', encodeReport(report({ client: '\ud800' })), /lone surrogates/],
    ['an array', '[1,2]', /invalid report/],
  ])('refuses %s with a reason, never a throw', (_what, raw, reason) => {
    const parsed = parseReportHeader(raw);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.reason).toMatch(reason);
    expect(parsed.reason).toMatch(/^[\x20-\x7e]{1,200}$/);
  });

  it('refuses more than 100 services', () => {
    const services = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`s${i}`, { revision: 1, source: 'hub', stale: false, error: null, schema: null }]));
    expect(checkReport({ ...report(), services })).toMatchObject({ ok: false, reason: expect.stringMatching(/at most 100 services/) });
  });

  it('poll_ms sets the expiry: 3 × poll_ms within [3 s, 1 h], 180 s when 0', () => {
    const expiry = (poll_ms: number) => {
      const parsed = checkReport(report({ poll_ms }));
      return parsed.ok ? parsed.entries[0]!.expiry_ms : undefined;
    };
    expect([expiry(1000), expiry(100), expiry(0), expiry(60_000), expiry(2 ** 31)]).toEqual([3000, 3000, 180_000, 180_000, 3_600_000]);
  });

  it('headerSafe keeps reasons printable ASCII and short', () => {
    expect(headerSafe('a\r\nb\u00e9')).toBe('a??b?');
    expect(headerSafe('x'.repeat(500))).toHaveLength(200);
  });
});

describe('ReportCache', () => {
  it('repeated identical headers are parsed once and answer the same object', () => {
    const parse = vi.spyOn(JSON, 'parse');
    const cache = new ReportCache(10);
    const raw = encodeReport(report());
    const first = cache.parse(raw);
    for (let i = 0; i < 100; i++) expect(cache.parse(raw)).toBe(first);
    expect(parse).toHaveBeenCalledTimes(1);
  });

  it('bad headers are cached too (a broken client repeating one costs nothing more)', () => {
    const cache = new ReportCache(10);
    const first = cache.parse('{nope');
    expect(cache.parse('{nope')).toBe(first);
    expect(first.ok).toBe(false);
  });

  it('is bounded: past its size the oldest header goes, oversized ones are never kept', () => {
    const cache = new ReportCache(3);
    const raws = [1, 2, 3, 4].map((pid) => encodeReport(report({ pid })));
    const first = cache.parse(raws[0]!);
    for (const raw of raws.slice(1)) cache.parse(raw);
    expect(cache.size).toBe(3);
    expect(cache.parse(raws[0]!)).not.toBe(first);
    cache.parse('x'.repeat(MAX_REPORT_BYTES + 1));
    expect(cache.size).toBe(3);
    expect(() => new ReportCache(0)).toThrow(TypeError);
  });
});
