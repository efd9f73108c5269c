import net from 'node:net';
import { freePort } from './ports.js';
import { track } from './registry.js';

export interface TcpProxyOptions {
  target: { host?: string; port: number };
  /** Listen port (default: a free port). Kept across break()/restore(). */
  port?: number;
}

export type BreakMode =
  /** Close the listener: new connects get ECONNREFUSED (default). */
  | 'refuse'
  /** Keep listening, accept and immediately reset (RST). */
  | 'reset'
  /** Accept, never forward, never answer (a hung peer); existing connections stop forwarding too. */
  | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  readonly host: '127.0.0.1';
  /** `${scheme}://127.0.0.1:${port}${path}` (default scheme http). */
  url(scheme?: string, path?: string): string;
  /** Destroy every open connection and stop accepting new ones (see BreakMode). */
  break(mode?: BreakMode): Promise<void>;
  /** Accept and forward again (same port). */
  restore(): Promise<void>;
  readonly broken: BreakMode | false;
  /** Added latency per chunk, both directions, order preserved; 0 removes it. Applies to open connections too. */
  delay(ms: number): void;
  /**
   * Connections accepted from now on get their server→client stream cut (both sockets destroyed) after `bytes`
   * bytes. `connections` bounds how many connections are affected (default: all until `cutAfter(null)`).
   */
  cutAfter(bytes: number | null, opts?: { connections?: number }): void;
  /** Open proxied connections right now. */
  readonly connections: number;
  /** Connections accepted since start. */
  readonly totalConnections: number;
  /** Destroy every open connection (without refusing new ones). */
  dropConnections(): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const targetHost = opts.target.host ?? '127.0.0.1';
  const targetPort = opts.target.port;
  const port = opts.port ?? (await freePort());
  const pairs = new Set<Pair>();
  const strays = new Set<net.Socket>(); // blackholed / reset sockets
  let broken: BreakMode | false = false;
  let delayMs = 0;
  let cut: { bytes: number; remaining: number } | null = null;
  let total = 0;
  let closed = false;
  let server: net.Server | null = null;

  const forward = (src: net.Socket, dst: net.Socket, limit: number | null, onLimit: () => void): void => {
    let sent = 0;
    let lastAt = 0;
    let pending = 0;
    src.on('data', (chunk: Buffer) => {
      if (broken === 'blackhole') return;
      let data = chunk;
      if (limit !== null) {
        const left = limit - sent;
        if (left <= 0) return;
        if (data.length >= left) data = data.subarray(0, left);
      }
      sent += data.length;
      const hitLimit = limit !== null && sent >= limit;
      const write = (): void => {
        if (!dst.destroyed) dst.write(data);
        if (hitLimit) {
          // let the bytes reach the kernel before tearing down
          dst.end(() => onLimit());
          setTimeout(onLimit, 50).unref();
        }
      };
      if (delayMs <= 0 && pending === 0) {
        write();
        return;
      }
      const now = Date.now();
      const at = Math.max(now + delayMs, lastAt);
      lastAt = at;
      pending++;
      setTimeout(() => {
        pending--;
        write();
      }, at - now);
    });
  };

  const onConnection = (client: net.Socket): void => {
    total++;
    client.on('error', () => undefined);
    if (broken === 'reset') {
      client.resetAndDestroy();
      return;
    }
    if (broken === 'blackhole') {
      strays.add(client);
      client.on('close', () => strays.delete(client));
      return;
    }
    let limit: number | null = null;
    if (cut && cut.remaining > 0) {
      limit = cut.bytes;
      cut.remaining--;
      if (cut.remaining <= 0) cut = null;
    }
    client.pause();
    const upstream = net.connect({ host: targetHost, port: targetPort });
    const pair: Pair = { client, upstream };
    pairs.add(pair);
    const teardown = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', teardown);
    client.on('error', teardown);
    upstream.on('close', teardown);
    client.on('close', teardown);
    upstream.once('connect', () => {
      client.resume();
      forward(client, upstream, null, teardown);
      forward(upstream, client, limit, teardown);
    });
  };

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = net.createServer(onConnection);
      s.once('error', reject);
      s.listen({ host: '127.0.0.1', port }, () => {
        s.off('error', reject);
        server = s;
        resolve();
      });
    });
  const unlisten = (): Promise<void> =>
    new Promise((resolve) => {
      const s = server;
      server = null;
      if (!s) return resolve();
      s.close(() => resolve());
    });
  const dropConnections = (): void => {
    for (const p of [...pairs]) {
      p.client.destroy();
      p.upstream.destroy();
    }
    pairs.clear();
    for (const s of [...strays]) s.destroy();
    strays.clear();
  };

  await listen();

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    dropConnections();
    await unlisten();
    untrack();
  };
  const untrack = track({
    name: `tcp proxy :${port} → ${targetHost}:${targetPort}`,
    dispose: close,
    killSync: () => {
      dropConnections();
      server?.close();
    },
  });

  return {
    port,
    host: '127.0.0.1',
    url: (scheme = 'http', path = '') => `${scheme}://127.0.0.1:${port}${path}`,
    break: async (mode: BreakMode = 'refuse') => {
      broken = mode;
      if (mode === 'blackhole') {
        // existing connections stop forwarding (the data handlers drop chunks) but stay open
        return;
      }
      dropConnections();
      if (mode === 'refuse') await unlisten();
    },
    restore: async () => {
      const was = broken;
      broken = false;
      if (was === 'blackhole') dropConnections();
      if (!server && !closed) await listen();
    },
    get broken() {
      return broken;
    },
    delay: (ms: number) => {
      delayMs = Math.max(0, ms);
    },
    cutAfter: (bytes, o = {}) => {
      cut = bytes === null ? null : { bytes, remaining: o.connections ?? Number.POSITIVE_INFINITY };
    },
    get connections() {
      return pairs.size;
    },
    get totalConnections() {
      return total;
    },
    dropConnections,
    close,
  };
}
