/**
 * Signed notices end to end (issue 10): the real reference hub signs with Ed25519 (buildHub
 * noticeSigningKey/noticeKeyId), publishes through the shared nats-server, and
 * - a NatsWatcher with the hub's public key delivers the notice with verified = true, while an unsigned or
 *   tampered copy on the same subject arrives as verified = false and is reported once (NOTICE_UNVERIFIED);
 * - a real ConfigClient with nats.verifyKeys applies the verified payload (onChange) without asking the
 *   hub again, and a tampered one never becomes its value.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigError } from '../../src/errors.js';
import type { Notice } from '../../src/hub/wire.js';
import { NatsWatcher } from '../../src/watch/nats-watcher.js';
import { Lab, publishJson, record, SHARED_NATS, sleep, uniqueService, waitUntil } from '../helpers/hot-reload/index.js';

const lab = new Lab();
afterEach(() => lab.cleanup());

const KID = 'hub-test-1';
function hubKeys(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

describe('notices signed by the reference hub', () => {
  it('T2: reach the watcher as verified; unsigned and tampered copies as unverified hints, reported once each', async () => {
    const keys = hubKeys();
    const hub = await lab.hub({ natsUrl: SHARED_NATS, noticeSigningKey: keys.privatePem, noticeKeyId: KID });
    expect(hub.hub.noticeSigner?.keyId).toBe(KID);
    await hub.natsReady();
    const service = uniqueService('sig');
    const seen: Array<{ notice: Notice; verified: boolean }> = [];
    const invalid: ConfigError[] = [];
    const watcher = new NatsWatcher({
      services: [service],
      servers: SHARED_NATS,
      verifyKeys: { [KID]: keys.publicPem },
      onNotice: (_s, notice, verified) => seen.push({ notice, verified }),
      onInvalidNotice: (_s, error) => invalid.push(error),
      onResync: () => {},
    });
    lab.defer('watcher', () => watcher.close());
    await watcher.start();

    const answer = await hub.post(service, { operational: { batch_size: 150 } });
    expect(answer.body.broadcast).toBe('sent');
    await waitUntil('the signed notice', () => seen.length === 1, 5_000);
    expect(seen[0]?.verified).toBe(true);
    expect(seen[0]?.notice).toMatchObject({ service_name: service, config: { operational: { batch_size: 150 } }, kid: KID, revision: answer.body.revision });
    expect(seen[0]?.notice.sig).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(invalid).toEqual([]);

    // Someone else publishes on the subject: an unsigned notice, and the hub's notice with its config changed.
    const nc = await lab.nats();
    const genuine = seen[0]!.notice;
    publishJson(nc, service, { service_name: service, config: { operational: { batch_size: 1 } }, revision: 99 });
    publishJson(nc, service, { ...genuine, config: { operational: { batch_size: 1 } } });
    await nc.flush();
    await waitUntil('the two forged notices', () => seen.length === 3, 5_000);
    expect(seen.slice(1).map((s) => s.verified)).toEqual([false, false]);
    expect(invalid.map((e) => e.code)).toEqual(['NOTICE_UNVERIFIED', 'NOTICE_UNVERIFIED']);
    expect(invalid[0]?.message).toMatch(/is not signed/);
    expect(invalid[1]?.message).toMatch(/does not verify/);
  });

  it('T2: a ConfigClient with nats.verifyKeys applies a verified notice without refetching; a tampered one never becomes its value', async () => {
    const keys = hubKeys();
    const hub = await lab.hub({ natsUrl: SHARED_NATS, noticeSigningKey: keys.privatePem, noticeKeyId: KID });
    await hub.natsReady();
    const service = uniqueService('sig');
    await hub.post(service, { rate: 1 });
    const client = lab.client({
      hubUrl: hub.url,
      services: { [service]: {} },
      nats: { servers: SHARED_NATS, verifyKeys: { [KID]: keys.publicPem } },
      pollIntervalMs: false,
    });
    const rec = record(client, service);
    expect(await client.get(service)).toEqual({ rate: 1 });
    await waitUntil('NATS connected', () => client.status(service).nats === 'connected', 5_000);
    const getsBefore = await hub.settle(service);

    await hub.post(service, { rate: 2 });
    await waitUntil('onChange from the signed notice', () => rec.changes.length === 1, 5_000);
    expect(rec.changes[0]?.next).toEqual({ rate: 2 });
    await sleep(200);
    expect(hub.gets(service)).toBe(getsBefore); // applied from the verified payload: no GET
    expect(rec.errors).toEqual([]);

    // A tampered copy of a genuine signed notice: reported, and the hub (asked because of the hint) keeps rate 2.
    const nc = await lab.nats();
    const sub = nc.subscribe(`config.update.${service}`, { max: 1 });
    await nc.flush();
    await hub.post(service, { rate: 3 });
    let genuine: Record<string, unknown> | undefined;
    for await (const m of sub) genuine = m.json<Record<string, unknown>>();
    await waitUntil('rate 3', () => rec.changes.length === 2, 5_000);
    publishJson(nc, service, { ...genuine, config: { rate: 666 }, revision: Number(genuine?.revision) + 1 });
    await nc.flush();
    await waitUntil('NOTICE_UNVERIFIED on onError', () => rec.errors.some((e) => e.code === 'NOTICE_UNVERIFIED'), 5_000);
    await sleep(300);
    expect(await client.get(service)).toEqual({ rate: 3 });
    expect(rec.changes.map((c) => c.next)).toEqual([{ rate: 2 }, { rate: 3 }]);
  });

  it('T2: without verifyKeys the signed notices of the hub are plain hints (refetch), as before', async () => {
    const keys = hubKeys();
    const hub = await lab.hub({ natsUrl: SHARED_NATS, noticeSigningKey: keys.privatePem, noticeKeyId: KID });
    await hub.natsReady();
    const service = uniqueService('sig');
    await hub.post(service, { rate: 1 });
    const client = lab.client({ hubUrl: hub.url, services: { [service]: {} }, nats: { servers: SHARED_NATS }, pollIntervalMs: false });
    const rec = record(client, service);
    expect(await client.get(service)).toEqual({ rate: 1 });
    await waitUntil('NATS connected', () => client.status(service).nats === 'connected', 5_000);
    const getsBefore = await hub.settle(service);
    await hub.post(service, { rate: 2 });
    await waitUntil('onChange', () => rec.changes.length === 1, 5_000);
    expect(hub.gets(service)).toBeGreaterThan(getsBefore);
    expect(rec.errors).toEqual([]);
  });
});
