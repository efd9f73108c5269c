import { delay, HttpResponse, http } from 'msw';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createMswAgent, MswUnhandledRequestError } from '../helpers/lab/index.js';

const BASE = 'http://hub.test';

describe('lab: msw ↔ undici bridge', () => {
  const agent = createMswAgent([
    http.get(`${BASE}/v1/config/:service`, ({ params, request: req }) =>
      HttpResponse.json({ service: params.service, auth: req.headers.get('authorization') }, { headers: { etag: '"r1"' } }),
    ),
    http.post(`${BASE}/echo`, async ({ request: req }) =>
      HttpResponse.json({ got: await req.json(), type: req.headers.get('content-type') }, { status: 201 }),
    ),
    http.get(`${BASE}/missing`, () => HttpResponse.json({ error: 'not found' }, { status: 404 })),
    http.get(`${BASE}/down`, () => HttpResponse.error()),
    http.get(`${BASE}/slow`, async () => {
      await delay(100);
      return HttpResponse.text('slow');
    }),
    http.get(`${BASE}/hang`, async () => {
      await delay('infinite');
      return HttpResponse.text('never');
    }),
    http.get(`${BASE}/cookies`, () => {
      const h = new Headers();
      h.append('set-cookie', 'a=1');
      h.append('set-cookie', 'b=2');
      return new HttpResponse('ok', { headers: h });
    }),
  ]);
  afterAll(() => agent.close());

  it('GET json with headers (object and flat-array forms)', async () => {
    const res = await request(`${BASE}/v1/config/billing`, { dispatcher: agent, headers: { authorization: 'Bearer k' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe('"r1"');
    expect(await res.body.json()).toEqual({ service: 'billing', auth: 'Bearer k' });

    const res2 = await request(`${BASE}/v1/config/x`, { dispatcher: agent, headers: ['authorization', 'Bearer flat'] });
    expect(await res2.body.json()).toEqual({ service: 'x', auth: 'Bearer flat' });
  });

  it('POST body echo (string and Buffer bodies), request log', async () => {
    agent.clearRequests();
    const res = await request(`${BASE}/echo`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.statusCode).toBe(201);
    expect(await res.body.json()).toEqual({ got: { a: 1 }, type: 'application/json' });

    const res2 = await request(`${BASE}/echo`, { dispatcher: agent, method: 'POST', body: Buffer.from('[1,2]') });
    expect(((await res2.body.json()) as { got: unknown }).got).toEqual([1, 2]);

    expect(agent.requests.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual(['POST /echo', 'POST /echo']);
    expect(await agent.requests[0]!.json()).toEqual({ a: 1 });
  });

  it('404 is a normal response', async () => {
    const res = await request(`${BASE}/missing`, { dispatcher: agent });
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toEqual({ error: 'not found' });
  });

  it('multiple set-cookie headers arrive as an array', async () => {
    const res = await request(`${BASE}/cookies`, { dispatcher: agent });
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    await res.body.text();
  });

  it('HttpResponse.error() → network error', async () => {
    await expect(request(`${BASE}/down`, { dispatcher: agent })).rejects.toThrow(/network error.*GET http:\/\/hub\.test\/down/);
    await expect(request(`${BASE}/down`, { dispatcher: agent })).rejects.toBeInstanceOf(TypeError);
  });

  it('unhandled request rejects loudly, naming method and URL', async () => {
    const p = request(`${BASE}/nope?x=1`, { dispatcher: agent, method: 'DELETE' });
    await expect(p).rejects.toBeInstanceOf(MswUnhandledRequestError);
    await expect(request(`${BASE}/nope?x=1`, { dispatcher: agent, method: 'DELETE' })).rejects.toThrow(
      'unhandled request DELETE http://hub.test/nope?x=1',
    );
  });

  it('msw delay() is honoured', async () => {
    const t = Date.now();
    const res = await request(`${BASE}/slow`, { dispatcher: agent });
    expect(await res.body.text()).toBe('slow');
    expect(Date.now() - t).toBeGreaterThanOrEqual(90);
  });

  it('AbortSignal aborts a hanging request (before response) and a timeout works', async () => {
    const ac = new AbortController();
    const p = request(`${BASE}/hang`, { dispatcher: agent, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('client deadline')), 30);
    await expect(p).rejects.toThrow('client deadline');
    await expect(request(`${BASE}/hang`, { dispatcher: agent, signal: AbortSignal.timeout(50) })).rejects.toThrow();
  });

  it('aborting while the body streams stops the body', async () => {
    agent.use(
      http.get(`${BASE}/stream`, () => {
        let i = 0;
        const stream = new ReadableStream<Uint8Array>({
          async pull(c) {
            await new Promise((r) => setTimeout(r, 20));
            c.enqueue(new TextEncoder().encode(`chunk${i++};`));
          },
        });
        return new HttpResponse(stream, { headers: { 'content-type': 'text/plain' } });
      }),
    );
    const ac = new AbortController();
    const res = await request(`${BASE}/stream`, { dispatcher: agent, signal: ac.signal });
    expect(res.statusCode).toBe(200);
    setTimeout(() => ac.abort(), 70);
    await expect(res.body.text()).rejects.toThrow();
    agent.resetHandlers();
  });

  it('use() overrides at runtime, resetHandlers() restores', async () => {
    agent.use(http.get(`${BASE}/missing`, () => HttpResponse.json({ now: 'found' })));
    expect((await request(`${BASE}/missing`, { dispatcher: agent })).statusCode).toBe(200);
    agent.resetHandlers();
    const res = await request(`${BASE}/missing`, { dispatcher: agent });
    expect(res.statusCode).toBe(404);
    await res.body.dump();
  });

  it('works with undici fetch too', async () => {
    const { fetch } = await import('undici');
    const res = await fetch(`${BASE}/v1/config/f`, { dispatcher: agent });
    expect(await res.json()).toEqual({ service: 'f', auth: null });
  });

  it('large streamed body survives backpressure (pause/resume)', async () => {
    const big = 'x'.repeat(2 * 1024 * 1024);
    agent.use(http.get(`${BASE}/big`, () => HttpResponse.text(big)));
    const res = await request(`${BASE}/big`, { dispatcher: agent, highWaterMark: 1024 });
    let n = 0;
    for await (const chunk of res.body) {
      n += (chunk as Buffer).length;
      if (n < 64 * 1024) await new Promise((r) => setTimeout(r, 1));
    }
    expect(n).toBe(big.length);
    agent.resetHandlers();
  });
});
