import { defineConfig } from 'vitest/config';

// Vitest config used only by Stryker (`npm run test:mutation`, see stryker.config.mjs): the fast unit tests.
// Left out: the lab-* unit tests (they start real servers — nats-server, PostgreSQL, child processes) and the
// hub-* unit tests of examples/hub, which import nothing from src/ (hub-transport.test.ts, which tests
// src/hub/transport.ts, stays in).
// The model-based tests of the runtime (test/chaos/props-client-runtime-model*.test.ts) need NATS at
// 127.0.0.1:4222 and take ≈ 24 s per run, i.e. per mutant they cover: opt in with STRYKER_MODEL_TESTS=1.
const modelTests = process.env.STRYKER_MODEL_TESTS === '1' ? ['test/chaos/props-client-runtime-model*.test.ts'] : [];
// The fleet schema agreement property (test/unit/fleet-schema-agreement.test.ts) draws 300 schemas by default,
// ≈ 4 s a run and far more instrumented, for every mutant of src/layers and src/fleet it covers: 50 here.
const fcRuns = process.env.FC_RUNS || '50';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', ...modelTests],
    exclude: [
      '**/node_modules/**',
      'test/unit/lab-*.test.ts',
      'test/unit/hub-{auth,body,merge-patch,nats-auth,secrets}.test.ts',
    ],
    typecheck: { enabled: false },
    env: { FC_RUNS: fcRuns },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
