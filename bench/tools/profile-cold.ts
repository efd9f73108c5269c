/** Profiling aid for figure 2: `node --cpu-prof --import tsx bench/tools/profile-cold.ts` (hub on PGlite, no servers needed). */
import { Pool } from 'undici';
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';
import { cleanupLab } from '../../test/helpers/lab/registry.js';
import { putConfig, sampleConfig, startHub } from '../lib/lab.js';
import { dist, wallMs } from '../lib/util.js';

const mode = process.env.MODE ?? 'client';
const hub = await startHub({});
try {
  await putConfig(hub.url, 'bench-doc', sampleConfig());
  const schema = z.looseObject({ operational: z.looseObject({ batch_size: z.number().int() }) });
  const xs: number[] = [];
  for (let i = 0; i < 400; i++) {
    const t0 = wallMs();
    if (mode === 'client') {
      const c = new ConfigClient({ hubUrl: hub.url, snapshotDir: false, pollIntervalMs: false, services: { 'bench-doc': { schema } } });
      await c.get('bench-doc');
      xs.push(wallMs() - t0);
      await c.close();
    } else {
      const p = new Pool(hub.url, { connections: 1 });
      const res = await p.request({ path: '/api/v1/config/bench-doc', method: 'GET' });
      schema.parse((JSON.parse(await res.body.text()) as { config: unknown }).config);
      xs.push(wallMs() - t0);
      await p.close();
    }
  }
  console.log(mode, dist(xs.slice(50)));
} finally {
  await cleanupLab();
}
