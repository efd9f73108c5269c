/**
 * Profiling aid for figure 4: a hub (PostgreSQL when STORE=postgres, else PGlite) with --cpu-prof under
 * autocannon. `npx tsx bench/tools/profile-hub.ts`; the profile lands in /tmp/hub-prof.
 */
// @ts-expect-error autocannon ships no types
import autocannon from 'autocannon';
import { startPostgres } from '../../test/helpers/lab/postgres-cluster.js';
import { cleanupLab } from '../../test/helpers/lab/registry.js';
import { HUB_READY_LINE, spawnProcess } from '../../test/helpers/lab/child-process.js';
import { putConfig, sampleConfig } from '../lib/lab.js';

try {
  const env: Record<string, string> = { DISABLE_AUTH: 'true', HUB_LOG_LEVEL: 'warn', PORT: '0' };
  if (process.env.STORE === 'postgres') env.DATABASE_URL = (await startPostgres({ maxConnections: 100 })).url;
  const proc = await spawnProcess(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/hub-prof', '--import', 'tsx', 'examples/hub/main.ts'], { env, readyLine: HUB_READY_LINE, timeoutMs: 60_000 });
  const hub = { url: proc.match![1]!, stop: () => proc.stop() };
  await putConfig(hub.url, 'bench-doc', sampleConfig());
  if (process.env.STORM) {
    const { ConfigClient } = await import('../../src/index.js');
    const n = Number(process.env.STORM);
    const clients = Array.from({ length: n }, () => new ConfigClient({ hubUrl: hub.url, snapshotDir: false, pollIntervalMs: false, startupTimeoutMs: 20_000 }));
    const t0 = performance.now();
    await Promise.all(clients.map((c) => c.get('bench-doc')));
    console.log(`storm of ${n} first gets: ${(performance.now() - t0).toFixed(0)} ms`);
    await Promise.all(clients.map((c) => c.close()));
  }
  // NOT_MODIFIED=1: the 304 path (If-None-Match with the current ETag).
  const etag = process.env.NOT_MODIFIED ? String((await fetch(`${hub.url}/api/v1/config/bench-doc`)).headers.get('etag')) : undefined;
  const headers = etag === undefined ? {} : { 'if-none-match': etag };
  const r = await autocannon({ url: `${hub.url}/api/v1/config/bench-doc`, connections: 50, duration: Number(process.env.SECONDS ?? 5), headers });
  console.log('req/s', r.requests.average, 'p99', r.latency.p99);
  await hub.stop();
} finally {
  await cleanupLab();
}
