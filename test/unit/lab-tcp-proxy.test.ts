import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../helpers/lab/index.js';

const BODY = JSON.stringify({ data: 'x'.repeat(500) });

describe('lab: tcp proxy', () => {
  let server: http.Server;
  let port: number;
  let proxy: TcpProxy;
  const agents: Agent[] = [];
  // fresh agent per call: no keep-alive reuse hiding the proxy's per-connection behaviour
  const get = (path = '/', opts: { timeoutMs?: number } = {}) => {
    const dispatcher = new Agent({ connect: { timeout: 1_000 } });
    agents.push(dispatcher);
    return request(proxy.url('http', path), {
      dispatcher,
      headersTimeout: opts.timeoutMs ?? 2_000,
      bodyTimeout: opts.timeoutMs ?? 2_000,
    });
  };

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
      res.end(BODY);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
    proxy = await startTcpProxy({ target: { port } });
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.destroy()));
  });
  afterAll(async () => {
    await proxy.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('forwards and counts connections', async () => {
    const res = await get();
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual(JSON.parse(BODY));
    expect(proxy.totalConnections).toBeGreaterThanOrEqual(1);
    expect(proxy.connections).toBeGreaterThanOrEqual(1); // keep-alive socket still open
    await Promise.all(agents.splice(0).map((a) => a.destroy()));
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.connections).toBe(0);
  });

  it('break() refuses, restore() serves again on the same port', async () => {
    const keep = await get();
    await keep.body.dump();
    await proxy.break();
    expect(proxy.connections).toBe(0);
    await expect(get()).rejects.toThrow(/ECONNREFUSED|connect/i);
    await proxy.restore();
    const res = await get();
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it("break('reset') and break('blackhole')", async () => {
    await proxy.break('reset');
    await expect(get()).rejects.toThrow();
    await proxy.break('blackhole');
    await expect(get('/', { timeoutMs: 200 })).rejects.toThrow(/timeout/i);
    await proxy.restore();
    await (await get()).body.dump();
  });

  it('cutAfter(bytes) truncates the server→client stream of the next connection(s)', async () => {
    // cut inside the body (headers are ~150 bytes): status 200 arrives, the body read fails
    proxy.cutAfter(300, { connections: 1 });
    const cutRes = await get();
    expect(cutRes.statusCode).toBe(200);
    await expect(cutRes.body.text()).rejects.toThrow(/closed|terminated|aborted/i);
    const res = await get(); // only one connection was affected
    expect((await res.body.text()).length).toBe(BODY.length);
  });

  it('delay(ms) adds latency per chunk', async () => {
    proxy.delay(150);
    const t = Date.now();
    await (await get()).body.dump();
    expect(Date.now() - t).toBeGreaterThanOrEqual(140);
    proxy.delay(0);
    const t2 = Date.now();
    await (await get()).body.dump();
    expect(Date.now() - t2).toBeLessThan(140);
  });
});
