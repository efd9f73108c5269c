/**
 * B3 (fast-check): arbitrary env / hub document / defaults through a real client (msw hub) →
 * env wins on critical paths (the hub never sets one), and the result validates against the schema, or the
 * call fails with a typed ConfigError. Never an untyped throw, never a hub value at a critical path.
 */
import fc from 'fast-check';
import { HttpResponse, http } from 'msw';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigClient, isConfigError } from '../../src/index.js';
import { coerceEnvValue } from '../../src/layers/env.js';
import { getPath } from '../../src/layers/paths.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';
import { recordFigure } from './figures.js';
import { expectLive, expectRuns } from './liveness.js';

const HUB = 'http://hub.test';
const SERVICE = 'chaos-b3';
const RUNS = 600;

const schema = z.object({
  db: z.object({
    host: z.string().default('localhost'),
    port: z.number().int().min(1).max(65_535),
    password: z.string().optional(),
  }),
  features: z.object({ enabled: z.boolean().optional(), flags: z.array(z.string()).optional() }).default({}),
  limits: z.record(z.string(), z.number()).optional(),
});
const critical = { 'db.port': 'DB_PORT', 'db.password': 'DB_PASSWORD', 'features.enabled': 'FEATURE_ON' } as const;

let agent: MswAgent;
let hubBody: unknown;
/** Liveness: requests the msw hub answered. */
let hubAnswers = 0;

beforeAll(() => {
  agent = createMswAgent([
    http.get(`${HUB}/api/v1/config/:service`, () => {
      hubAnswers++;
      return HttpResponse.json(hubBody as Record<string, unknown>);
    }),
  ]);
});
afterAll(async () => {
  await agent.close();
});

const envString = fc.oneof(
  fc.string(),
  fc.integer({ min: -10, max: 70_000 }).map(String),
  fc.constantFrom('true', 'false', '1', '0', ' 8080 ', '', 'null', '1e3', 'NaN'),
);
/** Mostly well-typed values (so that many runs validate), sometimes anything at all. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: fc.anything({ maxDepth: 2 }), weight: 1 });
const layerArb = fc.record(
  {
    db: fc.record(
      { host: mostly(fc.string()), port: mostly(fc.integer({ min: 1, max: 65_535 })), password: mostly(fc.string()) },
      { requiredKeys: [] },
    ),
    features: fc.record({ enabled: mostly(fc.boolean()), flags: mostly(fc.array(fc.string(), { maxLength: 3 })) }, { requiredKeys: [] }),
    limits: fc.dictionary(fc.string({ maxLength: 5 }), mostly(fc.integer())),
    extra: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);
const envArb = fc.record({
  DB_PORT: fc.option(fc.oneof({ arbitrary: fc.integer({ min: 1, max: 65_535 }).map(String), weight: 3 }, { arbitrary: envString, weight: 1 }), {
    nil: undefined,
  }),
  DB_PASSWORD: fc.option(envString, { nil: undefined }),
  FEATURE_ON: fc.option(fc.oneof(fc.constantFrom('true', 'false', '1', '0'), envString), { nil: undefined }),
});

describe('property: merge precedence', () => {
  it(`B3: arbitrary env/hub/defaults → env wins on critical paths; validates or a typed ConfigError (${RUNS} runs)`, async () => {
    let resolved = 0;
    let typed = 0;
    await fc.assert(
      fc.asyncProperty(
        envArb,
        layerArb,
        fc.oneof(layerArb, fc.jsonValue({ maxDepth: 2 }), fc.constant('{"db":'), fc.constant(null)),
        async (env, defaults, hub) => {
          hubBody = { service_name: SERVICE, config: hub, version: '1', updated_at: 1_760_000_000_000, revision: 1 };
          const client = new ConfigClient({
            hubUrl: HUB,
            snapshotDir: false,
            pollIntervalMs: false,
            startupTimeoutMs: 1_000,
            transport: { dispatcher: agent, retries: 0 },
            env,
            services: { [SERVICE]: { schema, defaults: defaults as never, env: critical } },
          });
          try {
            let value: unknown;
            try {
              value = await client.get(SERVICE);
            } catch (error) {
              if (!isConfigError(error)) throw new Error(`untyped error: ${String(error)}`);
              typed++;
              return;
            }
            resolved++;
            expect(schema.safeParse(value).success).toBe(true);
            for (const [path, variable] of Object.entries(critical)) {
              const parts = path.split('.');
              const raw = env[variable as keyof typeof env];
              const expected = raw === undefined ? getPath(defaults, parts) : coerceEnvValue(raw, schema, parts);
              expect(getPath(value, parts), `${path} (env ${JSON.stringify(raw)})`).toEqual(expected);
            }
          } finally {
            await client.close();
          }
        },
      ),
      { numRuns: RUNS },
    );
    recordFigure({ row: 'B3', name: `counterexamples over ${RUNS} runs`, value: 0, unit: 'count' });
    recordFigure({ row: 'B3', name: 'runs resolved / typed ConfigError', value: `${resolved} / ${typed}` });
    // Both outcomes are exercised in earnest.
    expect(resolved).toBeGreaterThan(RUNS / 10);
    expect(typed).toBeGreaterThan(RUNS / 10);
    expectRuns('B3', resolved + typed, RUNS);
    expectLive('B3', 'hub requests answered', hubAnswers, RUNS);
  });
});
