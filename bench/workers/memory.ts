/**
 * Memory worker (run with --expose-gc): heap after loading the package, after N clients with 10 cached
 * services each, and after 10 more services each. Services share one schema object, as a real service
 * defines its schema once at module level.
 */
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('memory worker needs --expose-gc');

async function heap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

const schema = z.looseObject({ operational: z.looseObject({ batch_size: z.number().int() }) });

async function main(): Promise<void> {
  const hubUrl = process.env.BENCH_HUB_URL!;
  const n = Number(process.env.BENCH_CLIENTS ?? 100);
  const names = Array.from({ length: 20 }, (_, i) => `bench-mem-${i}`);
  const services = Object.fromEntries(names.map((s) => [s, { schema }]));
  const loaded = await heap();
  const clients = Array.from({ length: n }, () => new ConfigClient({ hubUrl, snapshotDir: false, services }));
  const constructed = await heap();
  for (const c of clients) await Promise.all(names.slice(0, 10).map((s) => c.get(s)));
  const ten = await heap();
  for (const c of clients) await Promise.all(names.slice(10, 20).map((s) => c.get(s)));
  const twenty = await heap();
  process.send?.({ type: 'memory', n, loaded, constructed, ten, twenty });
  await Promise.all(clients.map((c) => c.close()));
  process.exit(0);
}
main().catch((e: unknown) => {
  process.send?.({ type: 'failed', error: String(e) });
  process.exit(1);
});
