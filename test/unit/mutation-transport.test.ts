/**
 * src/hub/transport.ts at its edges, found by mutation testing (`npm run test:mutation`): the request it
 * sends (URL, API key, conditional GET), what each answer becomes, which failures are retried and after
 * how long, failover that remembers the hub that answered, and close().
 */
import { getEventListeners } from 'node:events';
import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import { HubHttpError } from '../../src/errors.js';
import { HubTransport } from '../../src/hub/transport.js';
import { silentLogger } from '../../src/logger.js';
import { failure, transportDoc, useTransportLab } from '../helpers/transport-lab.js';

const HUB = 'http://hub.test';
const OTHER = 'http://other.test';
const SERVICE = 'tick-aggregator';

const lab = useTransportLab();
const makeTransport = lab.makeTransport;

const doc = transportDoc;

describe('the request', () => {
  it('GETs the service document under the hub URL (path prefix kept, name encoded) with the API key', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json(doc({ a: 1 }, 'svc-a'))));
    await makeTransport({ hubUrls: ['http://hub.test/prefix'] }).fetchConfig('svc-a');
    await makeTransport({ hubUrls: ['http://hub.test/prefix/'] }).fetchConfig('svc-a');
    const [first, second] = lab.agent.requests;
    expect(first?.method).toBe('GET');
    expect(first?.url).toBe('http://hub.test/prefix/api/v1/config/svc-a');
    expect(second?.url).toBe('http://hub.test/prefix/api/v1/config/svc-a');
    expect(first?.headers.get('accept')).toBe('application/json');
    expect(first?.headers.get('x-api-key')).toBe('test-key');
    expect(first?.headers.get('if-none-match')).toBeNull();
    lab.agent.clearRequests();
    // A name is one path segment, whatever it holds (names off the wire contract are refused elsewhere).
    lab.agent.resetHandlers(http.get('*', () => HttpResponse.json(doc({}, 'a/b?c'))));
    await failure(makeTransport().fetchConfig('a/b?c'));
    expect(lab.agent.requests[0]?.url).toBe('http://hub.test/api/v1/config/a%2Fb%3Fc');
  });

  it('no API key: no x-api-key header; an etag: If-None-Match', async () => {
    lab.agent.use(http.get('*', () => new HttpResponse(null, { status: 304 })));
    const transport = makeTransport({ apiKey: undefined });
    await transport.fetchConfig(SERVICE, { etag: '"v7"' });
    await transport.fetchConfig(SERVICE, { etag: '"v7"' });
    for (const request of lab.agent.requests) {
      expect(request.headers.has('x-api-key')).toBe(false);
      expect(request.headers.get('if-none-match')).toBe('"v7"');
    }
  });
});

