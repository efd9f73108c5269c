import { z } from 'zod';
import { Pool, Agent } from 'undici';
import { ConfigClient } from '../../src/index.js';
import { HubTransport } from '../../src/hub/transport.js';
import { cleanupLab } from '../../test/helpers/lab/registry.js';
import { putConfig, sampleConfig, startHub } from '../lib/lab.js';
import { dist, wallMs } from '../lib/util.js';
const hub = await startHub({});
await putConfig(hub.url, 'bench-doc', sampleConfig());
const schema = z.looseObject({ operational: z.looseObject({ batch_size: z.number().int() }) });
const silent = { debug() {}, info() {}, warn() {}, error() {} } as never;
const mk = () => new HubTransport({ hubUrls: [hub.url + '/'], apiKey: undefined, connectTimeoutMs: 2000, requestTimeoutMs: 5000, retries: 2, retryBaseDelayMs: 100, retryMaxDelayMs: 2000, maxRetryAfterMs: 10000, keepAliveTimeoutMs: 30000, maxResponseBytes: 4 << 20, dispatcher: undefined, logger: silent, random: Math.random });
const variants: Record<string, () => Promise<number>> = {
  client: async () => { const t0 = wallMs(); const c = new ConfigClient({ hubUrl: hub.url, snapshotDir: false, pollIntervalMs: false, services: { 'bench-doc': { schema } } }); await c.get('bench-doc'); const d = wallMs() - t0; await c.close(); return d; },
  transport: async () => { const t0 = wallMs(); const t = mk(); await t.fetchConfig('bench-doc'); const d = wallMs() - t0; await t.close(); return d; },
  agent: async () => { const t0 = wallMs(); const p = new Agent({ connections: 8 }); const r = await p.request({ origin: hub.url, path: '/api/v1/config/bench-doc', method: 'GET' }); await r.body.text(); const d = wallMs() - t0; await p.close(); return d; },
  pool: async () => { const t0 = wallMs(); const p = new Pool(hub.url, { connections: 1 }); const r = await p.request({ path: '/api/v1/config/bench-doc', method: 'GET' }); await r.body.text(); const d = wallMs() - t0; await p.close(); return d; },
};
const xs: Record<string, number[]> = {};
const only = process.env.ONLY; for (let i = 0; i < 600; i++) for (const [n, f] of Object.entries(variants).filter(([k]) => !only || k === only)) (xs[n] ??= []).push(await f());
for (const [n, x] of Object.entries(xs)) { const s = dist(x.slice(30)); console.log(n.padEnd(16), s.p50.toFixed(2), s.mean.toFixed(2), s.p99.toFixed(2)); }
await cleanupLab();
