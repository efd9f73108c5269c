/**
 * NATS credentials and permissions end to end (issue 10), on a private nats-server started with an
 * authorization config (the one shown in examples/hub/README.md, "NATS credentials and permissions"):
 * only the hub's user may publish `config.update.>`, each service's user may only subscribe to its own
 * subject. The real hub (buildHub with NATS options) publishes through its user; a real ConfigClient with
 * its service user receives the change. Outsiders are refused; a service user can neither forge another's
 * (or its own) notices nor read another service's; a refused subscription reaches `onError`. Also NKey,
 * token and (operator mode, hand-made JWTs: test/helpers/lab/nats-jwt.ts) `.creds` authentication, for
 * the client (`nats.connectOptions`) and the hub (`NATS_*` variables through natsAuthFromEnv).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, credsAuthenticator, type NatsConnection, nkeyAuthenticator, nkeys, type Status } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { natsAuthFromEnv } from '../../examples/hub/nats-auth.js';
import type { ConfigError } from '../../src/errors.js';
import type { Notice } from '../../src/hub/wire.js';
import { NatsWatcher } from '../../src/watch/nats-watcher.js';
import { Lab, record, sleep, waitUntil } from '../helpers/hot-reload/index.js';
import { createNatsOperator } from '../helpers/lab/nats-jwt.js';
import { type NatsServerHandle, startNatsServer } from '../helpers/lab/nats-server.js';

const SVC_A = 'auth-svc-a';
const SVC_B = 'auth-svc-b';
const SVC_C = 'auth-svc-c';
const PASS = { hub: 'hub-secret', a: 'a-secret', b: 'b-secret' };
const nkeyUser = nkeys.createUser();
const NKEY_SEED = new TextDecoder().decode(nkeyUser.getSeed());

/** Only the hub publishes notices; each service subscribes to its own subject and publishes nothing. */
function authorizationConfig(nkeyPublic: string): string {
  const service = (subject: string): string =>
    `permissions: { publish: { deny: [">"] }, subscribe: { allow: ["${subject}"] } }`;
  return `
authorization {
  users = [
    { user: "hub", password: "${PASS.hub}", permissions: { publish: { allow: ["config.update.>"] }, subscribe: { deny: [">"] } } }
    { user: "${SVC_A}", password: "${PASS.a}", ${service(`config.update.${SVC_A}`)} }
    { user: "${SVC_B}", password: "${PASS.b}", ${service(`config.update.${SVC_B}`)} }
    { nkey: "${nkeyPublic}", ${service(`config.update.${SVC_C}`)} }
  ]
}
`;
}

const lab = new Lab();
afterEach(() => lab.cleanup());

let server: NatsServerHandle;
beforeAll(async () => {
  server = await startNatsServer({ config: authorizationConfig(nkeyUser.getPublicKey()) });
});
afterAll(async () => {
  await server?.dispose();
});

async function natsAs(user: string, pass: string): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url, user, pass, name: `test-${user}` });
  lab.defer(`nats ${user}`, () => nc.close());
  return nc;
}

const enc = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

interface Watched {
  watcher: NatsWatcher;
  notices: Array<{ service: string; notice: Notice }>;
  invalid: Array<{ service: string; error: ConfigError }>;
  errorLogs: string[];
}

async function watch(services: string[], connectOptions: Record<string, unknown>, servers = server.url): Promise<Watched> {
  const w: Watched = { watcher: undefined as unknown as NatsWatcher, notices: [], invalid: [], errorLogs: [] };
  w.watcher = new NatsWatcher({
    services,
    servers,
    connectOptions: { reconnectTimeWait: 100, reconnectJitter: 10, timeout: 1_000, ...connectOptions },
    onNotice: (service, notice) => w.notices.push({ service, notice }),
    onInvalidNotice: (service, error) => w.invalid.push({ service, error }),
    onResync: () => {},
    logger: { error: (_obj, msg) => w.errorLogs.push(msg ?? '') },
  });
  lab.defer('watcher', () => w.watcher.close());
  await w.watcher.start();
  return w;
}

