/**
 * `hub_instances{service,state}`: the live instances per service and state (docs/fleet.md §5), bounded
 * to `maxServices` services (the ones with the most instances; the rest summed under `service="_other"`,
 * a name no service can have), so a fleet of a thousand services cannot explode the scrape.
 */
import type { CountGroup } from '../fleet/instance-sql.js';
import { type InstanceState, instanceState } from '../fleet/rules.js';
import type { SqlExecutor } from '../store/sql-driver.js';

/** Services listed by name at most; the others are summed under `OTHER_SERVICES`. @default 50 */
export const DEFAULT_METRICS_MAX_SERVICES = 50;
/** Service names match `^[a-z0-9-]+$`: this one cannot collide. */
export const OTHER_SERVICES = '_other';
export const INSTANCE_STATES: readonly InstanceState[] = ['on_latest', 'behind', 'rejected'];

export interface InstanceSeries {
  service: string;
  state: InstanceState;
  count: number;
}

/** The current revision of every active service (no configs: the gauge needs only the revision). */
export async function currentRevisions(db: SqlExecutor): Promise<Map<string, number>> {
  const rows = await db.query<{ service_name: string; revision: number | string }>(
    'SELECT service_name, revision FROM service_configs WHERE active IS NOT FALSE',
  );
  return new Map(rows.map((r) => [r.service_name, Number(r.revision)]));
}

/**
 * Groups → one series per (service, state), every state present (0 included) for each service listed,
 * services by instances (most first, then by name), at most `maxServices` of them plus `_other`.
 */
export function instanceSeries(groups: readonly CountGroup[], revisions: ReadonlyMap<string, number>, maxServices: number): InstanceSeries[] {
  const byService = new Map<string, Record<InstanceState, number>>();
  for (const g of groups) {
    let counts = byService.get(g.service_name);
    if (counts === undefined) {
      counts = { on_latest: 0, behind: 0, rejected: 0 };
      byService.set(g.service_name, counts);
    }
    counts[instanceState(g, revisions.get(g.service_name) ?? null)] += g.count;
  }
  const total = (c: Record<InstanceState, number>) => c.on_latest + c.behind + c.rejected;
  const ranked = [...byService].sort(([a, ca], [b, cb]) => total(cb) - total(ca) || (a < b ? -1 : a > b ? 1 : 0));
  const series: InstanceSeries[] = [];
  const other: Record<InstanceState, number> = { on_latest: 0, behind: 0, rejected: 0 };
  ranked.forEach(([service, counts], i) => {
    if (i < maxServices) {
      for (const state of INSTANCE_STATES) series.push({ service, state, count: counts[state] });
    } else {
      for (const state of INSTANCE_STATES) other[state] += counts[state];
    }
  });
  if (ranked.length > maxServices) {
    for (const state of INSTANCE_STATES) series.push({ service: OTHER_SERVICES, state, count: other[state] });
  }
  return series;
}