describe('answers', () => {
  it('200: the document, its ETag and the hub that answered', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json(doc({ a: 1 }), { headers: { etag: '"r1"' } })));
    const result = await makeTransport().fetchConfig(SERVICE);
    expect(result).toEqual({ kind: 'document', document: expect.objectContaining({ config: { a: 1 }, revision: 1 }), etag: '"r1"', hubUrl: HUB });
    lab.agent.resetHandlers(http.get('*', () => HttpResponse.json(doc({ a: 1 }))));
    expect(await makeTransport().fetchConfig(SERVICE)).toMatchObject({ kind: 'document', etag: undefined });
  });

  it('a body of exactly maxResponseBytes is read; one byte more is too large', async () => {
    const body = JSON.stringify(doc({ pad: '' }));
    const limit = body.length + 10;
    const exact = JSON.stringify(doc({ pad: 'x'.repeat(10) }));
    expect(Buffer.byteLength(exact)).toBe(limit);
    lab.agent.use(http.get('*', () => new HttpResponse(exact, { status: 200, headers: { 'content-type': 'application/json' } })));
    expect((await makeTransport({ maxResponseBytes: limit }).fetchConfig(SERVICE)).kind).toBe('document');
    expect((await failure(makeTransport({ maxResponseBytes: limit - 1 }).fetchConfig(SERVICE))).code).toBe('HUB_RESPONSE_INVALID');
  });

  it('a large body in many chunks arrives whole', async () => {
    const big = { blob: 'é'.repeat(300_000) };
    lab.agent.use(http.get('*', () => HttpResponse.json(doc(big))));
    const result = await makeTransport().fetchConfig(SERVICE);
    expect(result.kind === 'document' && result.document.config).toEqual(big);
  });

  it('304: not modified, from the hub that answered', async () => {
    lab.agent.use(http.get('*', () => new HttpResponse('ignored body', { status: 304 })));
    expect(await makeTransport().fetchConfig(SERVICE, { etag: '"x"' })).toEqual({ kind: 'not-modified', hubUrl: HUB });
  });

  it('a document of another service is HUB_RESPONSE_INVALID and not retried', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json(doc({ a: 1 }, 'someone-else'))));
    const error = await failure(makeTransport().fetchConfig(SERVICE));
    expect(error.code).toBe('HUB_RESPONSE_INVALID');
    expect(error.message).toBe(`hub document for ${SERVICE} does not follow the wire contract`);
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('a document off the wire contract is HUB_RESPONSE_INVALID with the zod error as cause', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json({ service_name: SERVICE, config: { a: 1 } })));
    const error = await failure(makeTransport().fetchConfig(SERVICE));
    expect(error.code).toBe('HUB_RESPONSE_INVALID');
    expect(error.cause).toBeDefined();
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('a 200 that is not JSON is HUB_RESPONSE_INVALID and retried (another attempt may do better)', async () => {
    lab.agent.use(http.get('*', () => new HttpResponse('<html>captive portal</html>', { status: 200 })));
    const error = await failure(makeTransport().fetchConfig(SERVICE));
    expect(error.code).toBe('HUB_RESPONSE_INVALID');
    expect(error.message).toBe('hub answered 200 with a body that is not JSON');
    expect(lab.agent.requests).toHaveLength(3);
  });

  it('a JSON string config nested too deep is refused; a shallow one is parsed', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json(doc(JSON.stringify({ a: { b: 1 } })))));
    const result = await makeTransport().fetchConfig(SERVICE);
    expect(result.kind === 'document' && result.document.config).toEqual({ a: { b: 1 } });
    let deep: unknown = 1;
    for (let i = 0; i < 65; i++) deep = { n: deep };
    lab.agent.resetHandlers(http.get('*', () => HttpResponse.json(doc(JSON.stringify(deep)))));
    const error = await failure(makeTransport().fetchConfig(SERVICE));
    expect(error.message).toBe(`hub document for ${SERVICE} is nested deeper than 64 levels`);
  });

  it('error answers: the detail of a JSON error body; none for other bodies', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json({ detail: { reason: 'maintenance' } }, { status: 400 })));
    const error = (await failure(makeTransport().fetchConfig(SERVICE))) as HubHttpError;
    expect(error).toBeInstanceOf(HubHttpError);
    expect(error).toMatchObject({ code: 'HUB_ERROR', status: 400, detail: { reason: 'maintenance' }, service: SERVICE });
    lab.agent.resetHandlers(http.get('*', () => HttpResponse.json(['not', 'an', 'object'], { status: 400 })));
    expect(((await failure(makeTransport().fetchConfig(SERVICE))) as HubHttpError).detail).toBeUndefined();
    lab.agent.resetHandlers(http.get('*', () => new HttpResponse('{"detail":', { status: 400 })));
    expect(((await failure(makeTransport().fetchConfig(SERVICE))) as HubHttpError).detail).toBeUndefined();
    lab.agent.resetHandlers(http.get('*', () => new HttpResponse('x'.repeat(5_000), { status: 400 })));
    const oversize = (await failure(makeTransport({ maxResponseBytes: 1_000 }).fetchConfig(SERVICE))) as HubHttpError;
    expect(oversize).toMatchObject({ code: 'HUB_ERROR', status: 400, detail: undefined });
  });
});