describe('a nats-server with per-user permissions', () => {
  it('T1: refuses outsiders: no credentials, a wrong password, an unknown user', async () => {
    for (const options of [{}, { user: SVC_A, pass: 'wrong' }, { user: 'mallory', pass: 'x' }]) {
      await expect(connect({ servers: server.url, reconnect: false, timeout: 2_000, ...options })).rejects.toMatchObject({
        code: 'AUTHORIZATION_VIOLATION',
      });
    }
    // The watcher keeps retrying in the background and says why, at error level.
    const w = await watch([SVC_A], { user: SVC_A, pass: 'wrong' });
    expect(w.watcher.state).toBe('connecting');
    expect(w.errorLogs).toContain('NATS refused our credentials; retrying in the background');
  });

  it('T1: a service user cannot forge notices (its own subject or another one): the server drops them', async () => {
    const a = await watch([SVC_A], { user: SVC_A, pass: PASS.a });
    const b = await watch([SVC_B], { user: SVC_B, pass: PASS.b });
    expect([a.watcher.state, b.watcher.state]).toEqual(['connected', 'connected']);

    const forger = await natsAs(SVC_A, PASS.a);
    const refusals: Status[] = [];
    void (async () => {
      for await (const s of forger.status()) if (s.type === 'error') refusals.push(s);
    })();
    forger.publish(`config.update.${SVC_B}`, enc({ service_name: SVC_B, revision: 99 }));
    forger.publish(`config.update.${SVC_A}`, enc({ service_name: SVC_A, revision: 99 }));
    // The server handles one connection's commands in order: after this round trip both PUBs were refused.
    await forger.flush();
    await waitUntil('two permission refusals', () => refusals.length === 2, 5_000);
    expect(refusals.map((s) => s.data)).toEqual(['PERMISSIONS_VIOLATION', 'PERMISSIONS_VIOLATION']);

    // The hub's user may publish; its notices arrive, the forged ones never did.
    const hub = await natsAs('hub', PASS.hub);
    hub.publish(`config.update.${SVC_A}`, enc({ service_name: SVC_A, revision: 1 }));
    hub.publish(`config.update.${SVC_B}`, enc({ service_name: SVC_B, revision: 1 }));
    await hub.flush();
    await waitUntil('the hub notices', () => a.notices.length >= 1 && b.notices.length >= 1, 5_000);
    await sleep(50);
    expect(a.notices.map((n) => n.notice.revision)).toEqual([1]);
    expect(b.notices.map((n) => n.notice.revision)).toEqual([1]);
    expect(forger.isClosed()).toBe(false); // a refused publish is not fatal to the connection
  });

  it("T1: a service user cannot read another service's notices: the refusal is reported, its own still flow", async () => {
    const w = await watch([SVC_A, SVC_B], { user: SVC_A, pass: PASS.a });
    await waitUntil('the refusal of config.update.auth-svc-b', () => w.invalid.length === 1, 5_000);
    expect(w.invalid[0]?.service).toBe(SVC_B);
    expect(w.invalid[0]?.error.code).toBe('NATS_PERMISSION_DENIED');
    expect(w.invalid[0]?.error.message).toMatch(/refused the subscription to config\.update\.auth-svc-b/);
    expect(w.errorLogs).toContain('NATS subscription ended with an error');
    expect(w.watcher.state).toBe('connected');

    const hub = await natsAs('hub', PASS.hub);
    hub.publish(`config.update.${SVC_B}`, enc({ service_name: SVC_B, revision: 5 }));
    hub.publish(`config.update.${SVC_A}`, enc({ service_name: SVC_A, revision: 5 }));
    await hub.flush();
    await waitUntil('the own notice', () => w.notices.length === 1, 5_000);
    await sleep(50);
    expect(w.notices.map((n) => n.service)).toEqual([SVC_A]);
  });

  it('T1: an NKey user connects through nats.js authenticator (connectOptions.authenticator), the hub env form too', async () => {
    const w = await watch([SVC_C], { authenticator: nkeyAuthenticator(nkeyUser.getSeed()) });
    expect(w.watcher.state).toBe('connected');
    const hub = await lab.hub({ natsUrl: server.url, natsOptions: { user: 'hub', pass: PASS.hub } });
    await hub.natsReady();
    await hub.post(SVC_C, { n: 1 });
    await waitUntil('the notice for the nkey user', () => w.notices.length === 1, 5_000);
    expect(w.notices[0]?.notice.config).toEqual({ n: 1 });

    // The same seed through the hub's environment variable: accepted by the server.
    const nc = await connect({ servers: server.url, ...natsAuthFromEnv({ NATS_NKEY_SEED: NKEY_SEED }) });
    await nc.flush();
    await nc.close();
  });

  it('T1: the hub publishes through its user; a ConfigClient with its service user gets the change, a refused subscription reaches onError', async () => {
    const hub = await lab.hub({
      natsUrl: server.url,
      natsOptions: natsAuthFromEnv({ NATS_USER: 'hub', NATS_PASSWORD: PASS.hub }),
    });
    await hub.natsReady();
    await hub.post(SVC_A, { rate: 1 });

    const client = lab.client({
      hubUrl: hub.url,
      services: { [SVC_A]: {}, [SVC_B]: {} },
      nats: { servers: server.url, connectOptions: { user: SVC_A, pass: PASS.a } },
      pollIntervalMs: false, // only NATS can deliver the change
    });
    const rec = record(client, SVC_A);
    expect(await client.get(SVC_A)).toEqual({ rate: 1 });
    await waitUntil('NATS connected', () => client.status(SVC_A).nats === 'connected', 5_000);
    // SVC_B is configured but this user may not subscribe to it: reported, never silent.
    await waitUntil('the permission error on onError', () => rec.errors.some((e) => e.code === 'NATS_PERMISSION_DENIED'), 5_000);
    expect(rec.errors.find((e) => e.code === 'NATS_PERMISSION_DENIED')?.service).toBe(SVC_B);

    const answer = await hub.post(SVC_A, { rate: 2 });
    expect(answer.body.broadcast).toBe('sent');
    await waitUntil('onChange through NATS', () => rec.changes.length === 1, 5_000);
    expect(rec.changes[0]?.next).toEqual({ rate: 2 });
    expect(await client.get(SVC_A)).toEqual({ rate: 2 });
  });

  it('T1: the hub with wrong credentials keeps serving and reports broadcast "unavailable"', async () => {
    const hub = await lab.hub({ natsUrl: server.url, natsOptions: { user: 'hub', pass: 'wrong' } });
    const answer = await hub.post(SVC_A, { rate: 3 });
    expect(answer.body.broadcast).toBe('unavailable');
    expect(hub.hub.broadcaster.connected).toBe(false);
  });
});

