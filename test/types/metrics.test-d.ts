import type { Meter } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expectTypeOf, it } from 'vitest';
import { type ConfigClientOptions, ConfigClient, type MetricsMeter, type MetricsOptions } from '../../src/index.js';

describe('metrics option types', () => {
  it('an OpenTelemetry Meter (API and SDK) is a MetricsMeter, without the package types naming the API', () => {
    expectTypeOf<Meter>().toMatchTypeOf<MetricsMeter>();
    const meter = new MeterProvider().getMeter('app');
    expectTypeOf(meter).toMatchTypeOf<MetricsMeter>();
    new ConfigClient({ hubUrl: 'http://127.0.0.1:7000', metrics: { meter } });
  });

  it('metrics takes a boolean or { meter? } only', () => {
    expectTypeOf<ConfigClientOptions['metrics']>().toEqualTypeOf<boolean | MetricsOptions | undefined>();
    expectTypeOf<MetricsOptions>().toEqualTypeOf<{ meter?: MetricsMeter }>();
    // @ts-expect-error not a meter
    new ConfigClient({ hubUrl: 'http://127.0.0.1:7000', metrics: { meter: {} } });
    // @ts-expect-error unknown key
    new ConfigClient({ hubUrl: 'http://127.0.0.1:7000', metrics: { metre: true } });
  });
});
