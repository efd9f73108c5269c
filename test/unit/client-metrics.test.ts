/**
 * OpenTelemetry metrics of the client (issue 12): the instruments as an SDK collects them, the hub answering
 * through msw (the undici bridge), the global meter provider as the default, `metrics: false`, a meter that
 * throws, close(), and the options.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metrics as otelMetrics } from '@opentelemetry/api';
import { AggregationTemporality, type Histogram, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { delay, HttpResponse, http } from 'msw';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ConfigClient, type ConfigClientOptions } from '../../src/index.js';
import { ConfigError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { ClientMetrics, clientMetrics, FETCH_DURATION_BUCKETS } from '../../src/metrics/client-metrics.js';
import type { MetricsMeter } from '../../src/metrics/meter.js';
import { metricsEvent } from '../../src/metrics/metrics-event.js';
import { apiFrom, globalMeter, isNotFound, METER_NAME, otelApi } from '../../src/metrics/otel-api.js';
import { resolveOptions } from '../../src/options.js';
import type { Plan } from '../../src/runtime/transition.js';
import { CLIENT_VERSION } from '../../src/version.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';
import { failure, TRANSPORT_SERVICE, transportDoc, useTransportLab } from '../helpers/transport-lab.js';

const HUB = 'http://hub.test';
const SERVICE = 'orders';
const schema = z.object({ limit: z.number().int().positive() });

class TestReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

interface Point {
  attributes: Record<string, unknown>;
  value: unknown;
}
interface Collected {
  scope: { name: string; version?: string | undefined };
  unit: string;
  description: string;
  points: Point[];
}

/** Every metric the reader collects now, by name. */
async function collect(reader: MetricReader): Promise<Map<string, Collected>> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const out = new Map<string, Collected>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      out.set(metric.descriptor.name, {
        scope: scope.scope,
        unit: metric.descriptor.unit,
        description: metric.descriptor.description,
        points: metric.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
      });
    }
  }
  return out;
}

/** The values of a counter or gauge, by attributes (JSON). */
function values(collected: Map<string, Collected>, name: string): Record<string, unknown> {
  return Object.fromEntries((collected.get(name)?.points ?? []).map((p) => [JSON.stringify(p.attributes), p.value]));
}

/** The counts of a histogram, by outcome. */
function fetchCounts(collected: Map<string, Collected>): Record<string, number> {
  return Object.fromEntries(
    (collected.get('central_hub.fetch.duration')?.points ?? []).map((p) => {
      expect(p.attributes.service).toBe(SERVICE);
      return [String(p.attributes.outcome), (p.value as Histogram).count];
    }),
  );
}

function doc(config: unknown, revision: number) {
  return { service_name: SERVICE, config, version: `1.0.${revision}`, updated_at: 1_760_000_000_000 + revision, revision };
}

const hubRoute = (resolver: Parameters<typeof http.get>[1]) => http.get(`${HUB}/api/v1/config/:service`, resolver);

/** A hub holding one document at a time, answering `If-None-Match` with 304. */
function hub(agent: MswAgent, first: { config: unknown; revision: number }) {
  let current = first;
  agent.use(
    hubRoute(({ request }) => {
      const etag = `"${current.revision}"`;
      if (request.headers.get('if-none-match') === etag) return new HttpResponse(null, { status: 304 });
      return HttpResponse.json(doc(current.config, current.revision), { headers: { etag } });
    }),
  );
  return {
    set(next: { config: unknown; revision: number }) {
      current = next;
    },
  };
}

let agent: MswAgent;
let reader: TestReader;
let provider: MeterProvider;
let clients: ConfigClient[];
let snapshotDir: string;

beforeEach(async () => {
  agent = createMswAgent([]);
  reader = new TestReader();
  provider = new MeterProvider({ readers: [reader] });
  clients = [];
  snapshotDir = await mkdtemp(join(tmpdir(), 'chc-metrics-'));
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await agent.close();
  otelMetrics.disable();
  await provider.shutdown();
});

function makeClient(overrides: Partial<ConfigClientOptions> = {}) {
  const client = new ConfigClient({
    hubUrl: HUB,
    snapshotDir,
    pollIntervalMs: false,
    fleetReport: false,
    transport: { dispatcher: agent, retries: 0, retryBaseDelayMs: 1, retryMaxDelayMs: 2 },
    recovery: { minDelayMs: 60_000, maxDelayMs: 60_000 },
    services: { [SERVICE]: { schema, defaults: { limit: 1 } } },
    ...overrides,
    // The default test meter only when the test names none (getMeter is spied on in one test).
    metrics: 'metrics' in overrides ? overrides.metrics : { meter: provider.getMeter('test') },
  });
  clients.push(client as unknown as ConfigClient);
  return client as unknown as ConfigClient<{ orders: { schema: typeof schema } }>;
}

