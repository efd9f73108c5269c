/**
 * The export's promise (docs/fleet.md §2), as a property: for zod schemas drawn from a small grammar
 * (objects, strict ones too, optional / nullable / default fields, arrays, records, enum-keyed records,
 * enums, unions and discriminated unions of objects, numbers with bounds and int, strings with bounds and
 * regexes), random defaults, random critical (env) paths with their env values, and random hub documents:
 *
 * - whenever the hub (Ajv 2020 with the reference hub's settings) says INVALID, the client (`resolveConfig`:
 *   the document merged over the defaults, critical paths dropped, env merged over it, then zod) says
 *   invalid too: the export is never stricter;
 * - where `unrepresented` is empty, the two verdicts are equal.
 *
 * Defaults and env values are drawn valid where they stand (the export assumes so). `FC_SEED=<n>` replays
 * a run; a failure names the fast-check seed and the run's own seed.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { exportSchema } from '../../src/fleet/schema-export.js';
import { resolveConfig } from '../../src/layers/resolve.js';
import { mergeLayers } from '../../src/layers/merge.js';
import { getPath, isPlainObject, type PlainObject, setPath } from '../../src/layers/paths.js';

type Mod = 'none' | 'optional' | 'nullable' | 'default' | 'nullish';
interface StringSpec { k: 'string'; min?: number | undefined; max?: number | undefined; re?: number | undefined }
interface NumberSpec { k: 'number'; min?: number | undefined; max?: number | undefined; int: boolean }
interface BooleanSpec { k: 'boolean' }
interface EnumSpec { k: 'enum'; values: string[] }
interface Field { name: string; spec: Spec; mod: Mod }
interface ObjectSpec { k: 'object'; strict: boolean; fields: Field[] }
interface ArraySpec { k: 'array'; item: Spec; min?: number | undefined; max?: number | undefined }
interface RecordSpec { k: 'record'; value: Spec; keys?: string[] | undefined }
interface UnionSpec { k: 'union'; options: ObjectSpec[]; discriminated: boolean }
type Spec = StringSpec | NumberSpec | BooleanSpec | EnumSpec | ObjectSpec | ArraySpec | RecordSpec | UnionSpec;

/** The regexes strings may carry: plain ones, one with a flag zod drops, one that does not compile with `u`. */
const REGEXES = [/^[a-z]*$/, /^[a-z]+$/i, /^[\w-.]+$/, /b/, /^.{0,3}$/];
const STRINGS = ['', 'a', 'ab', 'abc', 'abcd', 'abcdef', 'ABC', 'aB', 'b', 'a.b', 'x-y', '😀', '😀😀', 'abcdefghij', ' '];
const NUMBERS = [0, 1, -1, 2, 2.5, -3.5, 5, 10, 11, 100, 1e6, 0.1, 2 ** 53 + 2];
const NAMES = ['a', 'b', 'c', 'd', 'e'];
const RECORD_KEYS = ['x', 'y', 'z'];

const MODS: Mod[] = ['none', 'none', 'none', 'optional', 'nullable', 'default', 'nullish'];

const { spec: specArb } = fc.letrec<{ spec: Spec; object: ObjectSpec }>((tie) => ({
  spec: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'spec' },
    fc.record({ k: fc.constant('string' as const), min: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }), max: fc.option(fc.integer({ min: 3, max: 8 }), { nil: undefined }), re: fc.option(fc.integer({ min: 0, max: REGEXES.length - 1 }), { nil: undefined }) }),
    fc.record({ k: fc.constant('number' as const), min: fc.option(fc.integer({ min: -2, max: 2 }), { nil: undefined }), max: fc.option(fc.integer({ min: 2, max: 20 }), { nil: undefined }), int: fc.boolean() }),
    fc.constant({ k: 'boolean' as const }),
    fc.record({ k: fc.constant('enum' as const), values: fc.uniqueArray(fc.constantFrom('p', 'q', 'r'), { minLength: 1, maxLength: 3 }) }),
    tie('object'),
    fc.record({ k: fc.constant('array' as const), item: tie('spec'), min: fc.option(fc.integer({ min: 0, max: 1 }), { nil: undefined }), max: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }) }),
    fc.record({ k: fc.constant('record' as const), value: tie('spec'), keys: fc.option(fc.uniqueArray(fc.constantFrom(...RECORD_KEYS), { minLength: 1, maxLength: 2 }), { nil: undefined }) }),
    fc.record({ k: fc.constant('union' as const), options: fc.array(tie('object'), { minLength: 2, maxLength: 3 }), discriminated: fc.boolean() }),
  ),
  object: fc.record({
    k: fc.constant('object' as const),
    strict: fc.boolean(),
    fields: fc.uniqueArray(fc.record({ name: fc.constantFrom(...NAMES), spec: tie('spec'), mod: fc.constantFrom(...MODS) }), { selector: (f) => f.name, minLength: 1, maxLength: 4 }),
  }),
}));

