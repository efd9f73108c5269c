/**
 * Figure 4: hub throughput, GET 200 and GET 304 (If-None-Match), autocannon with 50 keep-alive
 * connections, on PostgreSQL and on PGlite, vs a bare Fastify route serving the same bytes from memory.
 */
// @ts-expect-error autocannon ships no types
import autocannon from 'autocannon';
import os from 'node:os';
import type { HubProcess } from '../../test/helpers/lab/child-process.js';
import { encodeReport, REPORT_HEADER } from '../../src/fleet/wire.js';
import { putConfig, sampleConfig, startHub, startWorker } from '../lib/lab.js';
import { type FigureResult, fmt, round } from '../lib/util.js';
import type { BenchContext } from './context.js';

interface Cannon {
  requests: { average: number };
  latency: { p50: number; p99: number; max: number };
  '2xx': number;
  '3xx'?: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

function cannon(url: string, headers: Record<string, string>, duration: number, reporting = false): Promise<Cannon> {
  if (!reporting) return autocannon({ url, connections: 50, pipelining: 1, duration, headers }) as Promise<Cannon>;
  // Reporting clients (issue 11): every request carries the x-config-report header of one of REPORTERS
  // instances, in turn, as a fleet of ConfigClients does on its polls.
  let next = 0;
  return autocannon({
    url,
    connections: 50,
    pipelining: 1,
    duration,
    headers,
    requests: [
      {
        setupRequest: (req: { headers?: Record<string, string> }) => {
          req.headers = { ...req.headers, ...headers, [REPORT_HEADER]: REPORT_HEADERS[next++ % REPORT_HEADERS.length]! };
          return req;
        },
      },
    ],
  }) as Promise<Cannon>;
}

const REPORTERS = 200;
let REPORT_HEADERS: string[] = [];

function reportHeaders(service: string, revision: number): string[] {
  return Array.from({ length: REPORTERS }, (_, i) =>
    encodeReport({
      v: 1,
      id: `bench-instance-${i}`,
      host: `bench-host-${i % 20}`,
      pid: 1000 + i,
      client: '0.1.0',
      poll_ms: 60_000,
      services: { [service]: { revision, source: 'hub', stale: false, error: null, schema: null } },
    }),
  );
}

export async function figure4(ctx: BenchContext): Promise<FigureResult> {
  const duration = ctx.quick ? 2 : 8;
  const warm = ctx.quick ? 1 : 2;
  const path = `/api/v1/config/${ctx.service}`;
  const ceiling = startWorker('ceiling', { env: { BENCH_BODY: ctx.docBody, BENCH_ETAG: ctx.docEtag } });
  const { port } = await ceiling.next<{ port: number }>('ready', 20_000);
  let pglite: HubProcess | undefined;
  try {
    pglite = await startHub({});
    await putConfig(pglite.url, ctx.service, sampleConfig());
    const pgliteEtag = String((await fetch(`${pglite.url}${path}`)).headers.get('etag'));
    REPORT_HEADERS = reportHeaders(ctx.service, Number(/^"(\d+)/.exec(ctx.docEtag)?.[1] ?? 1));
    const targets: Array<[string, string, string, boolean]> = [
      ['Fastify from memory (ceiling)', `http://127.0.0.1:${port}${path}`, ctx.docEtag, false],
      ['hub, PostgreSQL', `${ctx.hub.url}${path}`, ctx.docEtag, false],
      [`hub, PostgreSQL, ${REPORTERS} reporting clients`, `${ctx.hub.url}${path}`, ctx.docEtag, true],
      ['hub, PGlite', `${pglite.url}${path}`, pgliteEtag, false],
    ];
    const results: Record<string, { ok: Cannon; nm: Cannon }> = {};
    for (const [name, url, etag, reporting] of targets) {
      await cannon(url, {}, warm, reporting);
      const ok = await cannon(url, {}, duration, reporting);
      await cannon(url, { 'if-none-match': etag }, warm, reporting);
      const nm = await cannon(url, { 'if-none-match': etag }, duration, reporting);
      if (ok.errors > 0 || ok['2xx'] === 0) throw new Error(`${name}: GET 200 run had ${ok.errors} errors, ${ok['2xx']} 2xx`);
      if ((nm['3xx'] ?? nm.non2xx) === 0) throw new Error(`${name}: GET 304 run had no 304s`);
      results[name] = { ok, nm };
    }
    const base = results['Fastify from memory (ceiling)']!;
    const rows = Object.entries(results).map(([name, r]) => ({
      target: name,
      'GET 200 req/s': Math.round(r.ok.requests.average),
      'GET 200 p99 ms': r.ok.latency.p99,
      '200: % of ceiling': round((100 * r.ok.requests.average) / base.ok.requests.average, 1),
      'GET 304 req/s': Math.round(r.nm.requests.average),
      'GET 304 p99 ms': r.nm.latency.p99,
      '304: % of ceiling': round((100 * r.nm.requests.average) / base.nm.requests.average, 1),
    }));
    const share = (name: string, kind: 'ok' | 'nm'): number => results[name]![kind].requests.average / base[kind].requests.average;
    const reporting = results[`hub, PostgreSQL, ${REPORTERS} reporting clients`]!;
    const reportingShare = reporting.ok.requests.average / results['hub, PostgreSQL']!.ok.requests.average;
    return {
      id: 4,
      title: 'Hub throughput (autocannon, 50 connections)',
      method: `autocannon 9 in the bench process, 50 keep-alive connections, pipelining 1, ${warm} s warm-up then ${duration} s per cell; hubs run as separate processes (node --import tsx examples/hub/main.ts, HUB_LOG_LEVEL=warn, auth off); the ceiling is a bare Fastify 5 route in its own process returning the hub's exact ${Buffer.byteLength(ctx.docBody)}-byte body and ETag from memory. The reporting row sends, in turn, the x-config-report headers of ${REPORTERS} instances (docs/fleet.md), which the hub parses, records and writes behind. All share the machine's ${os.cpus().length} cores with autocannon.`,
      rows,
      // Issue 13: the hub answers GET and 304 from memory (examples/hub/store/read-cache.ts).
      goals: [
        ...(
          [
            ['PostgreSQL', 'hub, PostgreSQL', 0.8],
            ['PGlite', 'hub, PGlite', 0.6],
          ] as const
        ).flatMap(([store, name, bar]) =>
          (['ok', 'nm'] as const).map((kind) => ({
            goal: `${store} GET ${kind === 'ok' ? '200' : '304'} ≥ ${100 * bar} % of the ceiling`,
            measured: `${fmt(100 * share(name, kind), 1)} %`,
            met: share(name, kind) >= bar,
          })),
        ),
        {
          goal: 'GET 200 with reporting clients within 10 % of GET 200 without (issue 11)',
          measured: `${fmt(100 * reportingShare, 1)} %`,
          met: reportingShare >= 0.9,
        },
      ],
      notes: [],
    };
  } finally {
    await ceiling.stop();
    await pglite?.stop();
  }
}
