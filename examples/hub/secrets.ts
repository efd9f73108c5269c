/**
 * What the hub refuses to store because it looks like a secret (DESIGN §2: critical values live in env).
 *
 * **Keys: the head noun rule.** A key is split into lower-case words: at every character that is not an
 * ASCII letter or digit (`db_password`, `auth-token`, `tls.private key`) and at camelCase boundaries
 * (`clientSecret`, `APIKey` → `api key`). Trailing words that only number or wrap the value are dropped:
 * digits (`password_2`, `token2`) and {@link VALUE_WORDS} (`password_value`, `secret_b64`, `token_hash`).
 * The key names a secret when the words left **end with** one of the secret phrases (each phrase is
 * split the same way: `private_key` = `private key`), or when its last word ends with a phrase of five
 * letters or more written as one word (`dbpassword`, `accesstoken`, `xapikey`).
 *
 * So the secret must be what the key *is*, not a word that qualifies something else: `max_tokens`,
 * `token_bucket_size`, `tokenizer`, `passwordless_login`, `password_min_length`, `secret_name`,
 * `bypass` are accepted; `password`, `db_pass`, `pwd`, `credential`, `access_token`, `api_key`,
 * `private-key`, `secrets` are refused. `tokens` alone is not a secret phrase (`max_tokens`,
 * `total_tokens` count them); `access_tokens`, `api_tokens`, `auth_tokens`, `refresh_tokens` are.
 *
 * **Values** (strings at any depth, under any key): a URL whose userinfo has a password
 * (`postgres://user:pw@host/db`; a placeholder such as `${DB_PASSWORD}` or `<password>` is fine), a PEM
 * or PGP private key block in any case, a PuTTY key file, a JWT (`xxx.yyy.zzz`, base64url, whose first
 * part decodes to a JSON object with `alg`), and `password=` / `pwd=` in a keyword connection string.
 */

/** The default secret phrases (`HUB_SECRET_KEY_WORDS`, `secretKeyPatterns`). */
export const DEFAULT_SECRET_KEY_PATTERNS: readonly string[] = [
  'password',
  'passwords',
  'passwd',
  'pwd',
  'pass',
  'passphrase',
  'passcode',
  'secret',
  'secrets',
  'token',
  'access_tokens',
  'api_tokens',
  'auth_tokens',
  'bearer_tokens',
  'refresh_tokens',
  'session_tokens',
  'credential',
  'credentials',
  'api_key',
  'api_keys',
  'private_key',
  'private_keys',
  'secret_key',
  'signing_key',
  'encryption_key',
  'master_key',
  'access_key',
];

/** Trailing words that wrap or encode the value rather than name it: dropped before matching. */
export const VALUE_WORDS: ReadonlySet<string> = new Set([
  'value',
  'values',
  'val',
  'str',
  'string',
  'text',
  'raw',
  'plain',
  'plaintext',
  'clear',
  'cleartext',
  'b64',
  'base64',
  'hex',
  'hash',
  'encoded',
  'enc',
  'encrypted',
  'data',
  'bytes',
]);

/** Lower-case words of a key: split at non-alphanumerics and camelCase boundaries. */
export function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

/** The words a key names, without trailing numbers and value wrappers (`db_password_value_2` → db password). */
function headWords(key: string): string[] {
  const words = keyWords(key);
  for (;;) {
    const last = words[words.length - 1];
    if (last === undefined) return words;
    const trimmed = last.replace(/\d+$/, '');
    if (trimmed.length === 0 || VALUE_WORDS.has(last) || VALUE_WORDS.has(trimmed)) words.pop();
    else {
      words[words.length - 1] = trimmed;
      return words;
    }
  }
}

/** Phrases written as one word shorter than this only match as whole words (`pass` must not match `bypass`). */
const MIN_GLUED_LENGTH = 5;