describe('retries and failover', () => {
  it('408, 429 and 5xx are retried; other 4xx are not', async () => {
    for (const [status, attempts] of [
      [408, 3],
      [429, 3],
      [500, 3],
      [400, 1],
      [409, 1],
    ] as const) {
      lab.agent.resetHandlers(http.get('*', () => new HttpResponse(null, { status })));
      lab.agent.clearRequests();
      const error = (await failure(makeTransport().fetchConfig(SERVICE))) as HubHttpError;
      expect(error.status).toBe(status);
      expect(lab.agent.requests.length).toBe(attempts);
    }
  });

  it('retries: 0 is one attempt; onRoundFailed fires once per failed round', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.error()));
    let rounds = 0;
    await failure(makeTransport({ retries: 0 }).fetchConfig(SERVICE, { onRoundFailed: () => rounds++ }));
    expect(lab.agent.requests).toHaveLength(1);
    expect(rounds).toBe(1);
    rounds = 0;
    lab.agent.clearRequests();
    await failure(makeTransport({ hubUrls: [HUB, OTHER], retries: 2 }).fetchConfig(SERVICE, { onRoundFailed: () => rounds++ }));
    expect(lab.agent.requests).toHaveLength(6);
    expect(rounds).toBe(3);
  });

  it('a round that ends in an answer does not count as failed', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json(doc({ a: 1 }))));
    let rounds = 0;
    await makeTransport().fetchConfig(SERVICE, { onRoundFailed: () => rounds++ });
    expect(rounds).toBe(0);
  });

  it('fails over in order, then starts at the hub that answered last', async () => {
    lab.agent.use(
      http.get(`${HUB}/*`, () => HttpResponse.error()),
      http.get(`${OTHER}/*`, () => HttpResponse.json(doc({ a: 1 }))),
    );
    const transport = makeTransport({ hubUrls: [HUB, OTHER] });
    expect(await transport.fetchConfig(SERVICE)).toMatchObject({ kind: 'document', hubUrl: OTHER });
    expect(lab.agent.requests.map((r) => new URL(r.url).origin)).toEqual([HUB, OTHER]);
    lab.agent.clearRequests();
    expect(await transport.fetchConfig(SERVICE)).toMatchObject({ hubUrl: OTHER });
    expect(lab.agent.requests.map((r) => new URL(r.url).origin)).toEqual([OTHER]);
  });

  it('a hub that answers 404 ends the fetch: the next hub is not asked', async () => {
    lab.agent.use(
      http.get(`${HUB}/*`, () => new HttpResponse(null, { status: 404 })),
      http.get(`${OTHER}/*`, () => HttpResponse.json(doc({ a: 1 }))),
    );
    const error = await failure(makeTransport({ hubUrls: [HUB, OTHER] }).fetchConfig(SERVICE));
    expect(error.code).toBe('CONFIG_NOT_FOUND');
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('waits a full-jitter backoff between rounds, and at least the Retry-After', async () => {
    lab.agent.use(http.get('*', () => new HttpResponse(null, { status: 503 })));
    // random 0.5: round 1 waits 0.5 · 200 ms, round 2 0.5 · 400 ms.
    let started = performance.now();
    await failure(makeTransport({ retryBaseDelayMs: 200, retryMaxDelayMs: 10_000 }).fetchConfig(SERVICE));
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    // Not the backoff of later attempts (≈ 1 200 ms).
    expect(elapsed).toBeLessThan(1_000);
    lab.agent.resetHandlers(http.get('*', () => new HttpResponse(null, { status: 503, headers: { 'retry-after': '1' } })));
    started = performance.now();
    await failure(makeTransport({ retries: 1, maxRetryAfterMs: 1_000 }).fetchConfig(SERVICE));
    // A Retry-After equal to maxRetryAfterMs is still honoured (one more attempt, a second later).
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
  });

  it('a request with no answer within requestTimeoutMs is HUB_UNREACHABLE, named so, and retried', async () => {
    lab.agent.use(http.get('*', () => new Promise<Response>(() => undefined)));
    const error = await failure(makeTransport({ requestTimeoutMs: 50, retries: 1 }).fetchConfig(SERVICE));
    expect(error.code).toBe('HUB_UNREACHABLE');
    expect(error.message).toBe(`hub ${HUB} unreachable: no answer within 50 ms`);
    expect(lab.agent.requests).toHaveLength(2);
  });

  it('a network error names its code and message', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.error()));
    const error = await failure(makeTransport({ retries: 0 }).fetchConfig(SERVICE));
    expect(error.message).toMatch(/^hub http:\/\/hub\.test unreachable: MSW_NETWORK_ERROR \S/);
    expect(error.service).toBe(SERVICE);
    expect(error.cause).toBeInstanceOf(Error);
  });
});

