/**
 * Decentralized NATS auth for tests, without `nsc`: an operator, its accounts and users as JWTs signed
 * with NKeys (the v2 claim format nats-server checks), the server config for them (`operator`, a MEMORY
 * resolver preloaded with the accounts) and `.creds` files. Enough for `nats-server -c` (see
 * startNatsServer({ config })) and nats.js `credsAuthenticator`.
 */
import { createHash } from 'node:crypto';
import { nkeys } from 'nats';

const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

function signJwt(issuer: ReturnType<typeof nkeys.createOperator>, subject: string, name: string, nats: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const claims: Record<string, unknown> = { jti: '', iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats };
  claims.jti = createHash('sha256').update(JSON.stringify(claims)).digest('base64url').slice(0, 52).toUpperCase();
  const body = `${header}.${b64url(JSON.stringify(claims))}`;
  return `${body}.${b64url(issuer.sign(new TextEncoder().encode(body)))}`;
}

const ACCOUNT_LIMITS = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export interface UserPermissions {
  pub?: { allow?: string[]; deny?: string[] };
  sub?: { allow?: string[]; deny?: string[] };
}

export interface NatsOperator {
  /** nats-server configuration: operator JWT, system account, MEMORY resolver with the account preloaded. */
  readonly serverConfig: string;
  /** A `.creds` file's text for a new user of the account with these permissions. */
  userCreds(name: string, permissions: UserPermissions): string;
}

/** One operator with one application account (and the system account nats-server wants). */
export function createNatsOperator(): NatsOperator {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const system = nkeys.createAccount();
  const operatorJwt = signJwt(operator, operator.getPublicKey(), 'lab-operator', {
    type: 'operator',
    version: 2,
    system_account: system.getPublicKey(),
  });
  const accountJwt = signJwt(operator, account.getPublicKey(), 'lab-account', { limits: ACCOUNT_LIMITS, type: 'account', version: 2 });
  const systemJwt = signJwt(operator, system.getPublicKey(), 'lab-system', { limits: ACCOUNT_LIMITS, type: 'account', version: 2 });
  const serverConfig = [
    `operator: ${operatorJwt}`,
    `system_account: ${system.getPublicKey()}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${account.getPublicKey()}: ${accountJwt}`,
    `  ${system.getPublicKey()}: ${systemJwt}`,
    '}',
    '',
  ].join('\n');
  return {
    serverConfig,
    userCreds(name, permissions) {
      const user = nkeys.createUser();
      const userJwt = signJwt(account, user.getPublicKey(), name, {
        pub: permissions.pub ?? {},
        sub: permissions.sub ?? {},
        subs: -1,
        data: -1,
        payload: -1,
        type: 'user',
        version: 2,
      });
      const seed = new TextDecoder().decode(user.getSeed());
      return `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
    },
  };
}
