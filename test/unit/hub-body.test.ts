import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findSecretPaths, parseJsonBody, secretKeyMatcher } from '../../examples/hub/body.js';
import { HubError } from '../../examples/hub/errors.js';

const status = (fn: () => unknown): number | 'ok' => {
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (error instanceof HubError) return error.status;
    throw error;
  }
};

describe('parseJsonBody', () => {
  it('accepts plain JSON and rejects invalid JSON with 400', () => {
    expect(parseJsonBody('{"a":[1,{"b":null}]}')).toEqual({ a: [1, { b: null }] });
    expect(status(() => parseJsonBody('{'))).toBe(400);
    expect(status(() => parseJsonBody('NaN'))).toBe(400);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('rejects a %s key at any depth', (key) => {
    expect(status(() => parseJsonBody(`{"${key}":1}`))).toBe(400);
    expect(status(() => parseJsonBody(`{"a":[{"b":{"${key}":{}}}]}`))).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects non-finite numbers and nesting deeper than the limit, without blowing the stack', () => {
    expect(status(() => parseJsonBody('{"a":1e309}'))).toBe(400);
    expect(status(() => parseJsonBody(`${'['.repeat(200_000)}${']'.repeat(200_000)}`))).toBe(400);
    expect(status(() => parseJsonBody(`${'{"a":'.repeat(64)}1${'}'.repeat(64)}`))).toBe('ok');
    expect(status(() => parseJsonBody(`${'{"a":'.repeat(65)}1${'}'.repeat(65)}`))).toBe(400);
    expect(status(() => parseJsonBody(`${'{"a":'.repeat(3)}1${'}'.repeat(3)}`, 2))).toBe(400);
  });

  it('never throws anything but a 400 HubError, and never pollutes prototypes (fast-check)', () => {
    const outcomes = { ok: 0, refused: 0 };
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null')), (text) => {
        const s = status(() => parseJsonBody(text));
        if (s === 'ok') outcomes.ok++;
        else if (s === 400) outcomes.refused++;
        expect(s === 'ok' || s === 400).toBe(true);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 500 },
    );
    // Liveness (issue 9): all runs executed, and both outcomes were exercised.
    expect(outcomes.ok + outcomes.refused, 'property runs executed').toBe(500);
    expect(outcomes.ok, 'bodies parsed').toBeGreaterThan(0);
    expect(outcomes.refused, 'bodies refused').toBeGreaterThan(0);
  });
});

describe('secret detection', () => {
  const isSecret = secretKeyMatcher();

  it.each(['password', 'DB_PASSWORD', 'clientSecret', 'auth-token', 'private_key', 'privateKey', 'api_key', 'apiKey', 'API-KEY', 'credentials', 'passwd'])(
    '%s looks like a secret',
    (key) => {
      expect(isSecret(key)).toBe(true);
    },
  );

  it.each(['batch_size', 'gap_check_interval_hours', 'enable_auto_backfill', 'timeframes', 'host', 'max_retries'])(
    '%s does not',
    (key) => {
      expect(isSecret(key)).toBe(false);
    },
  );

  it('reports dotted paths, inside arrays too, and PEM private keys as values', () => {
    expect(findSecretPaths({ db: { password: 'x' }, list: [{ token: 1 }], pem: '-----BEGIN PRIVATE KEY-----\n' }, isSecret)).toEqual([
      'db.password',
      'list[0].token',
      'pem',
    ]);
    expect(findSecretPaths({ operational: { batch_size: 1 } }, isSecret)).toEqual([]);
  });

  it('the list is configurable', () => {
    const custom = secretKeyMatcher(['dsn']);
    expect(custom('sentry_dsn')).toBe(true);
    expect(custom('password')).toBe(false);
  });

  it('the seed configs contain no secret-looking keys', async () => {
    const { loadSeed } = await import('../../examples/hub/seed.js');
    for (const entry of await loadSeed()) expect(findSecretPaths(entry.config, isSecret)).toEqual([]);
  });
});
