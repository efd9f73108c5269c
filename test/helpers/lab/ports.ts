import net from 'node:net';
import { canConnect } from '../../../examples/tcp-probe.js';

const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Ports handed out by this process are not handed out
 * again (so parallel `freePort()` calls in one test never collide), but another process can still race us.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('lab: freePort() could not find an unused port after 50 attempts');
}

/** Resolve once `host:port` accepts a TCP connection; throw a clear error after `timeoutMs`. */
export async function waitForPort(port: number, { host = '127.0.0.1', timeoutMs = 10_000 } = {}): Promise<void> {
  const started = Date.now();
  for (;;) {
    const ok = await canConnect(port, host, 500);
    if (ok) return;
    if (Date.now() - started >= timeoutMs) {
      throw new Error(`lab: timed out after ${timeoutMs} ms waiting for ${host}:${port} to accept connections`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
