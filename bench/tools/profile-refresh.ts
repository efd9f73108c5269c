/**
 * Profiling aid for figure 3: one client's CPU per change, in-process (`node --import tsx bench/tools/profile-refresh.ts`,
 * add `--cpu-prof` for a profile). Parts of the refresh road are timed alone (same document as the bench),
 * then the whole road for N clients: the notice parsed (as every subscription does) → refresh() (the road
 * handleNotice takes) → conditional GET to a hub stand-in in a child process that serves a new revision →
 * onChange (µs of CPU per client per change); then the figure's floor per GET (undici Pool + JSON.parse).
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';
import { configDocumentSchema } from '../../src/hub/wire.js';
import { readEnvLayer } from '../../src/layers/env.js';
import { changedPaths, deepEqual } from '../../src/layers/paths.js';
import { resolveConfig } from '../../src/layers/resolve.js';
import { parseNotice } from '../../src/watch/notice.js';
import { sampleConfig } from '../lib/lab.js';

if (process.env.PROFILE_REFRESH_SERVER) {
  let round = 1;
  const server = createServer((req, res) => {
    const etag = `"r${round}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', etag });
    res.end(JSON.stringify({ service_name: 'bench-prop', config: sampleConfig({ round }), version: `v${round}`, updated_at: 1_700_000_000_000 + round, revision: round }));
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  process.on('message', (m) => {
    round = (m as { round: number }).round;
    process.send?.({ ok: true });
  });
  process.on('disconnect', () => process.exit(0));
  await new Promise(() => undefined);
}

const schema = z.looseObject({ round: z.number().int(), operational: z.looseObject({ batch_size: z.number().int() }) });
const service = 'bench-prop';

function doc(round: number): Record<string, unknown> {
  return { service_name: service, config: sampleConfig({ round }), version: `v${round}`, updated_at: 1_700_000_000_000 + round, revision: round };
}

function time(label: string, iterations: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(2000, iterations); i++) fn(i);
  const t0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < iterations; i++) fn(i);
  const cpu = process.cpuUsage(t0);
  const us = (cpu.user + cpu.system) / iterations;
  console.log(`${label.padEnd(44)} ${us.toFixed(2).padStart(8)} µs cpu/op  ${(((performance.now() - w0) * 1000) / iterations).toFixed(2).padStart(8)} µs wall/op`);
  return us;
}

const ITER = Number(process.env.ITER ?? 20_000);
const body = JSON.stringify(doc(1));
const bodyBytes = Buffer.from(body);
const noticeBytes = Buffer.from(JSON.stringify({ service_name: service, revision: 2, version: 'v2', updated_at: 1_700_000_000_002, config: sampleConfig({ round: 2 }) }));
const env = readEnvLayer(undefined, {}, schema);
const parsedDoc = configDocumentSchema.parse(JSON.parse(body));
const resolvedA = resolveConfig({ service, schema, defaults: undefined, hub: parsedDoc.config, env, criticalPaths: [] });
const resolvedB = resolveConfig({ service, schema, defaults: undefined, hub: { ...parsedDoc.config, round: 2 }, env, criticalPaths: [] });

console.log(`document: ${bodyBytes.length} bytes; notice: ${noticeBytes.length} bytes`);
time('parseNotice (JSON + zod)', ITER, () => parseNotice(service, noticeBytes));
time('body toString + JSON.parse', ITER, () => JSON.parse(bodyBytes.toString('utf8')));
time('configDocumentSchema.safeParse', ITER, () => configDocumentSchema.safeParse(JSON.parse(body)));
time('resolveConfig (sanitize/strip/merge/zod/freeze)', ITER, () =>
  resolveConfig({ service, schema, defaults: undefined, hub: parsedDoc.config, env, criticalPaths: [] }),
);
time('deepEqual(value, value) unequal', ITER, () => deepEqual(resolvedA.value, resolvedB.value));
time('deepEqual(hub, hub) equal', ITER, () => deepEqual(resolvedA.hub, resolvedA.hub && { ...resolvedA.hub }));
time('changedPaths', ITER, () => changedPaths(resolvedA.value, resolvedB.value));

// The whole road, over HTTP, N clients in one process, changes one after the other.
const N = Number(process.env.N ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 30);
// The hub stand-in runs in a child process, so its CPU is not counted here.
let current = 1;
const serverChild = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, PROFILE_REFRESH_SERVER: '1' }, execArgv: ['--import', 'tsx'] });
const port = await new Promise<number>((resolve) => serverChild.once('message', (m) => resolve((m as { port: number }).port)));
const hubUrl = `http://127.0.0.1:${port}`;
const setRound = (r: number) =>
  new Promise<void>((resolve) => {
    serverChild.once('message', () => resolve());
    serverChild.send({ round: r });
  });
// NATS is stubbed out: notices are handed to the runtime the way the client's watcher callback does.
const clients = Array.from({ length: N }, () => new ConfigClient({ hubUrl, snapshotDir: false, pollIntervalMs: false, services: { [service]: { schema } } }));
await Promise.all(clients.map((c) => c.get(service)));
let fired = 0;
let onAll: (() => void) | undefined;
for (const c of clients) c.onChange(service, () => { if (++fired === N) onAll?.(); });
// refresh() is the road a notice takes (handleNotice → refresh('nats', true)).
const cpuPerChange: number[] = [];
const wallPerChange: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  current++;
  await setRound(current);
  fired = 0;
  const all = new Promise<void>((resolve) => (onAll = resolve));
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (const c of clients) {
    // notice parse per client, as each subscription does
    const parsed = parseNotice(service, Buffer.from(JSON.stringify({ service_name: service, revision: current, version: `v${current}`, updated_at: 1_700_000_000_000 + current })));
    if (!parsed.ok) throw parsed.error;
    void c.refresh(service);
  }
  await all;
  const cpu = process.cpuUsage(c0);
  if (r >= 3) {
    cpuPerChange.push((cpu.user + cpu.system) / N);
    wallPerChange.push(((performance.now() - w0) * 1000) / N);
  }
}
cpuPerChange.sort((a, b) => a - b);
wallPerChange.sort((a, b) => a - b);
const med = (a: number[]) => a[Math.floor(a.length / 2)]!.toFixed(1);
console.log(`whole road, ${N} clients (notice parse + refresh → onChange): ${med(cpuPerChange)} µs cpu / client / change (median), ${med(wallPerChange)} µs wall`);
// The figure's floor, per GET: N concurrent GETs over N warm keep-alive connections + JSON.parse.
const pool = new Pool(hubUrl, { connections: N });
const floorCpu: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: N }, async () => {
      const res = await pool.request({ path: `/api/v1/config/${service}`, method: 'GET' });
      JSON.parse(await res.body.text());
    }),
  );
  const cpu = process.cpuUsage(c0);
  if (r >= 3) floorCpu.push((cpu.user + cpu.system) / N);
}
floorCpu.sort((a, b) => a - b);
console.log(`floor (undici Pool GET + JSON.parse): ${med(floorCpu)} µs cpu / GET (median)`);
await pool.close();
await Promise.all(clients.map((c) => c.close()));
serverChild.kill();