/** Builds the key matcher of the head noun rule (module comment) over `patterns` (secret phrases). */
export function secretKeyMatcher(patterns: readonly string[] = DEFAULT_SECRET_KEY_PATTERNS): (key: string) => boolean {
  const phrases = patterns.map(keyWords).filter((p) => p.length > 0);
  const glued = phrases.map((p) => p.join('')).filter((g) => g.length >= MIN_GLUED_LENGTH);
  return (key) => {
    const words = headWords(key);
    if (words.length === 0) return false;
    const last = words[words.length - 1]!;
    if (glued.some((g) => last.endsWith(g))) return true;
    return phrases.some((p) => p.length <= words.length && p.every((w, i) => words[words.length - p.length + i] === w));
  };
}

/**
 * Parses `HUB_SECRET_KEY_WORDS`: comma-separated phrases that replace the default list, or, with a
 * leading `+`, are added to it (`+dsn,webhook_url`).
 */
export function parseSecretKeyWords(text: string): string[] {
  const extend = text.trimStart().startsWith('+');
  const words = text
    .trim()
    .replace(/^\+/, '')
    .split(',')
    .map((w) => w.trim())
    .filter((w) => w.length > 0);
  return extend ? [...DEFAULT_SECRET_KEY_PATTERNS, ...words] : words;
}

const PRIVATE_KEY_BLOCK = /-----\s*BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?\s*-----|PuTTY-User-Key-File-\d+:/i;
const JWT = /(?<![A-Za-z0-9_-])(ey[A-Za-z0-9_-]{2,})\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
const KEYWORD_PASSWORD = /(?:^|[\s;?&])(?:password|passwd|pwd)\s*=\s*[^\s;]/i;
const PLACEHOLDER = /^(?:\$\{[^}]*\}|\{\{[^}]*\}\}|<[^>]*>|%\([^)]*\)s|\*+|x+)$/i;

/** `scheme://user:password@host`: scans from each `://` (linear: an authority ends at the next `/`). */
function hasUrlPassword(value: string): boolean {
  for (let at = value.indexOf('://'); at !== -1; at = value.indexOf('://', at + 3)) {
    if (!/[a-z][a-z0-9+.-]*$/i.test(value.slice(Math.max(0, at - 32), at))) continue;
    const authority = /^[^\s/?#]*/.exec(value.slice(at + 3, at + 3 + 4096))![0];
    const userinfo = authority.lastIndexOf('@') === -1 ? '' : authority.slice(0, authority.lastIndexOf('@'));
    const colon = userinfo.indexOf(':');
    if (colon === -1) continue;
    const password = userinfo.slice(colon + 1);
    if (password.length > 0 && !PLACEHOLDER.test(decodeSafe(password))) return true;
  }
  return false;
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function hasJwt(value: string): boolean {
  if (!value.includes('ey')) return false;
  for (const m of value.matchAll(JWT)) {
    try {
      const header: unknown = JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8'));
      if (typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string') return true;
    } catch {
      // Not a JSON header: a dotted name that happens to start with "ey".
    }
  }
  return false;
}

/** Whether a string value holds a secret (module comment, "Values"). */
export function isSecretValue(value: string): boolean {
  return PRIVATE_KEY_BLOCK.test(value) || hasUrlPassword(value) || KEYWORD_PASSWORD.test(value) || hasJwt(value);
}

/**
 * The dotted paths of keys that look like secrets and of values that are secrets: critical values never
 * live in the hub (DESIGN §2). A secret key is reported without looking inside its value.
 */
export function findSecretPaths(
  root: unknown,
  isSecretKey: (key: string) => boolean,
  options: { allowNullValues?: boolean } = {},
): string[] {
  const found: string[] = [];
  const stack: { value: unknown; path: string }[] = [{ value: root, path: '' }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (isSecretValue(value)) found.push(path || '(root)');
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) stack.push({ value: item, path: `${path}[${i}]` });
      continue;
    }
    for (const [key, child] of Object.entries(value)) {
      const childPath = path === '' ? key : `${path}.${key}`;
      // In a merge patch, `"password": null` removes a key: allowed, it stores nothing.
      if (!isSecretKey(key)) stack.push({ value: child, path: childPath });
      else if (!(options.allowNullValues === true && child === null)) found.push(childPath);
    }
  }
  return found.sort();
}
