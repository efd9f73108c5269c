/**
 * Hostile and odd notices through a real NATS (the shared server on 4222, unique subjects per test) to a
 * client whose hub is the msw bridge: B6 bad notices, S8 forged notices, S10 prototype pollution via a
 * notice, a snapshot file and a hub body (client side).
 */
import type { ServicesMap } from '../../src/options.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { delay, HttpResponse, http } from 'msw';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigClient, type ConfigClientOptions, type ConfigError } from '../../src/index.js';
import { parseNotice } from '../../src/watch/notice.js';
import { hubDoc as doc, uniqueService } from '../helpers/chaos.js';
import { useMswClients } from '../helpers/msw-clients.js';
import { recordFigure } from './figures.js';
import { expectLive } from './liveness.js';

const HUB = 'http://hub.test';
const SHARED_NATS = 'nats://127.0.0.1:4222';

let nc: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: SHARED_NATS });
});
afterAll(async () => {
  await nc.close();
});
const lab = useMswClients('chaos-notices-');

function makeClient(service: string, overrides: Partial<ConfigClientOptions> = {}, applyPayload = false) {
  const client = new ConfigClient({
    hubUrl: HUB,
    apiKey: 'chaos-key',
    snapshotDir: lab.snapshotDir,
    pollIntervalMs: false,
    cacheTtlMs: 600_000,
    transport: { dispatcher: lab.agent, retryBaseDelayMs: 1, retryMaxDelayMs: 5 },
    recovery: { minDelayMs: 20, maxDelayMs: 50 },
    nats: { servers: SHARED_NATS, applyPayload },
    ...overrides,
    services: { [service]: { defaults: { mode: 'default' } } },
  });
  lab.clients.push(client);
  return client;
}

const route = (resolver: Parameters<typeof http.get>[1]) => http.get(`${HUB}/api/v1/config/:service`, resolver);

async function connected<S extends ServicesMap>(client: ConfigClient<S>, service: keyof S & string) {
  await client.get(service);
  await vi.waitFor(() => expect(client.status(service).nats).toBe('connected'));
}

/** Publishes, then a sentinel round trip so the client has processed everything before it. */
async function publishAll(subject: string, payloads: (string | Uint8Array)[]) {
  for (const p of payloads) nc.publish(subject, p);
  await nc.flush();
  await delay(150);
}

