/**
 * src/hub/transport.ts through the msw ↔ undici bridge: answers are classified by status first (a proxy's
 * HTML or empty body never turns a 401/404/503 into a parse error), an oversize answer is not a network
 * error, and a retry wait neither holds the process nor outlives close() or the caller's abort.
 */
import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import { HubHttpError } from '../../src/errors.js';
import { failure, transportDoc, useTransportLab } from '../helpers/transport-lab.js';

const HUB = 'http://hub.test';
const SERVICE = 'tick-aggregator';
const ROUTE = `${HUB}/api/v1/config/:service`;
const HTML = '<html><body><h1>401 Authorization Required</h1><hr><center>nginx</center></body></html>';

const lab = useTransportLab();
const makeTransport = lab.makeTransport;

const doc = transportDoc;

const html = (status: number, headers: Record<string, string> = {}) =>
  new HttpResponse(HTML, { status, headers: { 'content-type': 'text/html', ...headers } });

function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i++) value = { n: value };
  return value;
}

describe('classify by status first', () => {
  it.each([
    [401, 'html'],
    [401, 'empty'],
    [403, 'html'],
    [403, 'empty'],
  ] as const)('a %i with an %s body (a proxy in front of the hub) is UNAUTHORIZED and not retried', async (status, body) => {
    lab.agent.use(http.get(ROUTE, () => (body === 'html' ? html(status) : new HttpResponse(null, { status }))));
    const error = await failure(makeTransport().fetchConfig(SERVICE));
    expect(error.code).toBe('UNAUTHORIZED');
    expect((error as HubHttpError).status).toBe(status);
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('a 404 with an HTML body is CONFIG_NOT_FOUND, not a parse error', async () => {
    lab.agent.use(http.get(ROUTE, () => html(404)));
    const error = await failure(makeTransport().fetchConfig(SERVICE));
    expect(error).toBeInstanceOf(HubHttpError);
    expect(error.code).toBe('CONFIG_NOT_FOUND');
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('a JSON error body still gives its detail', async () => {
    lab.agent.use(http.get(ROUTE, () => HttpResponse.json({ detail: 'Config not found' }, { status: 404 })));
    const error = (await failure(makeTransport().fetchConfig(SERVICE))) as HubHttpError;
    expect(error.code).toBe('CONFIG_NOT_FOUND');
    expect(error.detail).toBe('Config not found');
  });

  it('a 503 with an empty body is retried as a 5xx and ends as HUB_ERROR 503', async () => {
    const answers = [503, 503];
    lab.agent.use(
      http.get(ROUTE, () => {
        const status = answers.shift();
        return status ? new HttpResponse(null, { status, headers: { 'retry-after': '0' } }) : HttpResponse.json(doc({ a: 1 }));
      }),
    );
    const result = await makeTransport().fetchConfig(SERVICE);
    expect(result.kind).toBe('document');
    expect(lab.agent.requests).toHaveLength(3);

    lab.agent.resetHandlers(http.get(ROUTE, () => new HttpResponse(null, { status: 503 })));
    lab.agent.clearRequests();
    const error = (await failure(makeTransport().fetchConfig(SERVICE))) as HubHttpError;
    expect(error.code).toBe('HUB_ERROR');
    expect(error.status).toBe(503);
    expect(lab.agent.requests).toHaveLength(3);
  });

  it('a 503 with an empty (or HTML) body keeps its Retry-After: one longer than maxRetryAfterMs ends the retries', async () => {
    for (const body of [null, HTML]) {
      lab.agent.resetHandlers(http.get(ROUTE, () => new HttpResponse(body, { status: 503, headers: { 'retry-after': '1' } })));
      lab.agent.clearRequests();
      const error = await failure(makeTransport({ maxRetryAfterMs: 500 }).fetchConfig(SERVICE));
      expect(error.code).toBe('HUB_ERROR');
      expect(lab.agent.requests).toHaveLength(1);
    }
  });

  it('an oversize answer is HUB_RESPONSE_INVALID, not a network error, and is not retried', async () => {
    lab.agent.use(http.get(ROUTE, () => HttpResponse.json(doc({ blob: 'x'.repeat(10_000) }))));
    const error = await failure(makeTransport({ maxResponseBytes: 1_000 }).fetchConfig(SERVICE));
    expect(error.code).toBe('HUB_RESPONSE_INVALID');
    expect(error.message).toMatch(/larger than 1000 bytes/);
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('an oversize error page keeps its status class (401 stays UNAUTHORIZED)', async () => {
    lab.agent.use(http.get(ROUTE, () => new HttpResponse('x'.repeat(10_000), { status: 401 })));
    const error = await failure(makeTransport({ maxResponseBytes: 1_000 }).fetchConfig(SERVICE));
    expect(error.code).toBe('UNAUTHORIZED');
  });

  it('a network error is still HUB_UNREACHABLE and retried', async () => {
    lab.agent.use(http.get(ROUTE, () => HttpResponse.error()));
    const error = await failure(makeTransport().fetchConfig(SERVICE));
    expect(error.code).toBe('HUB_UNREACHABLE');
    expect(lab.agent.requests).toHaveLength(3);
  });

  it('a hub document nested deeper than 64 levels is HUB_RESPONSE_INVALID (as an object or as a JSON string); 64 levels pass', async () => {
    lab.agent.use(http.get(ROUTE, () => HttpResponse.json(doc(nested(65)))));
    expect((await failure(makeTransport().fetchConfig(SERVICE))).code).toBe('HUB_RESPONSE_INVALID');
    lab.agent.resetHandlers(http.get(ROUTE, () => HttpResponse.json(doc(`${'{"n":'.repeat(20_000)}1${'}'.repeat(20_000)}`))));
    expect((await failure(makeTransport().fetchConfig(SERVICE))).code).toBe('HUB_RESPONSE_INVALID');
    lab.agent.resetHandlers(http.get(ROUTE, () => HttpResponse.json(doc(nested(64)))));
    expect((await makeTransport().fetchConfig(SERVICE)).kind).toBe('document');
  });
});

describe('retry waits', () => {
  const retryAfter = (seconds: string) =>
    http.get(ROUTE, () => HttpResponse.json({ detail: 'db down' }, { status: 503, headers: { 'retry-after': seconds } }));
  const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  it('a Retry-After wait does not hold the process (its timer is unref’d)', async () => {
    lab.agent.use(retryAfter('5'));
    const transport = makeTransport();
    const before = refTimers();
    const fetching = failure(transport.fetchConfig(SERVICE));
    await expect.poll(() => lab.agent.requests.length).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(refTimers()).toBe(before);
    await transport.close();
    expect((await fetching).code).toBe('CLIENT_CLOSED');
  });

  it('close() during a Retry-After wait returns promptly and the fetch rejects CLIENT_CLOSED', async () => {
    lab.agent.use(retryAfter('5'));
    const transport = makeTransport();
    const fetching = failure(transport.fetchConfig(SERVICE));
    await expect.poll(() => lab.agent.requests.length).toBe(1);
    const started = performance.now();
    await transport.close();
    const error = await fetching;
    expect(performance.now() - started).toBeLessThan(200);
    expect(error.code).toBe('CLIENT_CLOSED');
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('an aborted signal ends a Retry-After wait at once: the fetch rejects HUB_UNREACHABLE with the reason as cause', async () => {
    lab.agent.use(retryAfter('5'));
    const controller = new AbortController();
    const fetching = failure(makeTransport().fetchConfig(SERVICE, { signal: controller.signal }));
    await expect.poll(() => lab.agent.requests.length).toBe(1);
    const started = performance.now();
    const reason = new Error('startup budget spent');
    controller.abort(reason);
    const error = await fetching;
    expect(performance.now() - started).toBeLessThan(200);
    expect(error.code).toBe('HUB_UNREACHABLE');
    expect(error.cause).toBe(reason);
    expect(lab.agent.requests).toHaveLength(1);
  });

  it('an already aborted signal sends no request', async () => {
    lab.agent.use(http.get(ROUTE, () => HttpResponse.json(doc({ a: 1 }))));
    const error = await failure(makeTransport().fetchConfig(SERVICE, { signal: AbortSignal.abort() }));
    expect(error.code).toBe('HUB_UNREACHABLE');
    expect(lab.agent.requests).toHaveLength(0);
  });

  it('an abort while the request is in flight ends it at once', async () => {
    lab.agent.use(http.get(ROUTE, () => new Promise<Response>(() => undefined)));
    const controller = new AbortController();
    const fetching = failure(makeTransport().fetchConfig(SERVICE, { signal: controller.signal }));
    await expect.poll(() => lab.agent.requests.length).toBe(1);
    controller.abort();
    const error = await fetching;
    expect(error.code).toBe('HUB_UNREACHABLE');
    expect(lab.agent.requests).toHaveLength(1);
  });
});
