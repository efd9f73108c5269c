import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { natsAuthFromEnv } from '../../examples/hub/nats-auth.js';

const dir = mkdtempSync(join(tmpdir(), 'hub-nats-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('natsAuthFromEnv (the hub NATS_* credentials)', () => {
  it('maps each kind to nats connection options', () => {
    expect(natsAuthFromEnv({})).toEqual({});
    expect(natsAuthFromEnv({ NATS_USER: 'hub', NATS_PASSWORD: 'pw' })).toEqual({ user: 'hub', pass: 'pw' });
    expect(natsAuthFromEnv({ NATS_TOKEN: 't' })).toEqual({ token: 't' });
    const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
    expect(typeof natsAuthFromEnv({ NATS_NKEY_SEED: seed }).authenticator).toBe('function');
    const seedFile = join(dir, 'hub.nk');
    writeFileSync(seedFile, `${seed}\n`);
    expect(typeof natsAuthFromEnv({ NATS_NKEY_SEED: seedFile }).authenticator).toBe('function');
    const creds = join(dir, 'hub.creds');
    writeFileSync(creds, `-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.x\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`);
    expect(typeof natsAuthFromEnv({ NATS_CREDS: creds }).authenticator).toBe('function');
  });

  it.each([
    [{ NATS_USER: 'hub' }, /go together/],
    [{ NATS_PASSWORD: 'pw' }, /go together/],
    [{ NATS_USER: 'hub-user-1', NATS_PASSWORD: 'pw-1234', NATS_TOKEN: 'tok-5678' }, /only one kind/],
    [{ NATS_NKEY_SEED: 'SUNOTASEED' }, /not a valid NKey/],
    [{ NATS_NKEY_SEED: '/nonexistent/seed' }, /NATS_NKEY_SEED: cannot read the file \(ENOENT\)/],
    [{ NATS_CREDS: '/nonexistent/hub.creds' }, /NATS_CREDS: cannot read the file/],
  ])('refuses %j without echoing a value', (env, message) => {
    let thrown: Error | undefined;
    try {
      natsAuthFromEnv(env);
    } catch (error) {
      thrown = error as Error;
    }
    expect(thrown?.message).toMatch(message);
    for (const value of Object.values(env)) if (!value.startsWith('/')) expect(thrown?.message).not.toContain(value);
  });
});