const rootArb: fc.Arbitrary<ObjectSpec> = fc.record({
  k: fc.constant('object' as const),
  strict: fc.boolean(),
  fields: fc.uniqueArray(fc.record({ name: fc.constantFrom(...NAMES), spec: specArb, mod: fc.constantFrom(...MODS) }), { selector: (f) => f.name, minLength: 1, maxLength: 5 }),
});

/** mulberry32: the run's own draws (defaults, env, documents) from one seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class World {
  readonly #zod = new Map<Spec, z.ZodType>();
  /** The `kind` of the options of discriminated unions. */
  readonly #tags = new Map<ObjectSpec, string>();
  constructor(readonly rng: () => number) {}

  chance(p: number): boolean {
    return this.rng() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rng() * items.length)]!;
  }

  /** The zod schema of a spec node (built once per node; a default value is drawn when it is built). */
  zod(spec: Spec): z.ZodType {
    const known = this.#zod.get(spec);
    if (known) return known;
    const built = this.#build(spec);
    this.#zod.set(spec, built);
    return built;
  }

  #build(spec: Spec): z.ZodType {
    switch (spec.k) {
      case 'string': {
        let s = z.string();
        if (spec.min !== undefined) s = s.min(spec.min);
        if (spec.max !== undefined) s = s.max(spec.max);
        if (spec.re !== undefined) s = s.regex(REGEXES[spec.re]!);
        return s;
      }
      case 'number': {
        let n = spec.int ? z.number().int() : z.number();
        if (spec.min !== undefined) n = n.min(spec.min);
        if (spec.max !== undefined) n = n.max(spec.max);
        return n;
      }
      case 'boolean':
        return z.boolean();
      case 'enum':
        return z.enum(spec.values as [string, ...string[]]);
      case 'object': {
        const shape: Record<string, z.ZodType> = {};
        const tag = this.#tags.get(spec);
        if (tag !== undefined) shape.kind = z.literal(tag);
        for (const field of spec.fields) shape[field.name] = this.#field(field);
        return spec.strict ? z.strictObject(shape) : z.object(shape);
      }
      case 'array': {
        let a = z.array(this.zod(spec.item));
        if (spec.min !== undefined) a = a.min(spec.min);
        if (spec.max !== undefined) a = a.max(spec.max);
        return a;
      }
      case 'record':
        return spec.keys ? z.record(z.enum(spec.keys as [string, ...string[]]), this.zod(spec.value)) : z.record(z.string(), this.zod(spec.value));
      case 'union': {
        if (!spec.discriminated) return z.union(spec.options.map((o) => this.zod(o)) as [z.ZodType, z.ZodType]);
        spec.options.forEach((option, i) => {
          this.#tags.set(option, `k${i}`);
        });
        return z.discriminatedUnion('kind', spec.options.map((o) => this.zod(o)) as unknown as [z.ZodObject, z.ZodObject]);
      }
    }
  }

  #field(field: Field): z.ZodType {
    const inner = this.zod(field.spec);
    switch (field.mod) {
      case 'none':
        return inner;
      case 'optional':
        return inner.optional();
      case 'nullable':
        return inner.nullable();
      case 'nullish':
        return inner.nullish();
      case 'default': {
        const value = this.valid(field.spec);
        return value === undefined ? inner.optional() : inner.default(value as never);
      }
    }
  }

  /** A value the node accepts, or `undefined` when none was found. */
  valid(spec: Spec, tries = 4): unknown {
    for (let i = 0; i < tries; i++) {
      const value = this.#candidate(spec);
      if (value !== undefined && this.zod(spec).safeParse(value).success) return value;
    }
    return undefined;
  }

  #candidate(spec: Spec): unknown {
    switch (spec.k) {
      case 'string': {
        const ok = STRINGS.filter((s) => this.zod(spec).safeParse(s).success);
        return ok.length > 0 ? this.pick(ok) : undefined;
      }
      case 'number': {
        const extra = [spec.min, spec.max].filter((n): n is number => n !== undefined);
        const ok = [...NUMBERS, ...extra].filter((n) => this.zod(spec).safeParse(n).success);
        return ok.length > 0 ? this.pick(ok) : undefined;
      }
      case 'boolean':
        return this.chance(0.5);
      case 'enum':
        return this.pick(spec.values);
      case 'object': {
        const out: PlainObject = {};
        const tag = this.#tags.get(spec);
        if (tag !== undefined) out.kind = tag;
        for (const field of spec.fields) {
          if (field.mod !== 'none' && this.chance(0.3)) continue;
          if ((field.mod === 'nullable' || field.mod === 'nullish') && this.chance(0.2)) {
            out[field.name] = null;
            continue;
          }
          const value = this.valid(field.spec);
          if (value === undefined) {
            if (field.mod === 'none') return undefined;
            continue;
          }
          out[field.name] = value;
        }
        return out;
      }
      case 'array': {
        const length = (spec.min ?? 0) + Math.floor(this.rng() * 3);
        const items: unknown[] = [];
        for (let i = 0; i < Math.min(length, spec.max ?? 3); i++) {
          const item = this.valid(spec.item);
          if (item === undefined) return (spec.min ?? 0) === 0 ? [] : undefined;
          items.push(item);
        }
        return items;
      }
      case 'record': {
        const out: PlainObject = {};
        const keys = spec.keys ?? RECORD_KEYS.filter(() => this.chance(0.4));
        for (const key of keys) {
          const value = this.valid(spec.value);
          if (value === undefined) return spec.keys ? undefined : out;
          out[key] = value;
        }
        return out;
      }
      case 'union':
        return this.valid(this.pick(spec.options));
    }
  }

  /** Part of a valid value: some keys of objects (recursively), each present one valid where it stands. */
  partial(spec: Spec): unknown {
    if (spec.k === 'object') {
      const out: PlainObject = {};
      const tag = this.#tags.get(spec);
      if (tag !== undefined && this.chance(0.5)) out.kind = tag;
      for (const field of spec.fields) {
        if (this.chance(0.5)) continue;
        if ((field.mod === 'nullable' || field.mod === 'nullish') && this.chance(0.15)) {
          out[field.name] = null;
          continue;
        }
        const value = isComposite(field.spec) && this.chance(0.6) ? this.partial(field.spec) : this.valid(field.spec);
        if (value !== undefined) out[field.name] = value;
      }
      return out;
    }
    if (spec.k === 'record') {
      const out: PlainObject = {};
      for (const key of spec.keys ?? RECORD_KEYS) {
        if (this.chance(0.5)) continue;
        const value = isComposite(spec.value) && this.chance(0.6) ? this.partial(spec.value) : this.valid(spec.value);
        if (value !== undefined) out[key] = value;
      }
      return out;
    }
    if (spec.k === 'union') return this.partial(this.pick(spec.options));
    return this.valid(spec);
  }

  /** A hub document's value for a node: mostly near-valid, sometimes missing parts, junk or extra keys. */
  hub(spec: Spec, depth = 0): unknown {
    if (depth > 0 && this.chance(0.07)) return this.pick([null, 'x', 7, true, [], {}, [1]]);
    switch (spec.k) {
      case 'string':
        return this.chance(0.7) ? (this.valid(spec) ?? this.pick(STRINGS)) : this.pick(STRINGS);
      case 'number':
        return this.chance(0.7) ? (this.valid(spec) ?? this.pick(NUMBERS)) : this.pick([...NUMBERS, 3.25, -100, 25]);
      case 'boolean':
        return this.chance(0.95) ? this.chance(0.5) : 'true';
      case 'enum':
        return this.chance(0.85) ? this.pick(spec.values) : 'zz';
      case 'object': {
        const out: PlainObject = {};
        const tag = this.#tags.get(spec);
        if (tag !== undefined && this.chance(0.9)) out.kind = this.chance(0.9) ? tag : 'k9';
        for (const field of spec.fields) {
          if (this.chance(0.25)) continue;
          out[field.name] = field.mod !== 'none' && this.chance(0.1) ? null : this.hub(field.spec, depth + 1);
        }
        if (this.chance(0.08)) out.zz = 1;
        if (this.chance(0.05)) out['constructor'] = 'dropped by the client';
        return out;
      }
      case 'array': {
        const items: unknown[] = [];
        const length = Math.floor(this.rng() * 4);
        for (let i = 0; i < length; i++) items.push(this.hub(spec.item, depth + 1));
        return items;
      }
      case 'record': {
        const out: PlainObject = {};
        for (const key of spec.keys ?? RECORD_KEYS) if (this.chance(0.6)) out[key] = this.hub(spec.value, depth + 1);
        if (this.chance(0.05)) out['constructor'] = 1;
        if (spec.keys && this.chance(0.05)) out.w = this.hub(spec.value, depth + 1);
        return out;
      }
      case 'union':
        return this.hub(this.pick(spec.options), depth);
    }
  }
}

