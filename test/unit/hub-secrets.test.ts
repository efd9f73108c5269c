/**
 * Issue 10: the secret filter matches key *words* (the head noun rule, examples/hub/secrets.ts) and
 * inspects values. Both lists are kept here as tables: what must be refused, and what must be accepted.
 */
import { describe, expect, it } from 'vitest';
import { findSecretPaths, isSecretValue, keyWords, parseSecretKeyWords, secretKeyMatcher } from '../../examples/hub/secrets.js';
import { DEFAULT_SECRET_KEY_PATTERNS } from '../../examples/hub/secrets.js';

const isSecretKey = secretKeyMatcher();
const jwt = (header: object, payload: object = { sub: '1' }) =>
  `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2lnbmF0dXJl`;

const MUST_REFUSE_KEYS = [
  // accepted before issue 10
  'credential',
  'pass',
  'pwd',
  'db_pass',
  'DB_PWD',
  // the old list, in every spelling
  'password',
  'DB_PASSWORD',
  'dbPassword',
  'dbpassword',
  'passwd',
  'passphrase',
  'secret',
  'clientSecret',
  'client-secret',
  'secrets',
  'token',
  'access_token',
  'accessToken',
  'accesstoken',
  'auth-token',
  'id_token',
  'refresh_tokens',
  'api_key',
  'apiKey',
  'APIKey',
  'API-KEY',
  'apikey',
  'x_apikey',
  'api_keys',
  'private_key',
  'privateKey',
  'private.key',
  'tls private key',
  'credentials',
  'aws_credentials',
  'secret_access_key',
  'signing_key',
  // numbered or wrapped values are still the secret
  'password_2',
  'token2',
  'password_value',
  'secret_b64',
  'api_key_base64',
  'password_hash',
];

const MUST_ACCEPT_KEYS = [
  // refused before issue 10
  'max_tokens',
  'maxTokens',
  'token_bucket_size',
  'tokenBucketSize',
  'tokenizer',
  'passwordless_login',
  'passwordlessLogin',
  // qualifiers, not the secret itself
  'total_tokens',
  'tokens_per_minute',
  'password_min_length',
  'password_policy',
  'password_file',
  'secret_name',
  'token_ttl_seconds',
  'api_key_header',
  'aws_access_key_id',
  'bypass',
  'compass',
  'passthrough',
  // ordinary operational keys (the seed's among them)
  'batch_size',
  'gap_check_interval_hours',
  'enable_auto_backfill',
  'timeframes',
  'host',
  'max_retries',
  'cache_key',
  'keyspace',
];

describe('secret-looking keys: the head noun rule', () => {
  it.each(MUST_REFUSE_KEYS)('refuses %s', (key) => {
    expect(isSecretKey(key), `${key} → ${keyWords(key).join(' ')}`).toBe(true);
  });

  it.each(MUST_ACCEPT_KEYS)('accepts %s', (key) => {
    expect(isSecretKey(key), `${key} → ${keyWords(key).join(' ')}`).toBe(false);
  });

  it.each([
    ['db_password', ['db', 'password']],
    ['clientSecret', ['client', 'secret']],
    ['APIKey', ['api', 'key']],
    ['tls.private-key', ['tls', 'private', 'key']],
    ['oauth2_token', ['oauth2', 'token']],
    ['MAX_TOKENS', ['max', 'tokens']],
  ])('keyWords(%s) = %j', (key, words) => {
    expect(keyWords(key)).toEqual(words);
  });

  it('the phrases are settable: HUB_SECRET_KEY_WORDS replaces the list, a leading + extends it', () => {
    const replaced = secretKeyMatcher(parseSecretKeyWords('dsn, webhook_url'));
    expect(replaced('sentry_dsn')).toBe(true);
    expect(replaced('slackWebhookUrl')).toBe(true);
    expect(replaced('password')).toBe(false);
    const extended = secretKeyMatcher(parseSecretKeyWords('+dsn'));
    expect(extended('sentry_dsn')).toBe(true);
    expect(extended('password')).toBe(true);
    expect(parseSecretKeyWords('+dsn')).toEqual([...DEFAULT_SECRET_KEY_PATTERNS, 'dsn']);
  });
});

const MUST_REFUSE_VALUES = [
  'postgres://user:pw@host/db',
  'postgresql://hub:s3cr%40t@db.internal:5432/test?sslmode=require',
  'redis://:hunter2@cache:6379/0',
  'amqps://guest:guest@mq',
  'connect to mongodb+srv://app:pa55@cluster0.example.net/x please',
  'host=db user=hub password=hunter2 dbname=test',
  'Server=db;Database=x;User Id=sa;Pwd=hunter2;',
  'https://api.example.com/v1?user=a&password=b',
  '-----BEGIN PRIVATE KEY-----\nMIIE',
  '-----BEGIN RSA PRIVATE KEY-----',
  '-----BEGIN EC PRIVATE KEY-----',
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn',
  '-----BEGIN ENCRYPTED PRIVATE KEY-----',
  '-----begin private key-----',
  '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBF',
  'PuTTY-User-Key-File-3: ssh-ed25519',
  jwt({ alg: 'HS256', typ: 'JWT' }),
  `Bearer ${jwt({ alg: 'RS256', kid: 'k1' })}`,
  `${jwt({ alg: 'none' }).replace(/c2lnbmF0dXJl$/, '')}`,
];

const MUST_ACCEPT_VALUES = [
  'postgres://user@host/db',
  'postgres://db.internal:5432/test',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal `${...}` placeholder is the case under test
  'postgres://hub:${DB_PASSWORD}@db/test',
  'redis://:<password>@cache:6379',
  'https://example.com/a:b@c',
  'http://127.0.0.1:7000/api/v1/config',
  'nats://nats-1:4222,nats://nats-2:4222',
  '-----BEGIN CERTIFICATE-----\nMIIB',
  '-----BEGIN PUBLIC KEY-----\nMIIB',
  '-----BEGIN PGP PUBLIC KEY BLOCK-----',
  'api.example.com',
  'eyes.on.you',
  'ey.a.b',
  `${Buffer.from('not json').toString('base64url')}.e30.x`,
  `${Buffer.from('{"typ":"x"}').toString('base64url')}.e30.x`,
  'password reset links expire after 1 h',
  'use the pwd command',
  '1d',
];

describe('secret values', () => {
  it.each(MUST_REFUSE_VALUES)('refuses %j', (value) => {
    expect(isSecretValue(value)).toBe(true);
    expect(findSecretPaths({ ok: 1, nested: [{ note: value }] }, isSecretKey)).toEqual(['nested[0].note']);
  });

  it.each(MUST_ACCEPT_VALUES)('accepts %j', (value) => {
    expect(isSecretValue(value)).toBe(false);
  });

  it('stays linear on 1 MiB adversarial strings', () => {
    for (const value of ['a'.repeat(1 << 20), `${'a'.repeat(1 << 20)}://`, '://'.repeat(350_000), `ey${'A'.repeat(1 << 20)}`, `${'eyJ.'.repeat(250_000)}`, `-----BEGIN ${'A'.repeat(1 << 20)}`]) {
      const started = performance.now();
      isSecretValue(value);
      expect(performance.now() - started).toBeLessThan(500);
    }
  });
});
