/**
 * Notices published by the test itself on the shared nats-server (issue 4 §4; RELIABILITY B6, N8, S8, S10).
 * The hub here has no NATS, so every notice the client sees is one this file wrote; the hub counts the GETs
 * each notice costs.
 * - the exact payload of the original Python hub (config as a JSON string, version "1.0.0", no revision)
 *   → one refresh, one onChange, and copies of it change nothing;
 * - malformed, foreign, older, same-revision and `__proto__` notices → no throw, no unhandled rejection,
 *   no onChange, no prototype pollution, a bounded number of GETs;
 * - a 10 000-notice burst about one real change → one onChange, at most 3 GETs.
 */
import type { NatsConnection } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigClient } from '../../src/client.js';
import {
  Lab,
  ms,
  publishJson,
  type Recorded,
  record,
  SHARED_NATS,
  sleep,
  subject,
  type TestHub,
  uniqueService,
  waitUntil,
  watchProcessFaults,
} from '../helpers/hot-reload/index.js';

const lab = new Lab();
afterEach(() => lab.cleanup());

const enc = (text: string): Uint8Array => new TextEncoder().encode(text);

interface Setup {
  hub: TestHub;
  nc: NatsConnection;
  service: string;
  client: ConfigClient;
  rec: Recorded;
  revision: number;
  updatedAt: number;
}

async function setup(initial: Record<string, unknown>): Promise<Setup> {
  const hub = await lab.hub();
  const nc = await lab.nats();
  const service = uniqueService();
  const answer = await hub.post(service, initial);
  const client = lab.client({
    hubUrl: hub.url,
    services: { [service]: {} },
    nats: { servers: SHARED_NATS },
    pollIntervalMs: 600_000,
  });
  const rec = record(client, service);
  expect(await client.get(service)).toEqual(initial);
  await waitUntil('NATS state connected', () => client.status(service).nats === 'connected');
  // The client resyncs once subscribed (one conditional GET): let it finish before counting GETs.
  await hub.settle(service);
  return { hub, nc, service, client, rec, revision: answer.body.revision!, updatedAt: answer.body.updated_at! };
}

describe('a notice in the original Python hub format', () => {
  it('refreshes and fires onChange exactly once; copies of the notice change nothing', async () => {
    const { hub, nc, service, client, rec } = await setup({ rate: 1, region: 'eu' });
    const next = { rate: 2, region: 'eu', burst: { size: 3 } };
    const answer = await hub.post(service, next);
    expect(answer.body.broadcast).toBe('unavailable');
    const gets = hub.gets(service);
    // Exactly what the original hub publishes: config as a JSON-encoded string, a constant version, no revision.
    const notice = {
      service_name: service,
      config: JSON.stringify(next),
      version: '1.0.0',
      updated_at: answer.body.updated_at,
      updated_by: 'admin',
    };
    const published = performance.now();
    publishJson(nc, service, notice);
    await nc.flush();
    await waitUntil('the refresh the notice asked for', () => rec.changes.length === 1, 5_000, 1);
    const { change, at } = rec.changes[0]!;
    expect(rec.changes[0]!.next).toEqual(next);
    expect(change.source).toBe('nats');
    // An added object is one changed path (its root), as `changedPaths` reports added subtrees.
    expect(change.changedPaths).toEqual(['burst', 'rate']);
    // The client refetched from the hub (the notice is only a hint): the hub's revision, not the notice's.
    expect(change.revision).toBe(answer.body.revision);
    expect(hub.gets(service) - gets).toBe(1);

    // The same notice again (NATS redelivery, a second publisher): the same change, nothing to do.
    const getsAfter = hub.gets(service);
    for (let i = 0; i < 5; i++) publishJson(nc, service, notice);
    await nc.flush();
    await sleep(300);
    expect(rec.changes).toHaveLength(1);
    expect(hub.gets(service)).toBe(getsAfter);
    expect(await client.get(service)).toEqual(next);
    expect(rec.errors).toEqual([]);
    console.log(`[hot-reload] Python-format notice → onChange ${ms(at - published)}`);
  });
});