function isComposite(spec: Spec): boolean {
  return spec.k === 'object' || spec.k === 'record' || spec.k === 'union';
}

/** Paths a critical (env) value may be declared at, with the node found there: object fields, record keys, union branches. */
function criticalCandidates(spec: Spec, path: string[], out: Array<{ path: string[]; spec: Spec }>): void {
  if (path.length >= 4) return;
  if (spec.k === 'object') {
    for (const field of spec.fields) {
      out.push({ path: [...path, field.name], spec: field.spec });
      criticalCandidates(field.spec, [...path, field.name], out);
    }
  } else if (spec.k === 'record') {
    const key = spec.keys?.[0] ?? 'x';
    out.push({ path: [...path, key], spec: spec.value });
    criticalCandidates(spec.value, [...path, key], out);
  } else if (spec.k === 'union') {
    for (const option of spec.options) criticalCandidates(option, path, out);
  }
}

const HUB_AJV = { strict: false, allErrors: true, unicodeRegExp: false, multipleOfPrecision: 9, addUsedSchema: false, logger: false } as const;

interface Counters {
  runs: number;
  documents: number;
  hubInvalid: number;
  hubValid: number;
  clientInvalid: number;
  clientValid: number;
  /** Documents whose schema had nothing unrepresented: the verdicts were compared for equality. */
  exact: number;
  /** Of `exact`: documents of runs with critical paths, and with defaults. */
  exactWithCritical: number;
  exactWithDefaults: number;
  withCritical: number;
  withDefaults: number;
}

