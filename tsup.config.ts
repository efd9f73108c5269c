import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', wire: 'src/wire.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    // The CLI build below writes into dist/ at the same time: leave its files alone.
    clean: ['!cli.js', '!cli.js.map'],
    sourcemap: true,
    target: 'node20',
    splitting: false,
    treeshake: true,
    // `import.meta.url` in the CJS build (src/metrics/otel-api.ts resolves the optional @opentelemetry/api from it).
    shims: true,
  },
  {
    // The `central-hub` bin: ESM only, no types, the shebang on this file only.
    entry: { cli: 'src/cli/bin.ts' },
    format: ['esm'],
    dts: false,
    clean: false,
    sourcemap: true,
    target: 'node20',
    splitting: false,
    treeshake: true,
    banner: { js: '#!/usr/bin/env node' },
  },
]);
