import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Authenticator, failureSource, UNAUTHORIZED_DETAIL } from '../../examples/hub/auth.js';
import { HubError } from '../../examples/hub/errors.js';

const KEY = 'canary-plaintext-key-9d2f';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function outcome(fn: () => unknown): { status: number; detail: unknown; headers: Record<string, string> } | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (!(error instanceof HubError)) throw error;
    return { status: error.status, detail: error.detail, headers: error.headers };
  }
}

describe('Authenticator', () => {
  const auth = new Authenticator({
    keys: [
      { name: 'plain', key: KEY, scopes: ['read:*'] },
      { name: 'hashed', sha256: sha('other-key'), scopes: ['read:polygon-*', 'write:polygon-*'] },
    ],
  });

  it('accepts a plaintext-configured key and a sha256-configured key', () => {
    expect(auth.authenticate(KEY, 'a').name).toBe('plain');
    expect(auth.authenticate('other-key', 'a').name).toBe('hashed');
  });

  it('answers one uniform 401 for missing, empty, unknown, prefix and array headers', () => {
    const results = [undefined, '', 'nope', KEY.slice(0, -1), `${KEY} `, [KEY, KEY]].map((h) =>
      outcome(() => auth.authenticate(h, `addr-${String(h)}`)),
    );
    for (const r of results) expect(r).toEqual({ status: 401, detail: UNAUTHORIZED_DETAIL, headers: {} });
  });

  it('scopes are globs per access', () => {
    const p = auth.authenticate('other-key', 'a');
    expect(p.can('read', 'polygon-historical-downloader')).toBe(true);
    expect(p.can('write', 'polygon-x')).toBe(true);
    expect(p.can('read', 'tick-aggregator')).toBe(false);
    expect(p.can('read', 'xpolygon-a')).toBe(false);
    const reader = auth.authenticate(KEY, 'a');
    expect(reader.can('write', 'polygon-x')).toBe(false);
  });

  it('rate limits failures per address (429 + Retry-After), then forgets after the window', () => {
    let now = 0;
    const limited = new Authenticator({ keys: [{ name: 'k', key: KEY, scopes: ['read:*'] }], failureLimit: 3, failureWindowMs: 10_000, now: () => now });
    for (let i = 0; i < 3; i++) expect(outcome(() => limited.authenticate('bad', '1.1.1.1'))).toMatchObject({ status: 401 });
    expect(outcome(() => limited.authenticate('bad', '1.1.1.1'))).toMatchObject({ status: 429, headers: { 'retry-after': '10' } });
    expect(outcome(() => limited.authenticate('bad', '2.2.2.2'))).toMatchObject({ status: 401 });
    now = 10_001;
    expect(outcome(() => limited.authenticate('bad', '1.1.1.1'))).toMatchObject({ status: 401 });
  });

  it('a valid key always passes: the failure limit never refuses it, from a limited address either (issue 10)', () => {
    let now = 0;
    const limited = new Authenticator({ keys: [{ name: 'k', key: KEY, scopes: ['read:*'] }], failureLimit: 3, globalFailureLimit: 5, now: () => now });
    for (let i = 0; i < 50; i++) outcome(() => limited.authenticate(`bad-${i}`, '1.1.1.1'));
    expect(outcome(() => limited.authenticate('bad', '1.1.1.1'))).toMatchObject({ status: 429 });
    for (let i = 0; i < 100; i++) expect(limited.authenticate(KEY, '1.1.1.1').name).toBe('k');
    now = 30_000;
    expect(limited.authenticate(KEY, '1.1.1.1').name).toBe('k');
  });

  it('only failures count: successes neither use up nor reset the failure budget', () => {
    const limited = new Authenticator({ keys: [{ name: 'k', key: KEY, scopes: ['read:*'] }], failureLimit: 3, now: () => 0 });
    for (let i = 0; i < 1000; i++) limited.authenticate(KEY, '1.1.1.1');
    for (let i = 0; i < 3; i++) {
      expect(outcome(() => limited.authenticate('bad', '1.1.1.1'))).toMatchObject({ status: 401 });
      limited.authenticate(KEY, '1.1.1.1');
    }
    expect(outcome(() => limited.authenticate('bad', '1.1.1.1'))).toMatchObject({ status: 429 });
  });

  it('more source addresses do not get around the limit: a hub-wide failure budget, and one bucket per IPv6 /64', () => {
    const limited = new Authenticator({ keys: [{ name: 'k', key: KEY, scopes: ['read:*'] }], failureLimit: 3, globalFailureLimit: 10, now: () => 0 });
    const statuses = Array.from({ length: 40 }, (_, i) => outcome(() => limited.authenticate('bad', `10.0.0.${i}`)));
    expect(statuses.filter((s) => s !== 'ok' && s.status === 401)).toHaveLength(10);
    expect(statuses.slice(10).every((s) => s !== 'ok' && s.status === 429)).toBe(true);
    expect(limited.authenticate(KEY, '10.0.0.99').name).toBe('k');

    const v6 = new Authenticator({ keys: [{ name: 'k', key: KEY, scopes: ['read:*'] }], failureLimit: 3, now: () => 0 });
    const rotated = Array.from({ length: 6 }, (_, i) => outcome(() => v6.authenticate('bad', `2001:db8:1:2::${i + 1}`)));
    expect(rotated.map((s) => (s === 'ok' ? 200 : s.status))).toEqual([401, 401, 401, 429, 429, 429]);
    expect(outcome(() => v6.authenticate('bad', '2001:db8:1:3::1'))).toMatchObject({ status: 401 });
  });

  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002::9', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1', 'fe80:0:0:0::/64'],
  ])('failureSource(%s) = %s', (address, bucket) => {
    expect(failureSource(address)).toBe(bucket);
  });

  it('keeps no plaintext key where it could be printed', () => {
    expect(inspect(auth, { depth: 10, showHidden: true })).not.toContain(KEY);
    expect(JSON.stringify(auth)).not.toContain(KEY);
  });

  it('rejects bad configuration at construction', () => {
    expect(() => new Authenticator({ keys: [{ name: 'x', scopes: ['read:*'] }] })).toThrow();
    expect(() => new Authenticator({ keys: [{ name: 'x', key: 'k', sha256: sha('k'), scopes: [] }] })).toThrow();
    expect(() => new Authenticator({ keys: [{ name: 'x', key: 'k', scopes: ['admin:*'] }] })).toThrow();
    expect(() => new Authenticator({ keys: [{ name: 'x', sha256: 'abc', scopes: [] }] })).toThrow();
  });
});