function clientAccepts(schema: z.ZodType, defaults: PlainObject | undefined, hub: PlainObject, env: PlainObject, criticalPaths: string[]): boolean {
  try {
    resolveConfig({ service: 'svc', schema, defaults, hub, env: { values: env, sources: new Map(), missing: new Map() }, criticalPaths });
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'CONFIG_INVALID') return false;
    throw error;
  }
}

function checkRun(root: ObjectSpec, seed: number, ajv: Ajv2020, counters: Counters): void {
  const world = new World(prng(seed));
  const schema = world.zod(root);
  const drawn = world.chance(0.7) ? world.partial(root) : undefined;
  const defaults = isPlainObject(drawn) && Object.keys(drawn).length > 0 ? drawn : undefined;
  // Critical paths: up to two, neither below the other, each with a valid env value.
  const candidates: Array<{ path: string[]; spec: Spec }> = [];
  criticalCandidates(root, [], candidates);
  const critical: Array<{ path: string[]; value: unknown }> = [];
  const wanted = world.chance(0.45) ? 1 + Math.floor(world.rng() * 2) : 0;
  for (let i = 0; i < 6 && critical.length < wanted && candidates.length > 0; i++) {
    const candidate = world.pick(candidates);
    const dotted = candidate.path.join('.');
    if (critical.some((c) => { const other = c.path.join('.'); return other === dotted || other.startsWith(`${dotted}.`) || dotted.startsWith(`${other}.`); })) continue;
    const value = world.valid(candidate.spec);
    if (value === undefined) continue;
    // The env value merges over what the defaults hold there: valid where it stands means valid merged.
    const under = getPath(defaults, candidate.path);
    if (isPlainObject(under) && isPlainObject(value) && !world.zod(candidate.spec).safeParse(mergeLayers([['defaults', under], ['env', value]]).value).success) continue;
    critical.push({ path: candidate.path, value });
  }
  const criticalPaths = critical.map((c) => c.path.join('.'));
  const env: PlainObject = {};
  for (const c of critical) setPath(env, c.path, c.value);

  const exported = exportSchema(schema, defaults, criticalPaths);
  const validate = ajv.compile(exported.upload.schema);
  const exact = exported.upload.unrepresented.length === 0;
  counters.runs++;
  if (criticalPaths.length > 0) counters.withCritical++;
  if (defaults) counters.withDefaults++;
  try {
    for (let d = 0; d < 24; d++) {
      const drawnDoc = world.hub(root);
      const doc = (isPlainObject(drawnDoc) ? drawnDoc : {}) as PlainObject;
      // Through JSON, as the hub stores it (a `constructor` key is an own property either way).
      const hub = JSON.parse(JSON.stringify(doc)) as PlainObject;
      const hubOk = validate(hub) as boolean;
      const clientOk = clientAccepts(schema, defaults, hub, env, criticalPaths);
      counters.documents++;
      counters[hubOk ? 'hubValid' : 'hubInvalid']++;
      counters[clientOk ? 'clientValid' : 'clientInvalid']++;
      const story = () =>
        `run seed ${seed}\nspec ${JSON.stringify(root)}\ndefaults ${JSON.stringify(defaults)}\ncritical ${JSON.stringify(criticalPaths)} env ${JSON.stringify(env)}\n` +
        `hub document ${JSON.stringify(hub)}\nexport ${exported.body}\nhub errors ${JSON.stringify(validate.errors)}`;
      if (!hubOk && clientOk) throw new Error(`the hub refused a document the client accepts (the export is stricter)\n${story()}`);
      if (exact) {
        counters.exact++;
        if (criticalPaths.length > 0) counters.exactWithCritical++;
        if (defaults) counters.exactWithDefaults++;
        if (hubOk !== clientOk) throw new Error(`the verdicts differ (hub ${hubOk}, client ${clientOk}) and nothing is unrepresented\n${story()}`);
      }
    }
  } finally {
    ajv.removeSchema(exported.upload.schema);
  }
}

