/** Debug aid: the start of figure 3 (PostgreSQL hub + NATS, direct UPDATE, one client with NATS). */
import pg from 'pg';
import { startNatsServer } from '../../test/helpers/lab/nats-server.js';
import { startPostgres } from '../../test/helpers/lab/postgres-cluster.js';
import { cleanupLab } from '../../test/helpers/lab/registry.js';
import { putConfig, sampleConfig, startHub } from '../lib/lab.js';

try {
  const [nats, pgc] = await Promise.all([startNatsServer(), startPostgres()]);
  const hub = await startHub({ NATS_URL: nats.url, DATABASE_URL: pgc.url });
  await putConfig(hub.url, 'bench-prop', sampleConfig({ round: 0 }));
  await putConfig(hub.url, 'bench-floor', sampleConfig({ round: 0 }));
  const db = new pg.Client({ connectionString: pgc.url });
  await db.connect();
  for (let i = 0; i < 3; i++) {
    await db.query(`UPDATE service_configs SET config_json = $1::jsonb, updated_by = 'bench' WHERE service_name = $2`, [JSON.stringify(sampleConfig({ round: i })), 'bench-floor']);
    const t = performance.now();
    const r = await fetch(`${hub.url}/api/v1/config/bench-floor`);
    console.log('floor get', r.status, performance.now() - t);
  }
  const t = performance.now();
  const r = await fetch(`${hub.url}/api/v1/config/bench-prop`, { signal: AbortSignal.timeout(5000) });
  console.log('prop get', r.status, performance.now() - t);
  await db.end();
} finally {
  await cleanupLab();
}