describe('central_hub.fetch.duration', () => {
  it('a get records one fetch, outcome document, in seconds, with the HTTP client duration buckets', async () => {
    agent.use(
      hubRoute(async () => {
        await delay(40);
        return HttpResponse.json(doc({ limit: 5 }, 1));
      }),
    );
    const client = makeClient();
    await expect(client.get(SERVICE)).resolves.toEqual({ limit: 5 });
    const collected = await collect(reader);
    const metric = collected.get('central_hub.fetch.duration')!;
    expect(metric.unit).toBe('s');
    expect(metric.points).toHaveLength(1);
    expect(metric.points[0]!.attributes).toEqual({ service: SERVICE, outcome: 'document' });
    const value = metric.points[0]!.value as Histogram;
    expect(value.count).toBe(1);
    // Seconds, not milliseconds: the hub took 40 ms.
    expect(value.sum).toBeGreaterThanOrEqual(0.035);
    expect(value.sum).toBeLessThan(2);
    expect(value.buckets.boundaries).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
    expect(FETCH_DURATION_BUCKETS).toEqual(value.buckets.boundaries);
  });

  it('a refresh answered 304 records outcome not_modified; cache hits record nothing', async () => {
    hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient();
    await client.get(SERVICE);
    await client.get(SERVICE);
    await client.refresh(SERVICE);
    expect(agent.requests).toHaveLength(2);
    expect(fetchCounts(await collect(reader))).toEqual({ document: 1, not_modified: 1 });
  });

  it('a 404 records not_found and a failing hub error, once per fetch (retries included)', async () => {
    let status = 404;
    agent.use(hubRoute(() => HttpResponse.json({ detail: 'x' }, { status })));
    const client = makeClient({ transport: { dispatcher: agent, retries: 2, retryBaseDelayMs: 1, retryMaxDelayMs: 2 } });
    await client.get(SERVICE);
    status = 503;
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'HUB_ERROR' });
    expect(agent.requests).toHaveLength(4);
    expect(fetchCounts(await collect(reader))).toEqual({ not_found: 1, error: 1 });
  });

  it('a fetch abandoned by close() is not recorded', async () => {
    agent.use(
      hubRoute(async () => {
        await delay(5_000);
        return HttpResponse.json(doc({ limit: 5 }, 1));
      }),
    );
    const client = makeClient({ startupTimeoutMs: 10_000 });
    const pending = client.get(SERVICE).catch((error: unknown) => error);
    await vi.waitFor(() => expect(agent.requests).toHaveLength(1));
    await client.close();
    await pending;
    expect(fetchCounts(await collect(reader))).toEqual({});
  });
});

describe('central_hub.changes.* and central_hub.errors', () => {
  it('a rejected update counts changes.rejected 1 and errors{CONFIG_INVALID} 1, once per revision', async () => {
    const state = hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient();
    const codes: string[] = [];
    client.onError((error) => codes.push(error.code));
    await client.get(SERVICE);
    state.set({ config: { limit: -1 }, revision: 2 });
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect(codes).toEqual(['CONFIG_INVALID']);
    let collected = await collect(reader);
    expect(values(collected, 'central_hub.changes.rejected')).toEqual({ [JSON.stringify({ service: SERVICE })]: 1 });
    expect(values(collected, 'central_hub.errors')).toEqual({ [JSON.stringify({ service: SERVICE, code: 'CONFIG_INVALID' })]: 1 });
    expect(collected.get('central_hub.changes.rejected')!.unit).toBe('{change}');
    expect(collected.get('central_hub.errors')!.unit).toBe('{error}');
    expect(collected.has('central_hub.changes.applied')).toBe(false);
    // Another bad revision is another rejection.
    state.set({ config: { limit: 0 }, revision: 3 });
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    collected = await collect(reader);
    expect(values(collected, 'central_hub.changes.rejected')).toEqual({ [JSON.stringify({ service: SERVICE })]: 2 });
    expect(values(collected, 'central_hub.errors')).toEqual({ [JSON.stringify({ service: SERVICE, code: 'CONFIG_INVALID' })]: 2 });
  });

  it('an applied change counts changes.applied by source; the first load and an unchanged value do not', async () => {
    const state = hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient();
    await client.get(SERVICE);
    expect((await collect(reader)).has('central_hub.changes.applied')).toBe(false);
    state.set({ config: { limit: 6 }, revision: 2 });
    await client.refresh(SERVICE);
    // Same value under a new revision: no change announced, none counted.
    state.set({ config: { limit: 6 }, revision: 3 });
    await client.refresh(SERVICE);
    const collected = await collect(reader);
    expect(values(collected, 'central_hub.changes.applied')).toEqual({ [JSON.stringify({ service: SERVICE, source: 'refresh' })]: 1 });
    expect(collected.get('central_hub.changes.applied')!.unit).toBe('{change}');
    expect(collected.has('central_hub.changes.rejected')).toBe(false);
    expect(collected.has('central_hub.errors')).toBe(false);
  });

  it('a change after the hub recovers counts source recovery; the failure counts errors{HUB_ERROR}', async () => {
    let answer = () => HttpResponse.json(doc({ limit: 5 }, 1));
    agent.use(hubRoute(() => answer()));
    const client = makeClient();
    await client.get(SERVICE);
    answer = () => HttpResponse.json({ detail: 'down' }, { status: 500 });
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'HUB_ERROR' });
    answer = () => HttpResponse.json(doc({ limit: 9 }, 2));
    await client.refresh(SERVICE);
    const collected = await collect(reader);
    expect(values(collected, 'central_hub.changes.applied')).toEqual({ [JSON.stringify({ service: SERVICE, source: 'recovery' })]: 1 });
    expect(values(collected, 'central_hub.errors')).toEqual({ [JSON.stringify({ service: SERVICE, code: 'HUB_ERROR' })]: 1 });
  });

  it('errors counts every error onError receives, a failing listener included', async () => {
    const state = hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient();
    client.onChange(SERVICE, () => {
      throw new Error('listener bug');
    });
    await client.get(SERVICE);
    state.set({ config: { limit: 6 }, revision: 2 });
    await client.refresh(SERVICE);
    expect(values(await collect(reader), 'central_hub.errors')).toEqual({ [JSON.stringify({ service: SERVICE, code: 'LISTENER_FAILED' })]: 1 });
  });
});

