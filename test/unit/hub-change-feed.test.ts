import { describe, expect, it } from 'vitest';
import { CHANGE_CHANNEL, ChangeFeed, type ChangeNotice } from '../../examples/hub/store/change-feed.js';
import type { ListenHandlers } from '../../examples/hub/store/sql-driver.js';

/** The feed's reading of NOTIFY payloads, over a driver whose session the test drives (the integration tests use PostgreSQL). */
async function feedWith(schema: string) {
  let handlers: ListenHandlers | undefined;
  const notices: ChangeNotice[] = [];
  const states: boolean[] = [];
  const feed = new ChangeFeed({
    driver: {
      listen: async (channel, h) => {
        expect(channel).toBe(CHANGE_CHANNEL);
        handlers = h;
        return { schema, ping: async () => {}, close: async () => {} };
      },
    },
    onChange: (n) => notices.push(n),
    onState: (s) => states.push(s),
    pingIntervalMs: 60_000,
  });
  await feed.start();
  return { feed, notices, states, notify: (payload: string) => handlers!.onNotify(payload), lose: (e: Error) => handlers!.onLost(e) };
}

describe('hub change feed', () => {
  it('reads a service change; ignores other schemas; an unreadable payload drops everything; a lost session says so', async () => {
    const t = await feedWith('hub');
    expect(t.states).toEqual([true]);
    t.notify(JSON.stringify({ schema: 'hub', service: 'a', revision: 3, updated_at: 1700 }));
    t.notify(JSON.stringify({ schema: 'other', service: 'a', revision: 9, updated_at: 1 }));
    t.notify(JSON.stringify({ schema: 'hub', service: 'b', revision: null, updated_at: null }));
    t.notify(JSON.stringify({ schema: 'hub', all: true }));
    for (const bad of ['not json', '42', 'null', JSON.stringify({ schema: 'hub', service: 7 })]) t.notify(bad);
    expect(t.notices).toEqual([
      { kind: 'service', service: 'a', revision: 3, updatedAt: 1700 },
      { kind: 'service', service: 'b', revision: null, updatedAt: null },
      { kind: 'all', reason: 'truncate' },
      { kind: 'all', reason: 'unreadable' },
      { kind: 'all', reason: 'unreadable' },
      { kind: 'all', reason: 'unreadable' },
      { kind: 'all', reason: 'unreadable' },
    ]);
    t.lose(new Error('connection reset'));
    expect(t.states).toEqual([true, false]);
    expect(t.feed.health()).toMatchObject({ listening: false, lost: 1, notifications: 8, last_error: 'connection reset' });
    await t.feed.close();
  });
});
