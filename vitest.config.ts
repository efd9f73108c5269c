import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    typecheck: { enabled: true, include: ['test/types/**/*.test-d.ts'] },
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration and chaos suites start their own servers; keep the 2-core machines from thrashing.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
