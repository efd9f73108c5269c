import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { HubError } from './errors.js';

/** One API key as configured (`HUB_API_KEYS`): the key itself or its SHA-256 (hex), and scopes. */
export const apiKeyConfigSchema = z
  .object({
    name: z.string().min(1).max(100),
    key: z.string().min(1).optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be 64 hex characters')
      .optional(),
    scopes: z.array(z.string().regex(/^(read|write):[a-z0-9*?-]+$/, 'scope must be read:<glob> or write:<glob>')),
  })
  .refine((k) => (k.key === undefined) !== (k.sha256 === undefined), 'give exactly one of key and sha256');
export type ApiKeyConfig = z.input<typeof apiKeyConfigSchema>;
export const apiKeysSchema = z.array(apiKeyConfigSchema);

export type Access = 'read' | 'write';

export interface Principal {
  name: string;
  can(access: Access, service: string): boolean;
}

interface CompiledKey {
  name: string;
  hash: Buffer;
  scopes: { access: Access; pattern: RegExp }[];
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export interface AuthOptions {
  keys: readonly ApiKeyConfig[];
  /** Failed attempts from one address before it gets 429. @default 20 */
  failureLimit?: number | undefined;
  /**
   * Failed attempts from all addresses together, per window, before every further failure gets 429
   * (valid keys still pass). @default 1000
   */
  globalFailureLimit?: number | undefined;
  /** @default 60_000 */
  failureWindowMs?: number | undefined;
  now?: () => number;
}

export const UNAUTHORIZED_DETAIL = 'missing or invalid API key';

/**
 * X-API-Key authentication. Both sides are hashed to 32 bytes and compared with `timingSafeEqual`
 * against every key (no early exit, no plaintext lookup). Keys never leave this module.
 */
export class Authenticator {
  readonly #keys: CompiledKey[];
  readonly #failureLimit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #globalFailureLimit: number;
  readonly #failures = new Map<string, { count: number; resetAt: number }>();
  #global = { count: 0, resetAt: 0 };

  constructor(options: AuthOptions) {
    this.#keys = apiKeysSchema.parse(options.keys).map((k) => ({
      name: k.name,
      hash: k.key !== undefined ? sha256(k.key) : Buffer.from(k.sha256!.toLowerCase(), 'hex'),
      scopes: k.scopes.map((s) => {
        const [access, glob] = s.split(':') as [Access, string];
        return { access, pattern: globToRegExp(glob) };
      }),
    }));
    this.#failureLimit = options.failureLimit ?? 20;
    this.#globalFailureLimit = options.globalFailureLimit ?? 1000;
    this.#windowMs = options.failureWindowMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Resolves the key of a request or throws 401 (uniform body) / 429. The key is checked first: a valid
   * key always passes, whatever its address did before (issue 10: twenty wrong keys from a shared NAT or
   * proxy address used to lock the valid key out for a minute). Only failures count, and only failures
   * are refused: 429 once `address` failed `failureLimit` times in the window, or once the whole hub saw
   * `globalFailureLimit` failures in it (many source addresses no longer get around the limit).
   */
  authenticate(header: string | string[] | undefined, address: string): Principal {
    const presented = typeof header === 'string' ? header : undefined;
    const key = presented === undefined || presented.length === 0 ? undefined : this.#match(sha256(presented));
    if (key !== undefined) {
      return {
        name: key.name,
        can: (access, service) => key.scopes.some((s) => s.access === access && s.pattern.test(service)),
      };
    }
    const now = this.#now();
    const source = failureSource(address);
    const record = this.#failures.get(source);
    if (record !== undefined && record.resetAt <= now) this.#failures.delete(source);
    if (this.#global.resetAt <= now) this.#global = { count: 0, resetAt: now + this.#windowMs };
    const live = this.#failures.get(source);
    const limited =
      live !== undefined && live.count >= this.#failureLimit
        ? live.resetAt
        : this.#global.count >= this.#globalFailureLimit
          ? this.#global.resetAt
          : undefined;
    if (limited !== undefined) {
      throw new HubError(429, 'too many failed authentication attempts', {
        headers: { 'retry-after': String(Math.max(1, Math.ceil((limited - now) / 1000))) },
      });
    }
    this.#recordFailure(source, now);
    throw new HubError(401, UNAUTHORIZED_DETAIL);
  }

  #match(hash: Buffer): CompiledKey | undefined {
    let found: CompiledKey | undefined;
    for (const key of this.#keys) {
      if (timingSafeEqual(key.hash, hash) && found === undefined) found = key;
    }
    return found;
  }

  #recordFailure(address: string, now: number): void {
    if (this.#failures.size > 10_000) {
      for (const [a, r] of this.#failures) if (r.resetAt <= now) this.#failures.delete(a);
    }
    const r = this.#failures.get(address);
    if (r === undefined) this.#failures.set(address, { count: 1, resetAt: now + this.#windowMs });
    else r.count += 1;
    this.#global.count += 1;
  }
}

/**
 * The bucket a failed attempt is counted in: the IPv4 address, or the /64 of an IPv6 address (one
 * host usually holds a whole /64, so per-address buckets would be free to rotate through).
 */
export function failureSource(address: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (v4 !== null) return v4[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** The principal when auth is disabled: may do everything; the name is `updated_by` or `anonymous`. */
export function openPrincipal(name = 'anonymous'): Principal {
  return { name, can: () => true };
}
