import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Authenticator, UNAUTHORIZED_DETAIL } from '../../examples/hub/auth.js';
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
    expect(outcome(() => limited.authenticate(KEY, '1.1.1.1'))).toMatchObject({ status: 429, headers: { 'retry-after': '10' } });
    expect(limited.authenticate(KEY, '2.2.2.2').name).toBe('k');
    now = 10_001;
    expect(limited.authenticate(KEY, '1.1.1.1').name).toBe('k');
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
