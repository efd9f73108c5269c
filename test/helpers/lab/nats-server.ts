import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ExitInfo, type LabProcess, spawnProcess } from './child-process.js';
import { freePort, waitForPort } from './ports.js';
import { track, waitFor } from './registry.js';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

export interface NatsClusterOptions {
  name: string;
  /** Route (cluster) listen port. */
  port: number;
  /** Routes to solicit: `nats://127.0.0.1:<port>` URLs or bare route ports. */
  routes: Array<string | number>;
}

export interface StartNatsOptions {
  /** Client port (default: a free port). Kept across restart(). */
  port?: number;
  /** HTTP monitoring port (default: a free port). Kept across restart(). */
  monitorPort?: number;
  cluster?: NatsClusterOptions;
  /** Enable JetStream; the store dir is a temp dir kept across restart() and removed by stop/cleanup. */
  jetstream?: boolean;
  /** server_name (default `lab-<port>`). */
  serverName?: string;
  /** How many connected routes to wait for (default: cluster.routes.length, 0 without cluster). */
  waitForRoutes?: number;
  /** Bound for startup (default 10 000 ms). */
  timeoutMs?: number;
  /** Extra command-line args. */
  args?: string[];
  /**
   * A nats-server configuration (e.g. an `authorization { users = [...] }` block), written to a temp file
   * passed with `-c`. Command-line flags (address, ports, name, cluster) take precedence over it.
   */
  config?: string;
}

export interface NatsRoute {
  rid: number;
  remote_id: string;
  did_solicit: boolean;
  ip: string;
  port: number;
}

export interface NatsServerHandle {
  readonly name: string;
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  /** http://127.0.0.1:<monitorPort> */
  readonly monitorUrl: string;
  readonly clusterPort: number | undefined;
  /** Current pid (changes after restart()). */
  readonly pid: number;
  readonly running: boolean;
  readonly paused: boolean;
  readonly process: LabProcess;
  /** SIGTERM, wait for exit. */
  stop(): Promise<ExitInfo>;
  /** SIGKILL (crash), wait for exit. */
  kill(): Promise<ExitInfo>;
  /** SIGSTOP (hang). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Stop if running, start again on the same ports (and JetStream dir); waits for readiness (and routes). */
  restart(opts?: { waitForRoutes?: number; timeoutMs?: number }): Promise<void>;
  /** GET a monitoring endpoint (`varz`, `connz?subs=1`, `routez`, `subsz`, `jsz` …) as JSON. */
  monitor<T = Record<string, unknown>>(endpoint: string): Promise<T>;
  routes(): Promise<NatsRoute[]>;
  /** Wait until at least `n` distinct remote servers are routed. */
  waitForRoutes(n: number, timeoutMs?: number): Promise<void>;
  /**
   * Wait until a subscription on `subject` made on another node has propagated to this node over a route
   * (interest propagation is asynchronous: publish before it and the message is silently dropped).
   */
  waitForRouteInterest(subject: string, timeoutMs?: number): Promise<void>;
  output(): string;
  /** Stop and remove the JetStream dir. */
  dispose(): Promise<void>;
}