describe('notices', () => {
  it('B6: empty, non-JSON, null, [], another service, older revision, same revision other content, __proto__, oversize → ignored and reported', async () => {
    const service = uniqueService('B6');
    const other = uniqueService('B6other');
    const subject = `config.update.${service}`;
    let fetches = 0;
    lab.agent.use(
      route(() => {
        fetches++;
        return HttpResponse.json(doc(service, { mode: 'hub' }, 5));
      }),
    );
    const client = makeClient(service, {}, true);
    const errors: ConfigError[] = [];
    client.onError((e) => errors.push(e));
    const changes: unknown[] = [];
    client.onChange(service, (n) => {
      changes.push(n);
    });
    await connected(client, service);
    await delay(100); // the subscribe-time resync (if any) settles first
    const baseline = fetches;
    const invalid: Record<string, string | Uint8Array> = {
      empty: '',
      'non-JSON': 'not json {',
      null: 'null',
      array: '[]',
      number: '42',
      'bad UTF-8': new Uint8Array([0xff, 0xfe, 0x7b]),
      'another service': JSON.stringify(doc(other, { mode: 'other' }, 9)),
      'bad service name': JSON.stringify({ service_name: '../etc', revision: 9 }),
      'negative revision': JSON.stringify({ service_name: service, revision: -1 }),
    };
    await publishAll(subject, Object.values(invalid));
    const reportedInvalid = errors.filter((e) => e.code === 'NOTICE_INVALID').length;
    // Oversize: nats-server's own max_payload (1 MiB) refuses it before the wire, so the client's byte limit
    // is exercised on the watcher's parse step directly, with a 2 MiB payload.
    const oversize = parseNotice(service, new TextEncoder().encode(JSON.stringify({ service_name: service, revision: 99, config: { big: 'x'.repeat(2 * 1024 * 1024) } })));
    expect(oversize.ok).toBe(false);
    expect(!oversize.ok && oversize.error.code).toBe('NOTICE_INVALID');
    expect(reportedInvalid).toBe(Object.keys(invalid).length);
    expectLive('B6', 'bad notices delivered and reported (NOTICE_INVALID)', reportedInvalid, Object.keys(invalid).length);
    expect(fetches).toBe(baseline);
    // Valid but not to be applied: older revision, same revision (same content), __proto__ keys.
    await publishAll(subject, [
      JSON.stringify(doc(service, { mode: 'older' }, 3)),
      JSON.stringify(doc(service, { mode: 'hub' }, 5)),
      `{"service_name":"${service}","revision":4,"updated_at":1760000000004,"config":{"__proto__":{"polluted":"yes"}}}`,
    ]);
    expect(fetches).toBe(baseline);
    // Same revision, other content, 5 copies → the hub is asked at most once.
    await publishAll(
      subject,
      Array.from({ length: 5 }, () => JSON.stringify(doc(service, { mode: 'conflicting' }, 5))),
    );
    const sameRevisionFetches = fetches - baseline;
    expect(sameRevisionFetches).toBeLessThanOrEqual(1);
    expect(await client.get(service)).toEqual({ mode: 'hub' });
    expect(changes).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    recordFigure({ row: 'B6', name: `bad notices applied or thrown (${Object.keys(invalid).length + 4} kinds)`, value: changes.length, unit: 'count' });
    recordFigure({ row: 'B6', name: 'invalid notices reported', value: `${reportedInvalid}/${Object.keys(invalid).length}` });
    recordFigure({ row: 'B6', name: 'fetches for 5 same-revision/other-content notices', value: sameRevisionFetches, unit: 'count' });
  });

  it('S8: a forged notice from a rogue publisher changes nothing by itself (notice → authenticated refetch)', async () => {
    const service = uniqueService('S8');
    let fetches = 0;
    lab.agent.use(
      route(({ request }) => {
        fetches++;
        expect(request.headers.get('x-api-key')).toBe('chaos-key');
        return HttpResponse.json(doc(service, { mode: 'genuine' }, 2));
      }),
    );
    const client = makeClient(service); // applyPayload: false (the default)
    await connected(client, service);
    await delay(100);
    const baseline = fetches;
    const forged = Array.from({ length: 20 }, (_, i) => JSON.stringify(doc(service, { mode: 'forged', admin: true }, 100 + i)));
    await publishAll(`config.update.${service}`, forged);
    await vi.waitFor(() => expect(fetches).toBeGreaterThan(baseline));
    await delay(100);
    const cfg = await client.get(service);
    const applied = cfg.mode === 'forged' ? 1 : 0;
    expect(cfg).toEqual({ mode: 'genuine' });
    expect(client.status(service).revision).toBe(2);
    // One in flight + one queued: 20 forged notices cost at most a handful of fetches.
    expect(fetches - baseline).toBeLessThanOrEqual(20);
    expectLive('S8', 'authenticated refetches the forged notices caused (they were delivered)', fetches - baseline);
    recordFigure({ row: 'S8', name: 'forged values applied (20 forged notices)', value: applied, unit: 'count' });
    recordFigure({ row: 'S8', name: 'authenticated refetches caused', value: fetches - baseline, unit: 'count' });
  });

  it('S10: prototype pollution via notice, snapshot file and hub body never reaches Object.prototype (client side)', async () => {
    const service = uniqueService('S10');
    const polluting = (mode: string) =>
      `{"mode":"${mode}","__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"nested":{"__proto__":{"polluted":"yes"}}}`;
    const revision = 1;
    // Hub body with __proto__ keys (raw text, so the keys survive serialisation).
    lab.agent.use(
      route(
        () =>
          new HttpResponse(
            `{"service_name":"${service}","config":${polluting('hub')},"version":"1","updated_at":${1_760_000_000_000 + revision},"revision":${revision}}`,
            { headers: { 'content-type': 'application/json' } },
          ),
      ),
    );
    const polluted: string[] = [];
    const checked: string[] = [];
    const check = (where: string) => {
      checked.push(where);
      if (({} as Record<string, unknown>).polluted !== undefined || (Object.prototype as Record<string, unknown>).polluted !== undefined) {
        polluted.push(where);
      }
    };
    const client = makeClient(service, {}, true);
    await connected(client, service);
    const cfg = await client.get(service);
    expect(cfg.mode).toBe('hub');
    expect(Object.getPrototypeOf(cfg)).not.toEqual({ polluted: 'yes' });
    expect((cfg as Record<string, unknown>).polluted).toBeUndefined();
    check('hub body');
    // Notice applied directly (applyPayload) with the same keys.
    nc.publish(
      `config.update.${service}`,
      `{"service_name":"${service}","revision":7,"updated_at":1760000000007,"version":"7","config":${polluting('notice')}}`,
    );
    await vi.waitFor(async () => expect((await client.get(service)).mode).toBe('notice'));
    const fromNotice = await client.get(service);
    expect((fromNotice as Record<string, unknown>).polluted).toBeUndefined();
    check('notice');
    // Snapshot file with the same keys, loaded while the hub is down.
    const other = uniqueService('S10snap');
    const dir = join(lab.snapshotDir, 'snap');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, `${other}.json`),
      `{"format":1,"service":"${other}","config":${polluting('snapshot')},"version":"1","updated_at":1760000000000,"saved_at":1}`,
    );
    lab.agent.use(route(() => HttpResponse.error()));
    const fromDisk = new ConfigClient({
      hubUrl: HUB,
      snapshotDir: dir,
      startupTimeoutMs: 200,
      pollIntervalMs: false,
      transport: { dispatcher: lab.agent, retries: 0 },
      services: { [other]: {} },
    });
    lab.clients.push(fromDisk);
    const snap = await fromDisk.get(other);
    expect(fromDisk.status(other).source).toBe('snapshot');
    expect(snap.mode).toBe('snapshot');
    expect((snap as Record<string, unknown>).polluted).toBeUndefined();
    check('snapshot');
    expect(polluted).toEqual([]);
    expectLive('S10', 'polluting inputs served (hub body, applied notice, snapshot)', checked.length, 3);
    recordFigure({ row: 'S10', name: 'polluted (hub body, notice, snapshot)', value: polluted.length, unit: 'count' });
  });
});
