/** The fleet's pure rules (examples/hub/fleet/rules.ts): expiry windows and the summary of a fleet view. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expiryMs, instanceState, MAX_EXPIRY_MS, MIN_EXPIRY_MS, NO_POLL_EXPIRY_MS, summarize } from '../../examples/hub/fleet/rules.js';

describe('expiryMs', () => {
  it('caps the expiry window at 1 h: a report cannot make the hub keep an instance longer', () => {
    expect(MAX_EXPIRY_MS).toBe(3_600_000);
    expect(expiryMs(24 * 3_600_000)).toBe(3_600_000);
    expect(expiryMs(2 ** 31)).toBe(3_600_000);
  });

  it('is 3 × poll_ms, bounded to [3 s, 1 h], and 180 s for an instance that does not poll', () => {
    expect(expiryMs(1000)).toBe(3000);
    expect(expiryMs(20_000)).toBe(60_000);
    expect(expiryMs(999)).toBe(MIN_EXPIRY_MS);
    expect(expiryMs(1)).toBe(MIN_EXPIRY_MS);
    expect(expiryMs(3_600_000)).toBe(MAX_EXPIRY_MS);
    expect(expiryMs(1_200_000)).toBe(3_600_000);
    expect(expiryMs(1_200_001)).toBe(3_600_000);
    expect(expiryMs(2 ** 31)).toBe(MAX_EXPIRY_MS);
    expect(expiryMs(0)).toBe(NO_POLL_EXPIRY_MS);
    expect(expiryMs(Number.NaN)).toBe(NO_POLL_EXPIRY_MS);
  });

  it('always lies within the bounds (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (poll) => {
        const e = expiryMs(poll);
        return e >= MIN_EXPIRY_MS && e <= MAX_EXPIRY_MS && (poll === 0 || e === Math.min(MAX_EXPIRY_MS, Math.max(MIN_EXPIRY_MS, 3 * poll)));
      }),
    );
  });
});

describe('summarize', () => {
  it('rejected beats the revision; on_latest is the current revision; everything else is behind', () => {
    expect(instanceState({ revision: 5, last_error: 'CONFIG_INVALID' }, 5)).toBe('rejected');
    expect(instanceState({ revision: 5, last_error: null }, 5)).toBe('on_latest');
    expect(instanceState({ revision: 5, last_error: 'HUB_UNAVAILABLE' }, 5)).toBe('on_latest');
    expect(instanceState({ revision: 4, last_error: null }, 5)).toBe('behind');
    expect(instanceState({ revision: null, last_error: null }, 5)).toBe('behind');
    // No config (deleted, never written): nobody is on the latest.
    expect(instanceState({ revision: 5, last_error: null }, null)).toBe('behind');
    expect(instanceState({ revision: null, last_error: null }, null)).toBe('behind');
  });

  it('counts instances, or groups of instances alike', () => {
    expect(
      summarize(
        [
          { revision: 7, last_error: null },
          { revision: 7, last_error: null, count: 3 },
          { revision: 6, last_error: null, count: 2 },
          { revision: 6, last_error: 'CONFIG_INVALID' },
        ],
        7,
      ),
    ).toEqual({ total: 7, on_latest: 4, behind: 2, rejected: 1 });
    expect(summarize([], 1)).toEqual({ total: 0, on_latest: 0, behind: 0, rejected: 0 });
  });

  it('total is always on_latest + behind + rejected (fast-check)', () => {
    const instance = fc.record({
      revision: fc.option(fc.integer({ min: 0, max: 5 })),
      last_error: fc.constantFrom(null, 'CONFIG_INVALID', 'HUB_UNAVAILABLE'),
      count: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(fc.array(instance), fc.option(fc.integer({ min: 0, max: 5 })), (list, current) => {
        const s = summarize(list, current);
        return s.total === s.on_latest + s.behind + s.rejected && s.total === list.reduce((n, i) => n + i.count, 0);
      }),
    );
  });
});
