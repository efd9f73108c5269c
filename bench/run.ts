/**
 * `npm run bench` — every figure beside its floor, measured in the same run (issue 5).
 * `BENCH_QUICK=1` runs a ~1-minute pass that checks the harness (exit 0 when every figure ran), not the numbers.
 * `BENCH_ONLY=1,3` runs a subset. Results: bench/results/latest.json and latest.md.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { startNatsServer } from '../test/helpers/lab/nats-server.js';
import { startPostgres } from '../test/helpers/lab/postgres-cluster.js';
import { cleanupLab } from '../test/helpers/lab/registry.js';
import type { BenchContext } from './figures/context.js';
import { figure1 } from './figures/f1-hot-get.js';
import { figure2 } from './figures/f2-cold-get.js';
import { figure3 } from './figures/f3-propagation.js';
import { figure4 } from './figures/f4-throughput.js';
import { figure5 } from './figures/f5-herd.js';
import { figure6 } from './figures/f6-memory.js';
import { figure7 } from './figures/f7-startup.js';
import { figure8 } from './figures/f8-change-cpu.js';
import { figure9 } from './figures/f9-hub-cold-start.js';
import { BENCH_DIR, buildWorkers, putConfig, sampleConfig, startHub } from './lib/lab.js';
import { renderMarkdown } from './lib/report.js';
import { type FigureResult, log, QUICK, within } from './lib/util.js';

const FIGURES: Array<[number, string, (ctx: BenchContext) => Promise<FigureResult>, number]> = [
  [1, 'hot get', figure1, 120_000],
  [2, 'cold get', figure2, 180_000],
  [7, 'startup from snapshot', figure7, 120_000],
  [6, 'memory', figure6, 120_000],
  [4, 'hub throughput', figure4, 240_000],
  [3, 'propagation', figure3, 300_000],
  [5, 'herd', figure5, 180_000],
  [8, 'client CPU per change', figure8, 240_000],
  [9, 'embedded hub cold start', figure9, 240_000],
];

async function main(): Promise<number> {
  const started = Date.now();
  const only = process.env.BENCH_ONLY?.split(',').map(Number);
  const results: FigureResult[] = [];
  let fatal: string | undefined;
  try {
    log(`building workers; mode ${QUICK ? 'quick' : 'full'}`);
    await buildWorkers();
    log('starting nats-server and PostgreSQL (private, loopback)');
    const [nats, pg] = await Promise.all([startNatsServer(), startPostgres({ maxConnections: 200 })]);
    // The hub signs every notice (Ed25519); only figure 3's signed rows give their clients the public key.
    const signing = generateKeyPairSync('ed25519');
    const noticeKey = { keyId: 'bench-1', publicKeyPem: signing.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
    const hub = await startHub({
      DATABASE_URL: pg.url,
      NATS_URL: nats.url,
      HUB_NOTICE_SIGNING_KEY: signing.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      HUB_NOTICE_KEY_ID: noticeKey.keyId,
    });
    log(`hub ${hub.url} (store ${hub.store}, nats ${hub.nats})`);
    const service = 'bench-doc';
    await putConfig(hub.url, service, sampleConfig());
    const res = await request(`${hub.url}/api/v1/config/${service}`);
    const docBody = await res.body.text();
    const docEtag = String(res.headers.etag);
    const ctx: BenchContext = { quick: QUICK, nats, pg, hub, service, docBody, docEtag, noticeKey };
    for (const [id, name, run, timeoutMs] of FIGURES) {
      if (only && !only.includes(id)) continue;
      const t0 = Date.now();
      log(`figure ${id}: ${name}`);
      try {
        const result = await within(timeoutMs, `figure ${id}`, run(ctx));
        result.durationMs = Date.now() - t0;
        results.push(result);
        log(`figure ${id}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s; goals: ${result.goals.map((g) => `${g.goal} → ${g.measured} ${g.met === null ? '' : g.met ? 'met' : 'MISSED'}`).join('; ')}`);
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        log(`figure ${id} FAILED: ${message}`);
        if (process.env.BENCH_DEBUG) log(`hub output (tail):\n${ctx.hub.output().slice(-3000)}`);
        results.push({ id, title: name, method: '', rows: [], goals: [], notes: [], error: message, durationMs: Date.now() - t0 });
      }
    }
  } catch (error) {
    fatal = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`bench setup FAILED: ${fatal}`);
  } finally {
    log('stopping servers');
    await within(60_000, 'cleanup', cleanupLab()).catch((e: unknown) => log(`cleanup: ${String(e)}`));
  }
  results.sort((a, b) => a.id - b.id);
  const report = {
    generatedAt: new Date().toISOString(),
    mode: QUICK ? 'quick' : 'full',
    durationMs: Date.now() - started,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}`, totalMemMiB: Math.round(os.totalmem() / 2 ** 20) },
    fatal,
    figures: results,
  };
  const dir = path.join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const suffix = only ? '-partial' : '';
  writeFileSync(path.join(dir, `latest${suffix}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(dir, `latest${suffix}.md`), renderMarkdown(report));
  log(`wrote bench/results/latest${suffix}.{json,md} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const failed = results.filter((r) => r.error).length;
  return fatal || failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(`bench crashed: ${String(error)}`);
    process.exit(1);
  },
);