describe('what each failure carries', () => {
  it('every classified error names the service; parse and size failures keep their cause', async () => {
    for (const [status, code] of [
      [404, 'CONFIG_NOT_FOUND'],
      [401, 'UNAUTHORIZED'],
      [503, 'HUB_ERROR'],
    ] as const) {
      lab.agent.resetHandlers(http.get('*', () => new HttpResponse(null, { status })));
      const error = await failure(makeTransport({ retries: 0 }).fetchConfig(SERVICE));
      expect(error).toMatchObject({ code, service: SERVICE });
    }
    lab.agent.resetHandlers(http.get('*', () => new HttpResponse('not json', { status: 200 })));
    const parse = await failure(makeTransport({ retries: 0 }).fetchConfig(SERVICE));
    expect(parse).toMatchObject({ code: 'HUB_RESPONSE_INVALID', service: SERVICE });
    expect(parse.cause).toBeInstanceOf(SyntaxError);
    lab.agent.resetHandlers(http.get('*', () => HttpResponse.json(doc({ blob: 'x'.repeat(5_000) }))));
    const large = await failure(makeTransport({ maxResponseBytes: 1_000 }).fetchConfig(SERVICE));
    expect(large).toMatchObject({ code: 'HUB_RESPONSE_INVALID', service: SERVICE });
    expect(large.cause).toBeInstanceOf(Error);
    let deep: unknown = 1;
    for (let i = 0; i < 65; i++) deep = { n: deep };
    lab.agent.resetHandlers(http.get('*', () => HttpResponse.json(doc(deep))));
    lab.agent.clearRequests();
    const tooDeep = await failure(makeTransport().fetchConfig(SERVICE));
    expect(tooDeep).toMatchObject({ code: 'HUB_RESPONSE_INVALID', service: SERVICE });
    // The same hub would say it again: not retried.
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('a 200 whose JSON is null is off the wire contract, not a network error', async () => {
    lab.agent.use(http.get('*', () => new HttpResponse('null', { status: 200, headers: { 'content-type': 'application/json' } })));
    const error = await failure(makeTransport().fetchConfig(SERVICE));
    expect(error.code).toBe('HUB_RESPONSE_INVALID');
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('a closed transport or an abandoned fetch is not a failed round', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json(doc({ a: 1 }))));
    let rounds = 0;
    const closed = makeTransport();
    await closed.close();
    await failure(closed.fetchConfig(SERVICE, { onRoundFailed: () => rounds++ }));
    await failure(makeTransport().fetchConfig(SERVICE, { signal: AbortSignal.abort(), onRoundFailed: () => rounds++ }));
    expect(rounds).toBe(0);
  });

  it('close() or an abort while a request is in flight ends it at once, as CLIENT_CLOSED / abandoned, not as a failed round', async () => {
    lab.agent.use(http.get('*', () => new Promise<Response>(() => undefined)));
    let rounds = 0;
    const transport = makeTransport({ requestTimeoutMs: 20_000 });
    const fetching = failure(transport.fetchConfig(SERVICE, { onRoundFailed: () => rounds++ }));
    await expect.poll(() => lab.agent.requests.length).toBe(1);
    let started = performance.now();
    await transport.close();
    expect((await fetching).code).toBe('CLIENT_CLOSED');
    expect(performance.now() - started).toBeLessThan(5_000);
    const controller = new AbortController();
    const aborted = failure(makeTransport({ requestTimeoutMs: 20_000 }).fetchConfig(SERVICE, { signal: controller.signal, onRoundFailed: () => rounds++ }));
    await expect.poll(() => lab.agent.requests.length).toBe(2);
    started = performance.now();
    controller.abort(new Error('stop'));
    const error = await aborted;
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(error.message).toBe(`fetch of ${SERVICE} abandoned: stop`);
    expect(rounds).toBe(0);
  });
});

describe('Retry-After waits', () => {
  const retryAfter = () => http.get('*', () => new HttpResponse(null, { status: 503, headers: { 'retry-after': '5' } }));

  it('close() ends a Retry-After wait at once', async () => {
    lab.agent.use(retryAfter());
    const transport = makeTransport();
    const fetching = failure(transport.fetchConfig(SERVICE));
    await expect.poll(() => lab.agent.requests.length).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = performance.now();
    await transport.close();
    expect((await fetching).code).toBe('CLIENT_CLOSED');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('the caller’s abort ends a Retry-After wait at once', async () => {
    lab.agent.use(retryAfter());
    const controller = new AbortController();
    const fetching = failure(makeTransport().fetchConfig(SERVICE, { signal: controller.signal }));
    await expect.poll(() => lab.agent.requests.length).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = performance.now();
    controller.abort(new Error('stop'));
    expect((await fetching).message).toBe(`fetch of ${SERVICE} abandoned: stop`);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('listeners', () => {
  it('a fetch leaves no abort listener behind on the caller’s long-lived signal, whatever its outcome', async () => {
    const controller = new AbortController();
    const transport = makeTransport({ retries: 1, retryBaseDelayMs: 20, retryMaxDelayMs: 20 });
    lab.agent.use(http.get('*', () => HttpResponse.json(doc({ a: 1 }))));
    await transport.fetchConfig(SERVICE, { signal: controller.signal });
    lab.agent.resetHandlers(http.get('*', () => new HttpResponse(null, { status: 503 })));
    await failure(transport.fetchConfig(SERVICE, { signal: controller.signal }));
    lab.agent.resetHandlers(http.get('*', () => HttpResponse.error()));
    await failure(transport.fetchConfig(SERVICE, { signal: controller.signal }));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('close()', () => {
  it('is idempotent; afterwards a fetch sends nothing and rejects CLIENT_CLOSED', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json(doc({ a: 1 }))));
    const transport = makeTransport();
    const first = transport.close();
    expect(transport.close()).toBe(first);
    await first;
    const error = await failure(transport.fetchConfig(SERVICE));
    expect(error).toMatchObject({ code: 'CLIENT_CLOSED', message: 'the client is closed', service: SERVICE });
    expect(lab.agent.requests).toHaveLength(0);
  });

  it('closes the lab.agent it created, never a dispatcher it was given', async () => {
    lab.agent.use(http.get('*', () => HttpResponse.json(doc({ a: 1 }))));
    await makeTransport().close();
    expect((await makeTransport().fetchConfig(SERVICE)).kind).toBe('document');
    const own = new HubTransport({
      hubUrls: ['http://127.0.0.1:9'],
      apiKey: undefined,
      connectTimeoutMs: 100,
      requestTimeoutMs: 100,
      retries: 0,
      retryBaseDelayMs: 1,
      retryMaxDelayMs: 1,
      maxRetryAfterMs: 1,
      keepAliveTimeoutMs: 100,
      maxResponseBytes: 1_000,
      dispatcher: undefined,
      logger: silentLogger,
      random: () => 0.5,
    });
    const error = await failure(own.fetchConfig(SERVICE));
    expect(error.code).toBe('HUB_UNREACHABLE');
    await own.close();
  });

  it('close() while a request is in flight: CLIENT_CLOSED, not a network error', async () => {
    lab.agent.use(http.get('*', () => new Promise<Response>(() => undefined)));
    const transport = makeTransport();
    const fetching = failure(transport.fetchConfig(SERVICE));
    await expect.poll(() => lab.agent.requests.length).toBe(1);
    await transport.close();
    expect((await fetching).code).toBe('CLIENT_CLOSED');
  });

  it('an abort of the caller while a response body is read: HUB_UNREACHABLE with the reason', async () => {
    const controller = new AbortController();
    const reason = new Error('budget spent');
    lab.agent.use(
      http.get('*', () => {
        const body = new ReadableStream({
          start(stream) {
            stream.enqueue(new TextEncoder().encode('{"service_name":'));
            setTimeout(() => {
              controller.abort(reason);
              stream.enqueue(new TextEncoder().encode(`"${SERVICE}"`));
            }, 20);
          },
        });
        return new HttpResponse(body, { status: 200, headers: { 'content-type': 'application/json' } });
      }),
    );
    const error = await failure(makeTransport().fetchConfig(SERVICE, { signal: controller.signal }));
    expect(error.code).toBe('HUB_UNREACHABLE');
    expect(error.message).toBe(`fetch of ${SERVICE} abandoned: budget spent`);
    expect(error.cause).toBe(reason);
    expect(lab.agent.requests).toHaveLength(1);
  });
});
