/**
 * Herd worker: N ConfigClients (no NATS; safety-net poll on) that all call `get` at one wall-clock instant
 * chosen by the parent. Reports when each was configured and, on request, where their values come from.
 */
import type { ServicesMap } from '../../src/options.js';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { ConfigClient } from '../../src/index.js';

interface Start {
  type: 'start';
  hubUrl: string;
  n: number;
  service: string;
  pollIntervalMs: number;
}

const schema = z.looseObject({ operational: z.looseObject({ batch_size: z.number().int() }) });
const clients: ConfigClient[] = [];
let service = '';
const now = () => performance.timeOrigin + performance.now();
const send = (m: unknown) => process.send?.(m);

async function start(m: Start): Promise<void> {
  service = m.service;
  for (let i = 0; i < m.n; i++) {
    clients.push(
      new ConfigClient({
        hubUrl: m.hubUrl,
        snapshotDir: false,
        pollIntervalMs: m.pollIntervalMs,
        services: { [m.service]: { schema } } as ServicesMap,
      }),
    );
  }
  send({ type: 'armed' });
}

async function go(startAt: number): Promise<void> {
  const wait = startAt - now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const begun = now();
  const done = await Promise.all(
    clients.map((c) =>
      c.get(service).then(
        () => ({ t: now(), source: c.status(service).source ?? 'none' }),
        () => ({ t: now(), source: 'failed' }),
      ),
    ),
  );
  send({ type: 'configured', begun, times: done.map((d) => d.t), sources: count(done.map((d) => d.source)) });
}

function count(list: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of list) out[s] = (out[s] ?? 0) + 1;
  return out;
}

process.on('message', (raw) => {
  const m = raw as { type: string };
  if (m.type === 'start') start(m as Start).catch((e: unknown) => send({ type: 'failed', error: String(e) }));
  else if (m.type === 'go') go((m as unknown as { startAt: number }).startAt).catch((e: unknown) => send({ type: 'failed', error: String(e) }));
  else if (m.type === 'status') {
    send({
      type: 'status',
      sources: count(clients.map((c) => c.status(service).source ?? 'none')),
      failing: clients.filter((c) => c.status(service).lastErrorCode !== undefined).length,
    });
  } else if (m.type === 'close') {
    void Promise.allSettled(clients.map((c) => c.close())).then(() => {
      send({ type: 'closed' });
      setTimeout(() => process.exit(0), 20);
    });
  }
});
process.on('disconnect', () => process.exit(0));