export async function startNatsServer(opts: StartNatsOptions = {}): Promise<NatsServerHandle> {
  const port = opts.port ?? (await freePort());
  const monitorPort = opts.monitorPort ?? (await freePort());
  const serverName = opts.serverName ?? `lab-${port}`;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const jsDir = opts.jetstream ? mkdtempSync(path.join(os.tmpdir(), 'natslab-js-')) : undefined;
  const defaultRoutes = opts.waitForRoutes ?? opts.cluster?.routes.length ?? 0;

  const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-n', serverName];
  if (opts.cluster) {
    const routes = opts.cluster.routes.map((r) => (typeof r === 'number' ? `nats://127.0.0.1:${r}` : r));
    args.push('--cluster_name', opts.cluster.name, '--cluster', `nats://127.0.0.1:${opts.cluster.port}`);
    if (routes.length > 0) args.push('--routes', routes.join(','));
  }
  if (jsDir) args.push('-js', '-sd', jsDir);
  const confDir = opts.config !== undefined ? mkdtempSync(path.join(os.tmpdir(), 'natslab-conf-')) : undefined;
  if (confDir !== undefined) {
    const confFile = path.join(confDir, 'nats-server.conf');
    writeFileSync(confFile, opts.config ?? '', { mode: 0o600 });
    args.unshift('-c', confFile);
  }
  args.push(...(opts.args ?? []));

  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  let proc: LabProcess;
  let disposed = false;

  const monitor = async <T>(endpoint: string): Promise<T> => {
    const res = await fetch(`${monitorUrl}/${endpoint.replace(/^\//, '')}`, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) throw new Error(`nats monitor ${endpoint}: HTTP ${res.status}`);
    return (await res.json()) as T;
  };
  const routes = async (): Promise<NatsRoute[]> => (await monitor<{ routes?: NatsRoute[] }>('routez')).routes ?? [];
  const waitForRoutes = async (n: number, t = timeoutMs): Promise<void> => {
    if (n <= 0) return;
    await waitFor(
      `nats-server ${serverName} (port ${port}) to have ${n} route(s)`,
      async () => new Set((await routes()).map((r) => r.remote_id)).size >= n,
      { timeoutMs: t, intervalMs: 50 },
    );
  };

  const waitForRouteInterest = async (subject: string, t = 5_000): Promise<void> => {
    await waitFor(
      `interest in '${subject}' to reach nats-server ${serverName} over a route`,
      async () => {
        const rz = await monitor<{ routes?: Array<{ subscriptions_list?: string[] }> }>('routez?subs=1');
        return (rz.routes ?? []).some((r) => r.subscriptions_list?.includes(subject));
      },
      { timeoutMs: t, intervalMs: 20 },
    );
  };

  const launch = async (routesToWait: number, t: number): Promise<void> => {
    const started = Date.now();
    proc = await spawnProcess(NATS_SERVER_BIN, args, { name: `nats-server ${serverName}` });
    try {
      await Promise.race([
        (async () => {
          await waitForPort(port, { timeoutMs: t });
          await waitFor(`nats-server ${serverName} monitoring on ${monitorPort}`, () => monitor('varz').then(() => true), {
            timeoutMs: Math.max(500, t - (Date.now() - started)),
          });
          await waitForRoutes(routesToWait, Math.max(500, t - (Date.now() - started)));
        })(),
        proc.exited.then((info) => {
          throw new Error(
            `lab: nats-server ${serverName} exited during startup (code ${info.code}, signal ${info.signal}). Output:\n${proc.output().slice(-2000)}`,
          );
        }),
      ]);
    } catch (err) {
      await proc.kill();
      throw err;
    }
  };

  await launch(defaultRoutes, timeoutMs);

  const dispose = async (): Promise<void> => {
    if (proc.running) await proc.stop(3_000);
    if (jsDir && !disposed) rmSync(jsDir, { recursive: true, force: true });
    if (confDir && !disposed) rmSync(confDir, { recursive: true, force: true });
    disposed = true;
    untrackDir();
  };
  const untrackDir = track({
    name: `nats-server ${serverName} dirs`,
    dispose,
    killSync: () => {
      if (jsDir) rmSync(jsDir, { recursive: true, force: true });
      if (confDir) rmSync(confDir, { recursive: true, force: true });
    },
  });

  return {
    name: serverName,
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    monitorUrl,
    clusterPort: opts.cluster?.port,
    get pid() {
      return proc.pid;
    },
    get running() {
      return proc.running;
    },
    get paused() {
      return proc.paused;
    },
    get process() {
      return proc;
    },
    stop: () => proc.stop(),
    kill: () => proc.kill(),
    pause: () => proc.pause(),
    resume: () => proc.resume(),
    restart: async (o = {}) => {
      if (proc.running) await proc.stop();
      await launch(o.waitForRoutes ?? defaultRoutes, o.timeoutMs ?? timeoutMs);
    },
    monitor,
    routes,
    waitForRoutes,
    waitForRouteInterest,
    output: () => proc.output(),
    dispose,
  };
}

export interface NatsClusterHandle {
  /** Client URLs of every node, e.g. for `connect({ servers })`. */
  readonly servers: string[];
  readonly nodes: NatsServerHandle[];
  readonly name: string;
  node(i: number): NatsServerHandle;
  /** Wait until every running node routes to every other running node. */
  waitForMesh(timeoutMs?: number): Promise<void>;
  stopAll(): Promise<void>;
}

/** Start `size` nodes (default 3), each soliciting routes to all the others; resolves when the mesh is complete. */
export async function startNatsCluster(
  size = 3,
  opts: { name?: string; jetstream?: boolean; timeoutMs?: number } = {},
): Promise<NatsClusterHandle> {
  const name = opts.name ?? 'lab';
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort() })));
  const started = await Promise.allSettled(
    ports.map((p, i) =>
      startNatsServer({
        port: p.client,
        serverName: `${name}-${i}`,
        jetstream: opts.jetstream,
        timeoutMs: opts.timeoutMs ?? 15_000,
        cluster: { name, port: p.route, routes: ports.filter((_, j) => j !== i).map((q) => q.route) },
      }),
    ),
  );
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(nodes.map((n) => n.dispose()));
    throw failed.reason;
  }
  const waitForMesh = async (timeoutMs = 10_000): Promise<void> => {
    const running = nodes.filter((n) => n.running && !n.paused);
    await Promise.all(running.map((n) => n.waitForRoutes(running.length - 1, timeoutMs)));
  };
  return {
    name,
    nodes,
    servers: nodes.map((n) => n.url),
    node: (i) => {
      const n = nodes[i];
      if (!n) throw new Error(`lab: nats cluster has no node ${i} (size ${nodes.length})`);
      return n;
    },
    waitForMesh,
    stopAll: async () => {
      for (const n of nodes) if (n.paused) n.resume();
      await Promise.all(nodes.map((n) => n.dispose()));
    },
  };
}
