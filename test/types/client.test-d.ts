import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type ChangeEvent, type ConfigChange, ConfigClient, type ConfigStatus, defineService } from '../../src/index.js';

const client = new ConfigClient({
  hubUrl: 'http://127.0.0.1:7000',
  services: {
    'polygon-historical-downloader': {
      schema: z.object({
        operational: z.object({ batch_size: z.number().int().positive(), gap_check_interval_hours: z.number() }),
        database: z.object({ host: z.string(), password: z.string() }),
      }),
      defaults: { operational: { batch_size: 100, gap_check_interval_hours: 1 } },
      env: { 'database.host': 'DB_HOST', 'database.password': 'DB_PASSWORD' },
    },
    'no-schema': {},
  },
});

describe('ConfigClient types', () => {
  it('infers the config type of a service from its schema', async () => {
    const cfg = await client.get('polygon-historical-downloader');
    expectTypeOf(cfg.operational.batch_size).toEqualTypeOf<number>();
    expectTypeOf(cfg.database.host).toEqualTypeOf<string>();
    expectTypeOf(cfg).toEqualTypeOf<{
      operational: { batch_size: number; gap_check_interval_hours: number };
      database: { host: string; password: string };
    }>();
  });

  it('returns an unknown-valued object for a service without a schema or not configured', async () => {
    expectTypeOf(await client.get('no-schema')).toEqualTypeOf<Record<string, unknown>>();
    expectTypeOf(await client.get('something-else')).toEqualTypeOf<Record<string, unknown>>();
  });

  it('types onChange listeners and status', () => {
    const stop = client.onChange('polygon-historical-downloader', (next, prev, change) => {
      expectTypeOf(next.operational.batch_size).toEqualTypeOf<number>();
      expectTypeOf(prev.database.password).toEqualTypeOf<string>();
      expectTypeOf(change).toEqualTypeOf<ConfigChange>();
    });
    expectTypeOf(stop).toEqualTypeOf<() => void>();
    const stream = client.changes('polygon-historical-downloader');
    expectTypeOf(stream).toEqualTypeOf<AsyncIterableIterator<ChangeEvent<{
      operational: { batch_size: number; gap_check_interval_hours: number };
      database: { host: string; password: string };
    }>>>();
    expectTypeOf(client.status('polygon-historical-downloader')).toEqualTypeOf<ConfigStatus>();
  });

  it('defineService checks defaults against the schema', () => {
    const schema = z.object({ a: z.object({ b: z.number() }) });
    defineService({ schema, defaults: { a: { b: 1 } } });
    // @ts-expect-error defaults must follow the schema's input type
    defineService({ schema, defaults: { a: { b: 'x' } } });
  });

  it('keeps get() typed for services built with defineService', async () => {
    const typed = new ConfigClient({
      hubUrl: 'http://127.0.0.1:7000',
      services: { 'svc-a': defineService({ schema: z.object({ a: z.object({ b: z.number() }) }), defaults: { a: { b: 1 } } }) },
    });
    expectTypeOf((await typed.get('svc-a')).a.b).toEqualTypeOf<number>();
  });
});