/** Runs (`FC_RUNS` for more); each checks 24 documents against one drawn schema (≈ 30 ms on the reference machine). */
const NUM_RUNS = Number(process.env.FC_RUNS ?? 300);

describe('the export agrees with the client (property)', () => {
  it('is never stricter than the client, and equal to it where nothing is unrepresented', { timeout: Math.max(60_000, NUM_RUNS * 100) }, () => {
    const ajv = new Ajv2020(HUB_AJV);
    const counters: Counters = { runs: 0, documents: 0, hubInvalid: 0, hubValid: 0, clientInvalid: 0, clientValid: 0, exact: 0, exactWithCritical: 0, exactWithDefaults: 0, withCritical: 0, withDefaults: 0 };
    const seed = process.env.FC_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FC_SEED);
    const numRuns = NUM_RUNS;
    const outcome = fc.check(
      fc.property(rootArb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (root, runSeed) => checkRun(root, runSeed, ajv, counters)),
      { numRuns, seed },
    );
    if (outcome.failed) {
      const cause = outcome.errorInstance instanceof Error ? outcome.errorInstance.message : String(outcome.errorInstance);
      throw new Error(`property failed: FC_SEED=${seed} (path ${outcome.counterexamplePath}), after ${outcome.numRuns} runs\n${cause}`);
    }
    console.log(`fleet schema agreement (seed ${seed}):`, JSON.stringify(counters));
    // Liveness: the property looked at documents, and both verdicts came up on both sides.
    expect(counters.runs).toBeGreaterThanOrEqual(numRuns);
    expect(counters.documents).toBeGreaterThan(0);
    for (const key of ['hubInvalid', 'hubValid', 'clientInvalid', 'clientValid', 'exact', 'exactWithCritical', 'exactWithDefaults', 'withCritical', 'withDefaults'] as const) {
      expect(counters[key], key).toBeGreaterThan(0);
    }
  });
});