describe('malformed and hostile notices', () => {
  it('are dropped and reported: no throw, no unhandled rejection, no onChange, no pollution, bounded GETs', async () => {
    const faults = watchProcessFaults();
    try {
      const initial = { feature: { on: true }, n: 1 };
      const { hub, nc, service, client, rec, revision, updatedAt } = await setup(initial);
      const gets = hub.gets(service);
      const raw: Array<[string, Uint8Array]> = [
        ['non-UTF-8 bytes', new Uint8Array([0xff, 0xfe, 0x00, 0x80])],
        ['empty', new Uint8Array(0)],
        ['not JSON', enc('{"service_name":')],
        ['null', enc('null')],
        ['[]', enc('[]')],
        ['a string', enc('"config changed"')],
        ['{}', enc('{}')],
        ['another service', enc(JSON.stringify({ service_name: `${service}-other`, config: { n: 2 }, revision: revision + 1 }))],
        ['bad service name', enc(JSON.stringify({ service_name: '../etc', revision: revision + 1 }))],
        ['revision not a number', enc(JSON.stringify({ service_name: service, revision: 'latest' }))],
        ['config an array', enc(JSON.stringify({ service_name: service, config: [1, 2], revision: revision + 1 }))],
        ['config a non-JSON string', enc(JSON.stringify({ service_name: service, config: '{oops', revision: revision + 1 }))],
      ];
      const invalid = raw.length;
      const valid: Array<[string, string]> = [
        ['older revision', JSON.stringify({ service_name: service, config: { n: -1 }, revision: revision - 1, updated_at: updatedAt - 1000 })],
        ['older updated_at, no revision', JSON.stringify({ service_name: service, config: { n: -2 }, updated_at: updatedAt - 1000 })],
        ['same revision, same content', JSON.stringify({ service_name: service, config: initial, revision, updated_at: updatedAt })],
        // Raw text: JSON.parse makes `__proto__` an own key, exactly what a hostile publisher would send.
        ['__proto__ in config', `{"service_name":"${service}","revision":${revision},"updated_at":${updatedAt},"config":{"__proto__":{"polluted":"yes"},"feature":{"on":true},"n":1}}`],
        ['__proto__ at the top', `{"__proto__":{"polluted":"yes"},"service_name":"${service}","revision":${revision}}`],
        ['constructor.prototype', `{"service_name":"${service}","revision":${revision},"config":{"constructor":{"prototype":{"polluted":"yes"}},"n":1}}`],
        ['nested __proto__', `{"service_name":"${service}","revision":${revision},"config":{"feature":{"__proto__":{"polluted":"yes"},"on":true},"n":1}}`],
      ];
      for (const [, bytes] of raw) nc.publish(subject(service), bytes);
      for (const [, text] of valid) nc.publish(subject(service), enc(text));
      // The same revision with other content, 50 times: checked against the hub once, not 50 times.
      for (let i = 0; i < 50; i++) publishJson(nc, service, { service_name: service, revision, updated_at: updatedAt, config: { n: 1000 + i } });
      await nc.flush();
      await waitUntil('every invalid notice to be reported', () => rec.errors.filter((e) => e.code === 'NOTICE_INVALID').length >= invalid, 5_000);
      await sleep(500);

      expect(faults.faults).toEqual([]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
      expect(rec.changes).toEqual([]);
      expect(await client.get(service)).toEqual(initial);
      expect(client.status(service)).toMatchObject({ revision, stale: false, source: 'hub', nats: 'connected' });
      const reported = rec.errors.map((e) => e.code);
      expect(reported.filter((c) => c === 'NOTICE_INVALID')).toHaveLength(invalid);
      expect(reported.filter((c) => c !== 'NOTICE_INVALID')).toEqual([]);
      // The same-revision-other-content check (one GET, a second at most when it raced the first copies).
      const spent = hub.gets(service) - gets;
      expect(spent).toBeGreaterThanOrEqual(1);
      expect(spent).toBeLessThanOrEqual(2);

      // The client still works: a real change after all that arrives, once.
      const answer = await hub.post(service, { feature: { on: false }, n: 1 });
      publishJson(nc, service, { service_name: service, revision: answer.body.revision, updated_at: answer.body.updated_at });
      await nc.flush();
      await waitUntil('the real change', () => rec.changes.length === 1, 5_000);
      expect(rec.changes[0]!.change.changedPaths).toEqual(['feature.on']);
      await sleep(200);
      expect(rec.changes).toHaveLength(1);
      expect(faults.faults).toEqual([]);
      console.log(`[hot-reload] ${invalid} malformed + ${valid.length + 50} stale/hostile notices: ${spent} GET(s), 0 onChange`);
    } finally {
      faults.stop();
    }
  });

  it('a 10 000-notice burst about one real change: one onChange, at most 3 GETs', async () => {
    const faults = watchProcessFaults();
    try {
      const { hub, nc, service, client, rec } = await setup({ limit: 1, mode: 'steady' });
      const next = { limit: 2, mode: 'steady' };
      const answer = await hub.post(service, next);
      const gets = hub.gets(service);
      const reference = {
        service_name: service,
        config: next,
        version: answer.body.version,
        updated_at: answer.body.updated_at,
        updated_by: 'admin',
        revision: answer.body.revision,
        action: 'updated',
      };
      const python = { ...reference, config: JSON.stringify(next), version: '1.0.0', revision: undefined, action: undefined };
      const referenceBytes = enc(JSON.stringify(reference));
      const pythonBytes = enc(JSON.stringify(python));
      const started = performance.now();
      for (let i = 0; i < 10_000; i++) nc.publish(subject(service), i % 2 === 0 ? referenceBytes : pythonBytes);
      await nc.flush();
      const flushed = performance.now();
      await waitUntil('the change', () => rec.changes.length === 1, 5_000, 1);
      await sleep(500);
      expect(rec.changes).toHaveLength(1);
      expect(rec.changes[0]!.next).toEqual(next);
      expect(rec.changes[0]!.change).toMatchObject({ source: 'nats', revision: answer.body.revision, changedPaths: ['limit'] });
      const spent = hub.gets(service) - gets;
      expect(spent).toBeGreaterThanOrEqual(1);
      // One refresh in flight plus one queued: never one GET per notice.
      expect(spent).toBeLessThanOrEqual(3);
      expect(rec.errors).toEqual([]);
      expect(faults.faults).toEqual([]);
      expect(client.status(service).nats).toBe('connected');
      console.log(`[hot-reload] 10 000-notice burst (published in ${ms(flushed - started)}): ${spent} GET(s), 1 onChange`);
    } finally {
      faults.stop();
    }
  });

  it('a 10 000-notice burst of forged, ever newer revisions: no onChange, GETs bounded by single flight', async () => {
    const faults = watchProcessFaults();
    try {
      const initial = { limit: 1 };
      const { hub, nc, service, client, rec, revision } = await setup(initial);
      const gets = hub.gets(service);
      const started = performance.now();
      for (let i = 1; i <= 10_000; i++) publishJson(nc, service, { service_name: service, revision: revision + i, config: { limit: 666 } });
      await nc.flush();
      await waitUntil('the refreshes to settle', async () => {
        const before = hub.gets(service);
        await sleep(200);
        return hub.gets(service) === before;
      });
      const elapsed = performance.now() - started;
      const spent = hub.gets(service) - gets;
      // A forged notice changes nothing by itself (S8): the client asks the hub, which says nothing changed.
      expect(rec.changes).toEqual([]);
      expect(await client.get(service)).toEqual(initial);
      expect(client.status(service).revision).toBe(revision);
      expect(faults.faults).toEqual([]);
      // No GET per notice: at most one in flight plus one queued, so far fewer GETs than notices.
      expect(spent).toBeLessThan(500);
      console.log(`[hot-reload] 10 000 forged newer-revision notices: ${spent} GET(s) over ${ms(elapsed)}, 0 onChange`);
    } finally {
      faults.stop();
    }
  });
});
