// StrykerJS mutation testing of src/ — `npm run test:mutation` (not part of .ci/run; see README, "Mutation testing").
// Narrow a run with `npm run test:mutation -- --mutate 'src/layers/**/*.ts'`.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts' },
  coverageAnalysis: 'perTest',
  mutate: ['src/**/*.ts'],
  // The build output, benchmarks and local data are not needed in the sandbox.
  ignorePatterns: ['dist', 'bench', 'coverage', 'reports', '.hub-data', '.snapshots', '.central-hub-config', '*.tgz'],
  tempDirName: 'reports/stryker-tmp',
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  // The machines have 2 cores shared with other work.
  concurrency: 1,
  timeoutMS: 10_000,
  thresholds: { high: 90, low: 80, break: null },
};
