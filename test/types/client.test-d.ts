import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type ChangeEvent, type ConfigChange, ConfigClient, type ConfigStatus, defineService } from '../../src/index.js';
import type { DeepReadonly } from '../../src/types.js';

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

/** The schema's output, before the client makes it readonly. */
type Served = {
  operational: { batch_size: number; gap_check_interval_hours: number };
  database: { host: string; password: string };
};

describe('ConfigClient types', () => {
  it('infers the config type of a service from its schema', async () => {
    const cfg = await client.get('polygon-historical-downloader');
    expectTypeOf(cfg.operational.batch_size).toEqualTypeOf<number>();
    expectTypeOf(cfg.database.host).toEqualTypeOf<string>();
    expectTypeOf(cfg).toEqualTypeOf<{
      readonly operational: { readonly batch_size: number; readonly gap_check_interval_hours: number };
      readonly database: { readonly host: string; readonly password: string };
    }>();
  });

  it('types the served config deeply readonly: assigning to it is a type error (it is deeply frozen)', async () => {
    const cfg = await client.get('polygon-historical-downloader');
    expectTypeOf(cfg).toEqualTypeOf<DeepReadonly<Served>>();
    // @ts-expect-error the served config is deeply readonly
    cfg.operational = { batch_size: 1, gap_check_interval_hours: 1 };
    // @ts-expect-error nested objects too
    cfg.operational.batch_size = 1;
    // @ts-expect-error and strings inside them
    cfg.database.password = 'x';
  });

  it('DeepReadonly makes arrays, tuples and nested objects readonly; keeps Date, functions and primitives', async () => {
    const schema = z.object({
      hosts: z.array(z.object({ name: z.string(), port: z.number() })),
      pair: z.tuple([z.string(), z.number()]),
      since: z.coerce.date(),
      tags: z.record(z.string(), z.array(z.string())),
      label: z.string().optional(),
      mode: z.enum(['a', 'b']),
      flag: z.boolean().nullable(),
    });
    const typed = new ConfigClient({ hubUrl: 'http://127.0.0.1:7000', services: { 'svc-b': { schema } } });
    const cfg = await typed.get('svc-b');
    expectTypeOf(cfg.hosts).toEqualTypeOf<readonly { readonly name: string; readonly port: number }[]>();
    expectTypeOf(cfg.pair).toEqualTypeOf<readonly [string, number]>();
    expectTypeOf(cfg.since).toEqualTypeOf<Date>();
    expectTypeOf(cfg.since.getTime()).toEqualTypeOf<number>();
    expectTypeOf(cfg.tags).toEqualTypeOf<{ readonly [k: string]: readonly string[] }>();
    expectTypeOf(cfg.label).toEqualTypeOf<string | undefined>();
    expectTypeOf(cfg.mode).toEqualTypeOf<'a' | 'b'>();
    expectTypeOf(cfg.flag).toEqualTypeOf<boolean | null>();
    // @ts-expect-error arrays are readonly: no push
    cfg.hosts.push({ name: 'h', port: 1 });
    // @ts-expect-error array elements are readonly
    cfg.hosts[0] = { name: 'h', port: 1 };
    // @ts-expect-error objects inside arrays are readonly
    cfg.hosts[0]!.port = 2;
    // @ts-expect-error record values are readonly
    cfg.tags.x = [];
    // Reading stays as easy as before: array methods that do not mutate, spreads into a mutable copy.
    expectTypeOf(cfg.hosts.map((h) => h.port)).toEqualTypeOf<number[]>();
    expectTypeOf({ ...cfg.hosts[0]! }).toEqualTypeOf<{ name: string; port: number }>();
    type Fn = DeepReadonly<{ f: (x: number) => string; m: Map<string, { a: number }> }>;
    expectTypeOf<Fn['f']>().toEqualTypeOf<(x: number) => string>();
    expectTypeOf<Fn['m']>().toEqualTypeOf<ReadonlyMap<string, { readonly a: number }>>();
  });

  it('returns an unknown-valued object for a service without a schema or not configured', async () => {
    expectTypeOf(await client.get('no-schema')).toEqualTypeOf<Record<string, unknown>>();
    // @ts-expect-error -- with services declared, only declared names type-check
    await client.get('something-else');
    const open = new ConfigClient({ hubUrl: 'http://hub.test' });
    expectTypeOf(await open.get('anything')).toEqualTypeOf<Record<string, unknown>>();
  });

  it('types onChange listeners and status', () => {
    const stop = client.onChange('polygon-historical-downloader', (next, prev, change) => {
      expectTypeOf(next.operational.batch_size).toEqualTypeOf<number>();
      expectTypeOf(prev.database.password).toEqualTypeOf<string>();
      expectTypeOf(change).toEqualTypeOf<ConfigChange>();
    });
    expectTypeOf(stop).toEqualTypeOf<() => void>();
    const stream = client.changes('polygon-historical-downloader');
    expectTypeOf(stream).toEqualTypeOf<AsyncIterableIterator<ChangeEvent<DeepReadonly<Served>>>>();
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