describe('the gauges', () => {
  it('config.revision is the served hub revision', async () => {
    const state = hub(agent, { config: { limit: 5 }, revision: 7 });
    const client = makeClient();
    expect((await collect(reader)).has('central_hub.config.revision')).toBe(false);
    await client.get(SERVICE);
    let collected = await collect(reader);
    expect(values(collected, 'central_hub.config.revision')).toEqual({ [JSON.stringify({ service: SERVICE })]: 7 });
    expect(collected.get('central_hub.config.revision')!.unit).toBe('{revision}');
    state.set({ config: { limit: 6 }, revision: 8 });
    await client.refresh(SERVICE);
    collected = await collect(reader);
    expect(values(collected, 'central_hub.config.revision')).toEqual({ [JSON.stringify({ service: SERVICE })]: 8 });
  });

  it('config.age is ≥ 0 in seconds, grows, and a 304 (a confirmation) resets it', async () => {
    hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient();
    await client.get(SERVICE);
    const age = async () => {
      const collected = await collect(reader);
      expect(collected.get('central_hub.config.age')!.unit).toBe('s');
      return values(collected, 'central_hub.config.age')[JSON.stringify({ service: SERVICE })] as number;
    };
    const first = await age();
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThan(0.05);
    await delay(120);
    const later = await age();
    expect(later).toBeGreaterThanOrEqual(first + 0.1);
    expect(later).toBeLessThan(1);
    await client.refresh(SERVICE);
    expect(fetchCounts(await collect(reader))).toEqual({ document: 1, not_modified: 1 });
    expect(await age()).toBeLessThan(later);
  });

  it('config.age of a snapshot served while the hub is down counts from when the snapshot was saved; a failure does not reset it', async () => {
    hub(agent, { config: { limit: 5 }, revision: 4 });
    const writer = makeClient({ metrics: false });
    await writer.get(SERVICE);
    await writer.close();
    await delay(150);
    agent.resetHandlers();
    agent.use(hubRoute(() => HttpResponse.json({ detail: 'down' }, { status: 500 })));
    const client = makeClient({ startupTimeoutMs: 1_000 });
    await expect(client.get(SERVICE)).resolves.toEqual({ limit: 5 });
    expect(client.status(SERVICE).source).toBe('snapshot');
    const collected = await collect(reader);
    const age = values(collected, 'central_hub.config.age')[JSON.stringify({ service: SERVICE })] as number;
    expect(age).toBeGreaterThanOrEqual(0.14);
    expect(age).toBeLessThan(5);
    expect(values(collected, 'central_hub.config.revision')).toEqual({ [JSON.stringify({ service: SERVICE })]: 4 });
  });

  it('no age and no revision for a service served from the defaults before any answer', async () => {
    agent.use(hubRoute(() => HttpResponse.json({ detail: 'down' }, { status: 500 })));
    const client = makeClient({ snapshotDir: false, startupTimeoutMs: 200 });
    await expect(client.get(SERVICE)).resolves.toEqual({ limit: 1 });
    const collected = await collect(reader);
    expect(collected.has('central_hub.config.age')).toBe(false);
    expect(collected.has('central_hub.config.revision')).toBe(false);
  });

  it('close() unregisters the gauges: a closed client observes nothing', async () => {
    hub(agent, { config: { limit: 5 }, revision: 3 });
    // Delta temporality: a cumulative reader would repeat the last observation of a series forever.
    const deltaReader = new TestReader({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
    const deltaProvider = new MeterProvider({ readers: [deltaReader] });
    const meter = deltaProvider.getMeter('test');
    const remove = vi.spyOn(meter, 'removeBatchObservableCallback');
    const add = vi.spyOn(meter, 'addBatchObservableCallback');
    const client = makeClient({ metrics: { meter } });
    await client.get(SERVICE);
    let collected = await collect(deltaReader);
    expect(Object.keys(values(collected, 'central_hub.config.age'))).toEqual([JSON.stringify({ service: SERVICE })]);
    expect(values(collected, 'central_hub.config.revision')).toEqual({ [JSON.stringify({ service: SERVICE })]: 3 });
    await client.close();
    collected = await collect(deltaReader);
    expect(values(collected, 'central_hub.config.age')).toEqual({});
    expect(values(collected, 'central_hub.config.revision')).toEqual({});
    expect(add).toHaveBeenCalledTimes(1);
    expect(remove).toHaveBeenCalledTimes(1);
    expect(remove.mock.calls[0]).toEqual(add.mock.calls[0]);
    await deltaProvider.shutdown();
  });

  it('close() with a meter that fails to unregister: logged, and the callback observes nothing any more', async () => {
    hub(agent, { config: { limit: 5 }, revision: 3 });
    const deltaReader = new TestReader({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
    const deltaProvider = new MeterProvider({ readers: [deltaReader] });
    const meter = deltaProvider.getMeter('test');
    vi.spyOn(meter, 'removeBatchObservableCallback').mockImplementation(() => {
      throw new Error('cannot remove');
    });
    const warn = vi.fn();
    const client = makeClient({ metrics: { meter }, logger: { warn } });
    await client.get(SERVICE);
    expect(Object.keys(values(await collect(deltaReader), 'central_hub.config.revision'))).toHaveLength(1);
    await client.close();
    expect(warn).toHaveBeenCalledWith({ err: 'Error: cannot remove' }, 'recording a metric failed (config delivery is not affected)');
    const collected = await collect(deltaReader);
    expect(values(collected, 'central_hub.config.age')).toEqual({});
    expect(values(collected, 'central_hub.config.revision')).toEqual({});
    await deltaProvider.shutdown();
  });
});

describe('the instruments', () => {
  it('names, units and descriptions', async () => {
    const state = hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient();
    await client.get(SERVICE);
    state.set({ config: { limit: 6 }, revision: 2 });
    await client.refresh(SERVICE);
    state.set({ config: { limit: -6 }, revision: 3 });
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const collected = await collect(reader);
    expect(Object.fromEntries([...collected].map(([name, m]) => [name, [m.unit, m.description]]))).toEqual({
      'central_hub.fetch.duration': ['s', 'Duration of a config fetch from the hub, retries and failover included'],
      'central_hub.errors': ['{error}', 'Errors reported through onError, by code'],
      'central_hub.changes.applied': ['{change}', 'Changes of the served config announced to onChange listeners'],
      'central_hub.changes.rejected': ['{change}', 'Config updates refused by the schema (CONFIG_INVALID)'],
      'central_hub.config.age': ['s', 'Time since the hub last confirmed the served config'],
      'central_hub.config.revision': ['{revision}', 'Hub revision of the served config'],
    });
  });
});

describe('which meter', () => {
  it('by default the global meter provider, scope @central-hub/config at the package version', async () => {
    otelMetrics.setGlobalMeterProvider(provider);
    hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient({ metrics: undefined });
    await client.get(SERVICE);
    const metric = (await collect(reader)).get('central_hub.fetch.duration')!;
    expect(metric.scope).toMatchObject({ name: '@central-hub/config', version: CLIENT_VERSION });
    expect(METER_NAME).toBe('@central-hub/config');
  });

  it('metrics: true is the default; metrics: {} too', async () => {
    otelMetrics.setGlobalMeterProvider(provider);
    hub(agent, { config: { limit: 5 }, revision: 1 });
    await makeClient({ metrics: true }).get(SERVICE);
    await makeClient({ metrics: {} }).get(SERVICE);
    expect(fetchCounts(await collect(reader))).toEqual({ document: 2 });
  });

  it('metrics: false records nothing, even with a global provider', async () => {
    otelMetrics.setGlobalMeterProvider(provider);
    const getMeter = vi.spyOn(provider, 'getMeter');
    const state = hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient({ metrics: false });
    await client.get(SERVICE);
    state.set({ config: { limit: -1 }, revision: 2 });
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect(getMeter).not.toHaveBeenCalled();
    expect([...(await collect(reader)).keys()]).toEqual([]);
  });

  it('without an SDK registered (the API no-op meter) nothing throws and nothing is recorded', async () => {
    const state = hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient({ metrics: undefined });
    await expect(client.get(SERVICE)).resolves.toEqual({ limit: 5 });
    state.set({ config: { limit: -1 }, revision: 2 });
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    // A provider registered after the client was made is not used (the API has no proxy meter).
    otelMetrics.setGlobalMeterProvider(provider);
    await expect(client.refresh(SERVICE)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect([...(await collect(reader)).keys()]).toEqual([]);
    await client.close();
  });

  it('a meter that throws never breaks the client: logged once, config still served', async () => {
    const meter = provider.getMeter('test');
    const warn = vi.fn();
    vi.spyOn(meter, 'createHistogram').mockReturnValue({
      record() {
        throw new Error('exporter bug');
      },
    } as never);
    const state = hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient({ metrics: { meter }, logger: { warn } });
    await expect(client.get(SERVICE)).resolves.toEqual({ limit: 5 });
    state.set({ config: { limit: 6 }, revision: 2 });
    await expect(client.refresh(SERVICE)).resolves.toEqual({ limit: 6 });
    const metricWarnings = warn.mock.calls.filter(([, msg]) => String(msg).startsWith('recording a metric failed'));
    expect(metricWarnings).toEqual([[{ err: 'Error: exporter bug' }, 'recording a metric failed (config delivery is not affected)']]);
    // The other instruments still record.
    expect(values(await collect(reader), 'central_hub.changes.applied')).toEqual({ [JSON.stringify({ service: SERVICE, source: 'refresh' })]: 1 });
  });

  it('a meter that refuses the instruments: no metrics, a warning, the client works', async () => {
    const meter = provider.getMeter('test');
    vi.spyOn(meter, 'createCounter').mockImplementation(() => {
      throw new Error('no counters here');
    });
    const warn = vi.fn();
    hub(agent, { config: { limit: 5 }, revision: 1 });
    const client = makeClient({ metrics: { meter }, logger: { warn } });
    await expect(client.get(SERVICE)).resolves.toEqual({ limit: 5 });
    expect(warn).toHaveBeenCalledWith({ err: 'Error: no counters here' }, 'metrics off: the meter refused the instruments');
  });
});

describe('@opentelemetry/api absent or broken', () => {
  const notFound = Object.assign(new Error("Cannot find module '@opentelemetry/api'"), { code: 'MODULE_NOT_FOUND' });

  it('apiFrom: a throwing load is no API, with the reason; a module without metrics.getMeter too', () => {
    expect(apiFrom(() => {
      throw notFound;
    })).toEqual({ api: undefined, problem: notFound });
    const old = apiFrom(() => ({ trace: {} }));
    expect(old.api).toBeUndefined();
    expect(String((old as { problem: unknown }).problem)).toBe('Error: @opentelemetry/api has no metrics.getMeter (API < 1.3?)');
    expect(apiFrom(() => null).api).toBeUndefined();
    expect(apiFrom(() => ({ metrics: { getMeter: 1 } })).api).toBeUndefined();
    const api = { metrics: { getMeter: () => ({}) } };
    expect(apiFrom(() => api)).toEqual({ api });
  });

  it('otelApi finds the installed API once (same answer each time)', () => {
    const first = otelApi();
    expect(typeof first.api?.metrics.getMeter).toBe('function');
    expect(otelApi()).toBe(first);
  });

  it('isNotFound: the CJS and the ESM codes only', () => {
    expect(isNotFound(notFound)).toBe(true);
    expect(isNotFound({ code: 'ERR_MODULE_NOT_FOUND' })).toBe(true);
    expect(isNotFound({ code: 'EACCES' })).toBe(false);
    expect(isNotFound(new Error('x'))).toBe(false);
    expect(isNotFound(undefined)).toBe(false);
  });

  it('globalMeter asks for the package meter at its version; a throwing getMeter is no meter', () => {
    const getMeter = vi.fn(() => ({ marker: true }) as unknown as MetricsMeter);
    expect(globalMeter({ api: { metrics: { getMeter } } })).toEqual({ meter: { marker: true } });
    expect(getMeter).toHaveBeenCalledWith('@central-hub/config', CLIENT_VERSION);
    const broken = new Error('broken');
    expect(
      globalMeter({
        api: {
          metrics: {
            getMeter: () => {
              throw broken;
            },
          },
        },
      }),
    ).toEqual({ meter: undefined, problem: broken });
    expect(globalMeter({ api: undefined, problem: notFound })).toEqual({ meter: undefined, problem: notFound });
  });

  it('clientMetrics without the API: none, a debug line (not installed is normal), a warning for anything else', () => {
    const logger = { ...silentLogger, debug: vi.fn(), warn: vi.fn() };
    expect(clientMetrics(undefined, logger, () => ({ api: undefined, problem: notFound }))).toBeUndefined();
    expect(logger.debug).toHaveBeenCalledWith({}, 'metrics off: @opentelemetry/api is not installed');
    expect(logger.warn).not.toHaveBeenCalled();
    expect(clientMetrics(undefined, logger, () => ({ api: undefined, problem: new Error('EACCES') }))).toBeUndefined();
    expect(logger.warn).toHaveBeenCalledWith({ err: 'Error: EACCES' }, 'metrics off: @opentelemetry/api could not be loaded');
    expect(logger.debug).toHaveBeenCalledTimes(1);
  });

  it('clientMetrics with a meter never loads the API; without one it uses the global meter', () => {
    const load = vi.fn(() => ({ api: undefined, problem: notFound }));
    expect(clientMetrics(provider.getMeter('test'), silentLogger, load)).toBeInstanceOf(ClientMetrics);
    expect(load).not.toHaveBeenCalled();
    expect(clientMetrics(undefined, silentLogger, () => ({ api: { metrics: { getMeter: () => provider.getMeter('g') } } }))).toBeInstanceOf(ClientMetrics);
  });
});

/** A meter that records the raw calls (what a user's meter would receive), or throws at every record. */
function fakeMeter(fail = false) {
  const calls: unknown[][] = [];
  let callback: ((result: { observe(o: object, v: number, a?: object): void }) => void) | undefined;
  const boom = (): never => {
    throw new Error('meter down');
  };
  const instrument = (name: string) => ({
    record: (value: number, attributes?: object) => (fail ? boom() : calls.push([name, value, attributes])),
    add: (value: number, attributes?: object) => (fail ? boom() : calls.push([name, value, attributes])),
  });
  const meter: MetricsMeter = {
    createHistogram: instrument,
    createCounter: instrument,
    createObservableGauge: (name) => ({ name }),
    addBatchObservableCallback: (cb) => {
      callback = cb as typeof callback;
    },
    removeBatchObservableCallback: () => {
      if (fail) boom();
      callback = undefined;
    },
  };
  const observe = () => {
    const out: unknown[][] = [];
    callback?.({ observe: (o, v, a) => out.push([(o as { name: string }).name, v, a]) });
    return out;
  };
  return { meter, calls, observe };
}

describe('ClientMetrics', () => {
  it('hands the meter exactly the attributes documented, never an undefined value', () => {
    const { meter, calls, observe } = fakeMeter();
    const metrics = new ClientMetrics(meter, silentLogger, () => 5_000);
    metrics.errored(new ConfigError('HUB_UNREACHABLE', 'x'));
    metrics.errored(new ConfigError('HUB_ERROR', 'y', { service: 'a' }));
    metrics.fetched('a', 'not_found', 0.25);
    metrics.transitioned('a', { applied: 'recovery', rejected: true });
    metrics.track('a', () => ({ confirmedAt: 4_000, revision: undefined }));
    metrics.track('b', () => ({ confirmedAt: undefined, revision: 9 }));
    expect(calls).toEqual([
      ['central_hub.errors', 1, { code: 'HUB_UNREACHABLE' }],
      ['central_hub.errors', 1, { service: 'a', code: 'HUB_ERROR' }],
      ['central_hub.fetch.duration', 0.25, { service: 'a', outcome: 'not_found' }],
      ['central_hub.changes.applied', 1, { service: 'a', source: 'recovery' }],
      ['central_hub.changes.rejected', 1, { service: 'a' }],
    ]);
    expect(Object.keys(calls[0]![2] as object)).toEqual(['code']);
    expect(observe()).toEqual([
      ['central_hub.config.age', 1, { service: 'a' }],
      ['central_hub.config.revision', 9, { service: 'b' }],
    ]);
    metrics.close();
    expect(observe()).toEqual([]);
  });

  it('a meter failing at every call: each method still returns and warns, once per client', () => {
    const calls: Array<(metrics: ClientMetrics) => void> = [
      (m) => m.fetched('a', 'document', 0.1),
      (m) => m.transitioned('a', { applied: 'poll', rejected: false }),
      (m) => m.transitioned('a', { applied: undefined, rejected: true }),
      (m) => m.errored(new ConfigError('HUB_ERROR', 'x', { service: 'a' })),
      (m) => m.close(),
    ];
    for (const call of calls) {
      const warn = vi.fn();
      const metrics = new ClientMetrics(fakeMeter(true).meter, { ...silentLogger, warn });
      call(metrics);
      call(metrics);
      expect(warn.mock.calls).toEqual([[{ err: 'Error: meter down' }, 'recording a metric failed (config delivery is not affected)']]);
    }
  });

  it('a meter failing at every call: each method still returns, one warning in all', () => {
    const { meter } = fakeMeter(true);
    const warn = vi.fn();
    const metrics = new ClientMetrics(meter, { ...silentLogger, warn });
    metrics.fetched('a', 'document', 0.1);
    metrics.transitioned('a', { applied: 'poll', rejected: false });
    metrics.transitioned('a', { applied: undefined, rejected: true });
    metrics.errored(new ConfigError('HUB_ERROR', 'x', { service: 'a' }));
    metrics.close();
    expect(warn.mock.calls).toEqual([[{ err: 'Error: meter down' }, 'recording a metric failed (config delivery is not affected)']]);
  });

  it('an error without a service carries its code only; a clock stepped back shows age 0', async () => {
    let now = 10_000;
    const metrics = new ClientMetrics(provider.getMeter('test'), silentLogger, () => now);
    metrics.errored(new ConfigError('HUB_UNREACHABLE', 'x'));
    metrics.track('a', () => ({ confirmedAt: 12_000, revision: undefined }));
    metrics.track('b', () => ({ confirmedAt: 7_500, revision: 2 }));
    let collected = await collect(reader);
    expect(values(collected, 'central_hub.errors')).toEqual({ [JSON.stringify({ code: 'HUB_UNREACHABLE' })]: 1 });
    expect(values(collected, 'central_hub.config.age')).toEqual({ [JSON.stringify({ service: 'a' })]: 0, [JSON.stringify({ service: 'b' })]: 2.5 });
    expect(values(collected, 'central_hub.config.revision')).toEqual({ [JSON.stringify({ service: 'b' })]: 2 });
    now = 20_000;
    collected = await collect(reader);
    expect(values(collected, 'central_hub.config.age')).toEqual({ [JSON.stringify({ service: 'a' })]: 8, [JSON.stringify({ service: 'b' })]: 12.5 });
  });

  it('transitioned: nothing for no event; applied and rejected each count', async () => {
    const metrics = new ClientMetrics(provider.getMeter('test'), silentLogger);
    metrics.transitioned('a', undefined);
    metrics.transitioned('a', { applied: 'poll', rejected: false });
    metrics.transitioned('a', { applied: undefined, rejected: true });
    metrics.transitioned('a', { applied: 'nats', rejected: true });
    const collected = await collect(reader);
    expect(values(collected, 'central_hub.changes.applied')).toEqual({
      [JSON.stringify({ service: 'a', source: 'poll' })]: 1,
      [JSON.stringify({ service: 'a', source: 'nats' })]: 1,
    });
    expect(values(collected, 'central_hub.changes.rejected')).toEqual({ [JSON.stringify({ service: 'a' })]: 2 });
  });
});

describe('metricsEvent', () => {
  const plan = (report: Plan['report']): Plan => ({ failing: false, lastError: undefined, recovery: 'keep', fresh: false, snapshot: 'keep', report, hint: false });
  const invalid = new ConfigError('CONFIG_INVALID', 'bad');

  it('nothing without a change or a new rejection', () => {
    expect(metricsEvent(plan([]), undefined, undefined)).toBeUndefined();
    expect(metricsEvent(plan([{ error: new ConfigError('HUB_ERROR', 'x'), key: 'HUB_ERROR' }]), undefined, undefined)).toBeUndefined();
    // The same rejected revision again is not reported, so not counted.
    expect(metricsEvent(plan([{ error: invalid, key: 'CONFIG_INVALID:2' }]), undefined, 'CONFIG_INVALID:2')).toBeUndefined();
  });

  it('a change with its source; a new rejection (keyed or not)', () => {
    expect(metricsEvent(plan([]), { source: 'poll' }, undefined)).toEqual({ applied: 'poll', rejected: false });
    expect(metricsEvent(plan([{ error: invalid, key: 'CONFIG_INVALID:3' }]), undefined, 'CONFIG_INVALID:2')).toEqual({ applied: undefined, rejected: true });
    expect(metricsEvent(plan([{ error: invalid }]), undefined, undefined)).toEqual({ applied: undefined, rejected: true });
  });
});

describe('the metrics option', () => {
  const base = { hubUrl: HUB };

  it('defaults to the global meter; false is off; { meter } is that meter', () => {
    const meter = provider.getMeter('test');
    expect(resolveOptions(base).metrics).toStrictEqual({ meter: undefined });
    expect(resolveOptions({ ...base, metrics: true }).metrics).toStrictEqual({ meter: undefined });
    expect(resolveOptions({ ...base, metrics: {} }).metrics).toStrictEqual({ meter: undefined });
    expect(resolveOptions({ ...base, metrics: false }).metrics).toBe(false);
    expect(resolveOptions({ ...base, metrics: { meter } }).metrics).toEqual({ meter });
    expect(Object.isFrozen(resolveOptions({ ...base, metrics: { meter } }).metrics)).toBe(true);
    expect(Object.isFrozen(resolveOptions(base).metrics)).toBe(true);
  });

  it('refuses what is not a boolean or an object, unknown keys, and a meter that is not one (INVALID_OPTIONS)', () => {
    const refuse = (metrics: unknown, message: string) =>
      expect(() => new ConfigClient({ ...base, metrics } as unknown as ConfigClientOptions)).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', message }));
    refuse('yes', 'metrics must be a boolean or an object');
    refuse(null, 'metrics must be a boolean or an object');
    refuse([], 'metrics must be a boolean or an object');
    refuse(1, 'metrics must be a boolean or an object');
    refuse({ metre: {} }, 'unknown option "metrics.metre" (did you mean "metrics.meter"?)');
    refuse({ meter: {} }, 'metrics.meter must be an OpenTelemetry Meter (no createHistogram())');
    refuse({ meter: null }, 'metrics.meter must be an OpenTelemetry Meter (no createHistogram())');
    const partial = { createHistogram() {}, createCounter() {}, createObservableGauge() {}, addBatchObservableCallback() {} };
    refuse({ meter: partial }, 'metrics.meter must be an OpenTelemetry Meter (no removeBatchObservableCallback())');
    expect(() => new ConfigClient({ ...base, metricz: true } as unknown as ConfigClientOptions)).toThrow('unknown option "metricz" (did you mean "metrics"?)');
  });
});

describe('HubTransport onFetched', () => {
  const lab = useTransportLab();
  const route = (resolver: Parameters<typeof http.get>[1]) => lab.agent.use(http.get('*', resolver));

  it('sees each fetchConfig once with its outcome and duration; a transport without it fetches the same', async () => {
    const onFetched = vi.fn();
    let answer = () => HttpResponse.json(transportDoc({ a: 1 }), { headers: { etag: '"1"' } });
    route(() => answer());
    const transport = lab.makeTransport({ onFetched });
    expect((await transport.fetchConfig(TRANSPORT_SERVICE)).kind).toBe('document');
    answer = () => new HttpResponse(null, { status: 304 });
    expect((await transport.fetchConfig(TRANSPORT_SERVICE, { etag: '"1"' })).kind).toBe('not-modified');
    answer = () => HttpResponse.json({ detail: 'gone' }, { status: 404 });
    expect(await failure(transport.fetchConfig(TRANSPORT_SERVICE))).toMatchObject({ code: 'CONFIG_NOT_FOUND' });
    answer = () => HttpResponse.json({ detail: 'no' }, { status: 401 });
    expect(await failure(transport.fetchConfig(TRANSPORT_SERVICE))).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(onFetched.mock.calls.map(([service, outcome]) => [service, outcome])).toEqual([
      [TRANSPORT_SERVICE, 'document'],
      [TRANSPORT_SERVICE, 'not_modified'],
      [TRANSPORT_SERVICE, 'not_found'],
      [TRANSPORT_SERVICE, 'error'],
    ]);
    for (const [, , seconds] of onFetched.mock.calls) {
      expect(seconds).toBeGreaterThan(0);
      expect(seconds).toBeLessThan(1);
    }
    answer = () => HttpResponse.json(transportDoc({ a: 2 }));
    expect(await lab.makeTransport().fetchConfig(TRANSPORT_SERVICE)).toMatchObject({ kind: 'document', document: { config: { a: 2 } } });
  });

  it('a fetch abandoned through its signal is not seen', async () => {
    const onFetched = vi.fn();
    route(() => new Promise<Response>(() => undefined));
    const transport = lab.makeTransport({ onFetched });
    const abandon = new AbortController();
    const pending = failure(transport.fetchConfig(TRANSPORT_SERVICE, { signal: abandon.signal }));
    await vi.waitFor(() => expect(lab.agent.requests).toHaveLength(1));
    abandon.abort(new Error('not needed'));
    expect(await pending).toMatchObject({ code: 'HUB_UNREACHABLE' });
    expect(onFetched).not.toHaveBeenCalled();
  });

  it('a fetch ended by close() is not seen', async () => {
    const onFetched = vi.fn();
    route(() => new Promise<Response>(() => undefined));
    const transport = lab.makeTransport({ onFetched });
    const pending = failure(transport.fetchConfig(TRANSPORT_SERVICE));
    await vi.waitFor(() => expect(lab.agent.requests).toHaveLength(1));
    await transport.close();
    expect(await pending).toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(onFetched).not.toHaveBeenCalled();
  });
});