describe('a nats-server with token auth', () => {
  let tokenServer: NatsServerHandle;
  beforeAll(async () => {
    tokenServer = await startNatsServer({ config: 'authorization { token: "s3cret-token" }' });
  });
  afterAll(async () => {
    await tokenServer?.dispose();
  });

  it('T1: connectOptions.token (client) and NATS_TOKEN (hub) connect; a wrong token is refused', async () => {
    await expect(connect({ servers: tokenServer.url, token: 'nope', reconnect: false })).rejects.toMatchObject({
      code: 'AUTHORIZATION_VIOLATION',
    });
    const received: Notice[] = [];
    const w = new NatsWatcher({
      services: [SVC_A],
      servers: tokenServer.url,
      connectOptions: { token: 's3cret-token' },
      onNotice: (_service, notice) => received.push(notice),
      onInvalidNotice: () => {},
      onResync: () => {},
    });
    lab.defer('token watcher', () => w.close());
    await w.start();
    expect(w.state).toBe('connected');
    const hub = await lab.hub({ natsUrl: tokenServer.url, natsOptions: natsAuthFromEnv({ NATS_TOKEN: 's3cret-token' }) });
    await hub.natsReady();
    await hub.post(SVC_A, { t: 1 });
    await waitUntil('the notice over token auth', () => received.length === 1, 5_000);
  });
});

describe('a nats-server in operator mode (JWT .creds files)', () => {
  const operator = createNatsOperator();
  let jwtServer: NatsServerHandle;
  let dir: string;
  beforeAll(async () => {
    jwtServer = await startNatsServer({ config: operator.serverConfig });
    dir = mkdtempSync(join(tmpdir(), 'nats-creds-'));
  });
  afterAll(async () => {
    await jwtServer?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('T1: NATS_CREDS (hub) and credsAuthenticator (client) connect with the permissions in the JWTs', async () => {
    const hubCreds = join(dir, 'hub.creds');
    writeFileSync(hubCreds, operator.userCreds('hub', { pub: { allow: ['config.update.>'] }, sub: { deny: ['>'] } }), { mode: 0o600 });
    const serviceCreds = operator.userCreds(SVC_A, { pub: { deny: ['>'] }, sub: { allow: [`config.update.${SVC_A}`] } });
    const w = await watch([SVC_A, SVC_B], { authenticator: credsAuthenticator(new TextEncoder().encode(serviceCreds)) }, jwtServer.url);
    expect(w.watcher.state).toBe('connected');
    await waitUntil('the refusal of the other subject', () => w.invalid.length === 1, 5_000);
    expect(w.invalid[0]).toMatchObject({ service: SVC_B, error: { code: 'NATS_PERMISSION_DENIED' } });

    const hub = await lab.hub({ natsUrl: jwtServer.url, natsOptions: natsAuthFromEnv({ NATS_CREDS: hubCreds }) });
    await hub.natsReady();
    await hub.post(SVC_A, { jwt: true });
    await waitUntil('the notice through JWT auth', () => w.notices.length === 1, 5_000);
    expect(w.notices[0]?.notice.config).toEqual({ jwt: true });

    // A user of another operator is refused.
    const stranger = createNatsOperator().userCreds('stranger', {});
    await expect(
      connect({ servers: jwtServer.url, reconnect: false, authenticator: credsAuthenticator(new TextEncoder().encode(stranger)) }),
    ).rejects.toMatchObject({ code: 'AUTHORIZATION_VIOLATION' });
  });
});
