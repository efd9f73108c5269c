/**
 * Figure 8: client CPU per applied change. 100 clients in one worker process share one NATS connection and
 * watch one service of the real hub (PostgreSQL + NATS, Ed25519-signed notices); the bench writes a new value
 * per round and waits until every client's onChange fired. The worker's own CPU time (user + system) over the
 * measured rounds, less its idle CPU over as long a quiet window, divided by rounds × clients. Two modes: the
 * signed notices of the default fleet setup (`nats.verifyKeys`: the payload is applied, no GET) and the refetch
 * mode (notice → conditional GET → onChange). Signature verification is reported on its own: checks per change
 * per process (counted by the client) and the cost of one check, measured here on the same notice.
 * `BENCH_PROF=<dir>` writes a `--cpu-prof` profile of each mode's worker there.
 */
import { generateKeyPairSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { signNotice, verifyNoticeSignature } from '../../src/hub/notice-signature.js';
import { closeWorkers, putConfig, sampleConfig, startWorker, type Worker } from '../lib/lab.js';
import { dist, type FigureResult, fmt, log, round, sleep, wallMs, within } from '../lib/util.js';
import type { BenchContext } from './context.js';

const CLIENTS = 100;

interface Cpu {
  micros: number;
  checks: number;
  /** Fleet report requests sent so far. */
  posts: number;
}

type Mode = 'signed' | 'signed, no fleet reports' | 'refetch';

const MODE_LABEL: Record<Mode, string> = {
  signed: 'signed notices (nats.verifyKeys), payload applied, no GET',
  'signed, no fleet reports': 'the same with fleetReport: false (what applying the change costs)',
  refetch: 'refetch (notice → conditional GET)',
};

async function cpuOf(worker: Worker): Promise<Cpu> {
  worker.send({ type: 'cpu' });
  return worker.next<Cpu>('cpu', 10_000);
}

/** µs per `verifyNoticeSignature` of a signed ~1 KB notice (median of 5 batches of 500). */
function verificationMicros(): number {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const notice = signNotice(
    { service_name: 'bench-cpu', config: sampleConfig({ round: 1 }), version: 'v1', updated_at: Date.now(), updated_by: 'bench', revision: 1, action: 'updated' },
    privateKey,
    'bench-verify',
  );
  const keys = new Map([['bench-verify', publicKey]]);
  const batches: number[] = [];
  for (let b = 0; b < 6; b++) {
    const t0 = performance.now();
    for (let i = 0; i < 500; i++) if (!verifyNoticeSignature(notice, keys).ok) throw new Error('bench: the signed notice does not verify');
    if (b > 0) batches.push(((performance.now() - t0) * 1000) / 500);
  }
  return dist(batches).p50;
}

export async function figure8(ctx: BenchContext): Promise<FigureResult> {
  const service = 'bench-cpu';
  const rounds = ctx.quick ? 10 : 40;
  await putConfig(ctx.hub.url, service, sampleConfig({ round: 0 }));
  const rows: Array<Record<string, string | number>> = [];
  const goals: FigureResult['goals'] = [];
  const data: Record<string, unknown> = {};
  let seq = 0;
  const verifyUs = verificationMicros();
  const perChangeOf: Partial<Record<Mode, { perChange: number; postsPerChange: number; perSecond: number }>> = {};
  for (const mode of ['signed', 'signed, no fleet reports', 'refetch'] as const) {
    const worker = startWorker('propagation', process.env.BENCH_PROF ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] } : {});
    try {
      let waiting: { round: number; resolve: () => void } | undefined;
      worker.on('fired', (m) => {
        if (waiting && Number(m.round) === waiting.round) waiting.resolve();
      });
      const verifyKeys = mode !== 'refetch' ? { [ctx.noticeKey.keyId]: ctx.noticeKey.publicKeyPem } : undefined;
      const fleetReport = mode !== 'signed, no fleet reports';
      worker.send({ type: 'start', hubUrl: ctx.hub.url, natsUrl: ctx.nats.url, n: CLIENTS, shared: 1, service, applyPayload: false, verifyKeys, fleetReport, stamps: false });
      const ready = await worker.next<{ notConnected: number }>('ready', 120_000);
      if (ready.notConnected > 0) throw new Error(`${ready.notConnected} clients never reported NATS connected`);
      const change = async (): Promise<number> => {
        const r = ++seq;
        const fired = new Promise<void>((resolve) => (waiting = { round: r, resolve }));
        const t0 = wallMs();
        await putConfig(ctx.hub.url, service, sampleConfig({ round: r }));
        await within(10_000, `figure 8 round ${r}`, fired);
        return wallMs() - t0;
      };
      for (let i = 0; i < 3; i++) await change();
      // The fleet report each client sends after a change (at most 1/s) is part of what a change costs: let the
      // warm-up's settle, then count everything the process does over the measured rounds.
      await sleep(2100);
      const before = await cpuOf(worker);
      const t0 = wallMs();
      const latencies: number[] = [];
      for (let i = 0; i < rounds; i++) {
        latencies.push(await change());
        await sleep(20);
      }
      // The last round's fleet reports: due up to 1 s after the change, then held for the one-per-second bound.
      await sleep(2100);
      const after = await cpuOf(worker);
      const busyMs = wallMs() - t0;
      // Idle CPU of the same process (timers, NATS pings) over as long a window, subtracted.
      const quiet0 = await cpuOf(worker);
      await sleep(Math.min(busyMs, 5000));
      const quiet1 = await cpuOf(worker);
      const idlePerMs = (quiet1.micros - quiet0.micros) / Math.min(busyMs, 5000);
      const used = after.micros - before.micros - idlePerMs * busyMs;
      const perChange = used / (rounds * CLIENTS);
      const checksPerChange = (after.checks - before.checks) / rounds;
      const postsPerChange = (after.posts - before.posts) / (rounds * CLIENTS);
      perChangeOf[mode] = { perChange, postsPerChange, perSecond: rounds / (busyMs / 1000) };
      const dl = dist(latencies);
      rows.push({
        mode: MODE_LABEL[mode],
        'CPU µs per client per change': round(perChange, 1),
        'signature checks per change (process)': round(checksPerChange, 2),
        'fleet report requests per client per change': round(postsPerChange, 3),
        'all fired p50 ms': round(dl.p50, 2),
        'idle CPU µs/s (subtracted)': round(idlePerMs * 1000, 0),
        rounds,
        clients: CLIENTS,
      });
      data[mode] = { used, rounds, clients: CLIENTS, idlePerMs, checks: after.checks - before.checks, latencies };
      if (mode === 'signed') {
        // The measure: the signature check reported on its own (its own row), not in the per-change figure.
        const withoutCheck = perChange - (checksPerChange * verifyUs) / CLIENTS;
        goals.push({
          goal: 'signed notices: client CPU per applied change ≤ 80 µs (the signature check reported separately)',
          measured: `${fmt(withoutCheck, 1)} µs (${fmt(perChange, 1)} µs with the check's share)`,
          met: withoutCheck <= 80,
        });
        goals.push({ goal: 'signature verified once per distinct message per process', measured: `${fmt(checksPerChange, 2)} checks per change (${CLIENTS} clients)`, met: checksPerChange === 1 });
      } else if (mode === 'refetch') {
        goals.push({ goal: 'refetch mode: client CPU per applied change (reported)', measured: `${fmt(perChange, 1)} µs`, met: null });
      } else {
        goals.push({ goal: 'signed notices without fleet reports: client CPU per applied change (reported)', measured: `${fmt(perChange, 1)} µs`, met: null });
      }
      log(`change cpu: ${mode}: ${fmt(perChange, 1)} µs per client per change, ${fmt(checksPerChange, 2)} checks per change`);
    } finally {
      await closeWorkers([worker]);
    }
  }
  const blank = { 'signature checks per change (process)': '', 'fleet report requests per client per change': '', 'all fired p50 ms': '', 'idle CPU µs/s (subtracted)': '', rounds: '', clients: '' };
  rows.push({ mode: 'one Ed25519 signature check of the same ~1 KB notice (in the bench process)', 'CPU µs per client per change': round(verifyUs, 1), ...blank });
  const withReports = perChangeOf.signed;
  const without = perChangeOf['signed, no fleet reports'];
  const notes: string[] = [];
  if (withReports && without && withReports.postsPerChange > 0) {
    const perPost = (withReports.perChange - without.perChange) / withReports.postsPerChange;
    rows.push({ mode: 'one fleet report request (difference of the first two rows ÷ requests per change)', 'CPU µs per client per change': round(perPost, 1), ...blank });
    notes.push(
      `Fleet reports: ${fmt(withReports.postsPerChange, 3)} requests per client per change here, because at most one goes per second per client and this figure makes ${fmt(withReports.perSecond, 1)} changes per second (the last fleet reports' 2.1 s included); at one change per second or fewer every change costs one request (${fmt(perPost, 0)} µs measured here) on top of the ${fmt(without.perChange, 1)} µs of applying it.`,
    );
  }
  goals.push({ goal: 'one signature check (reported separately)', measured: `${fmt(verifyUs, 1)} µs per distinct message per process`, met: null });
  return {
    id: 8,
    title: 'Client CPU per applied change, µs',
    method: `${CLIENTS} ConfigClients in one worker process (bundled, plain node) on one shared NATS connection, watching one service of the bench's hub (PostgreSQL + NATS, signed notices). ${rounds} measured rounds after 3 warm-up rounds: POST a new value, wait until all ${CLIENTS} onChange fired, 20 ms pause. CPU = process.cpuUsage() of the worker (user + system) across the rounds plus 2.1 s for the last fleet reports, less the same process's idle CPU rate over a quiet window; ÷ (rounds × clients). Includes NATS delivery to ${CLIENTS} subscriptions, notice parse, merge, schema, freeze, diff, onChange and the fleet reports (the second row: none); the refetch row adds one conditional GET per client. The worker's onChange keeps no timestamps and tells the bench once per round.`,
    rows,
    goals,
    notes: [
      ...notes,
      'Signature checks are counted by the client (noticeSignatureChecks in src/watch/notice.ts): one Ed25519 verification per distinct message and key per process, however many clients share the message. Its cost, in the last row, is part of the signed row divided by the clients of the process.',
    ],
    data,
  };
}
