/** Profiling aid for figures 3 and 5: N clients' first get in one process (`N=250 node --cpu-prof --import tsx …`). */
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';
import { cleanupLab } from '../../test/helpers/lab/registry.js';
import { putConfig, sampleConfig, startHub } from '../lib/lab.js';

try {
  const hub = await startHub({});
  await putConfig(hub.url, 'bench-doc', sampleConfig());
  const schema = z.looseObject({ operational: z.looseObject({ batch_size: z.number().int() }) });
  const n = Number(process.env.N ?? 250);
  for (let round = 0; round < 3; round++) {
    const clients = Array.from({ length: n }, () => new ConfigClient({ hubUrl: hub.url, snapshotDir: false, pollIntervalMs: false, services: { 'bench-doc': { schema } } }));
    const t0 = performance.now();
    const done = await Promise.allSettled(clients.map((c) => c.get('bench-doc')));
    console.log(`${n} first gets: ${(performance.now() - t0).toFixed(0)} ms, rejected ${done.filter((d) => d.status === 'rejected').length}`);
    await Promise.all(clients.map((c) => c.close()));
  }
} finally {
  await cleanupLab();
}
