/**
 * NATS credentials of the hub, from its environment: user + password, a token, a `.creds` file
 * (decentralized JWT auth) or an NKey seed. At most one kind; none means an unauthenticated connection.
 * Values are never echoed in errors.
 */
import { readFileSync } from 'node:fs';
import { type ConnectionOptions, credsAuthenticator, nkeyAuthenticator, nkeys } from 'nats';

export interface NatsAuthEnv {
  NATS_USER?: string | undefined;
  NATS_PASSWORD?: string | undefined;
  NATS_TOKEN?: string | undefined;
  /** Path of a `.creds` file (user JWT + NKey seed), as `nsc` writes it. */
  NATS_CREDS?: string | undefined;
  /** An NKey user seed (`SU…`), or the path of a file holding one. */
  NATS_NKEY_SEED?: string | undefined;
}

/** The connection options for those credentials (`{}` when none is set). Throws an `Error` naming the variable. */
export function natsAuthFromEnv(env: NatsAuthEnv): Partial<ConnectionOptions> {
  const set = (value: string | undefined): value is string => value !== undefined && value !== '';
  const kinds = [
    set(env.NATS_USER) || set(env.NATS_PASSWORD) ? 'NATS_USER/NATS_PASSWORD' : undefined,
    set(env.NATS_TOKEN) ? 'NATS_TOKEN' : undefined,
    set(env.NATS_CREDS) ? 'NATS_CREDS' : undefined,
    set(env.NATS_NKEY_SEED) ? 'NATS_NKEY_SEED' : undefined,
  ].filter((k) => k !== undefined);
  if (kinds.length > 1) throw new Error(`set only one kind of NATS credentials, not ${kinds.join(' and ')}`);

  if (set(env.NATS_USER) || set(env.NATS_PASSWORD)) {
    if (!set(env.NATS_USER) || !set(env.NATS_PASSWORD)) throw new Error('NATS_USER and NATS_PASSWORD go together');
    return { user: env.NATS_USER, pass: env.NATS_PASSWORD };
  }
  if (set(env.NATS_TOKEN)) return { token: env.NATS_TOKEN };
  if (set(env.NATS_CREDS)) {
    const creds = readSecretFile(env.NATS_CREDS, 'NATS_CREDS');
    if (!creds.includes('-----BEGIN NATS USER JWT-----')) throw new Error('NATS_CREDS is not a NATS .creds file');
    return { authenticator: credsAuthenticator(new TextEncoder().encode(creds)) };
  }
  if (set(env.NATS_NKEY_SEED)) {
    const value = env.NATS_NKEY_SEED.trim();
    const seed = value.startsWith('SU') ? value : readSecretFile(value, 'NATS_NKEY_SEED').trim();
    const bytes = new TextEncoder().encode(seed);
    try {
      nkeys.fromSeed(bytes);
    } catch {
      throw new Error('NATS_NKEY_SEED is not a valid NKey user seed');
    }
    return { authenticator: nkeyAuthenticator(bytes) };
  }
  return {};
}

function readSecretFile(file: string, variable: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${variable}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
