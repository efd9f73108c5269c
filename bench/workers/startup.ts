/**
 * Startup worker: hub down (BENCH_HUB_URL points at a closed port), a last-known-good snapshot in
 * BENCH_SNAPSHOT_DIR. Prints the time of the first value (ms since process start) and exits.
 */
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';

const entered = performance.now();
const service = process.env.BENCH_SERVICE!;
const schema = z.looseObject({ operational: z.looseObject({ batch_size: z.number().int() }) });
const client = new ConfigClient({
  hubUrl: process.env.BENCH_HUB_URL!,
  snapshotDir: process.env.BENCH_SNAPSHOT_DIR!,
  pollIntervalMs: false,
  services: { [service]: { schema } },
});
const value = await client.get(service);
const at = performance.now();
const source = client.status(service).source;
process.stdout.write(`value ${at} ${entered} ${source} ${(value as { operational: { batch_size: number } }).operational.batch_size}\n`);
process.exit(0);
