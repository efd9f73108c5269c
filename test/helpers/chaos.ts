/**
 * What the chaos files (test/chaos/*.test.ts) share: unique service names per row, the shared PostgreSQL
 * their hubs keep private schemas and databases on, a request-counting undici dispatcher, a config write
 * through an in-process hub, and the msw hub document.
 */
import { rm } from 'node:fs/promises';
import pg from 'pg';
import type { Agent, Dispatcher } from 'undici';
import { expect } from 'vitest';
import type { Hub } from '../../examples/hub/server.js';
import { cleanupLab } from './lab/registry.js';

/** The shared PostgreSQL (PGlite boots too slowly on a loaded 2-core box for the chaos hubs). */
export const CHAOS_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** Runs one statement on CHAOS_PG_URL over a connection of its own. */
export async function adminSql(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: CHAOS_PG_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Drops a hub's private schema on CHAOS_PG_URL. */
export const dropChaosSchema = (schema: string): Promise<void> => adminSql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);

/** The afterAll of a file with an in-process hub on a private schema: the hub, the lab, the schema, the snapshots. */
export async function closeChaosHub(hub: Hub | undefined, schema: string, snapshotRoot: string): Promise<void> {
  await hub?.close();
  await cleanupLab();
  await dropChaosSchema(schema).catch(() => undefined);
  await rm(snapshotRoot, { recursive: true, force: true });
}

let seq = 0;

/** A service name unique to this run, row and call (tests that share a NATS never see each other's notices). */
export function uniqueService(row: string): string {
  seq++;
  return `chaos-${row.toLowerCase()}-${process.pid}-${seq}-${Date.now().toString(36)}`;
}

/** How many names `uniqueService` has handed out in this file. */
export const serviceSeq = (): number => seq;

/** Counts requests and the most that were ever in flight at once (and, with `starts`, when each began). */
export interface FetchStats {
  total: number;
  inFlight: number;
  maxInFlight: number;
  starts?: number[];
}

const ENDS = new Set(['onComplete', 'onError', 'onResponseEnd', 'onResponseError']);

/**
 * `agent`, counting each config fetch (GET) into `stats` until its handler's first completion or error
 * callback. The fleet's report requests and schema uploads (POST/PUT, docs/fleet.md) pass uncounted: the
 * single-flight these counts prove is the config fetch's.
 */
export function countingDispatcher(agent: Agent, stats: FetchStats): Dispatcher {
  return agent.compose((dispatch) => (opts, handler) => {
    if (opts.method !== 'GET') return dispatch(opts, handler);
    stats.total++;
    stats.starts?.push(Date.now());
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    let done = false;
    const wrapped = new Proxy(handler, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        if (typeof prop === 'string' && ENDS.has(prop)) {
          return (...args: unknown[]) => {
            if (!done) {
              done = true;
              stats.inFlight--;
            }
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return value.bind(target);
      },
    });
    return dispatch(opts, wrapped);
  });
}

/** POSTs `config` for `service` through the in-process hub; expects a 2xx and returns the new revision. */
export async function writeConfig(hub: Hub, service: string, config: Record<string, unknown>, headers?: Record<string, string>): Promise<number> {
  const res = await hub.app.inject({
    method: 'POST',
    url: `/api/v1/config/${service}`,
    payload: config,
    ...(headers === undefined ? {} : { headers }),
  });
  expect(res.statusCode, res.body).toBeLessThan(300);
  return res.json().revision as number;
}

/** A hub document as the msw-backed hub serves it. */
export function hubDoc(service: string, config: unknown, revision: number) {
  return { service_name: service, config, version: `1.0.${revision}`, updated_at: 1_760_000_000_000 + revision, revision };
}

/** The middle value (the upper one of an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
