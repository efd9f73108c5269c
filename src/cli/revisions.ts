/** Configs of past revisions, from the history (each entry carries its `revision`). */
import type { ConfigObject } from '../hub/wire.js';
import { CliError } from './errors.js';
import { getHistory } from './hub-api.js';
import type { HubHttp } from './http.js';

/** How far back revisions are looked up: the hub's history limit. */
export const HISTORY_WINDOW = 100;

export interface RevisionConfig {
  revision: number;
  config: ConfigObject | null;
  version: string | null;
}

/** The configs of `revisions` (exit 1 naming the first one that is not among the last 100 entries). */
export async function configsAt(hub: HubHttp, service: string, revisions: readonly number[]): Promise<Map<number, RevisionConfig>> {
  const { history } = await getHistory(hub, service, HISTORY_WINDOW);
  const found = new Map<number, RevisionConfig>();
  for (const entry of history) {
    if (entry.revision === undefined || found.has(entry.revision)) continue;
    found.set(entry.revision, { revision: entry.revision, config: entry.config ?? null, version: entry.version ?? null });
  }
  const missing = revisions.find((r) => !found.has(r));
  if (missing !== undefined) {
    throw new CliError(1, `revision ${missing} of '${service}' is not among its last ${HISTORY_WINDOW} history entries`, {
      json: { error: { status: 404, detail: `revision ${missing} not found in history`, revision: missing } },
    });
  }
  return found;
}

/** The config of one revision, or undefined when the history does not have it (no error: used to explain). */
export async function tryConfigAt(hub: HubHttp, service: string, revision: number): Promise<ConfigObject | null | undefined> {
  try {
    return (await configsAt(hub, service, [revision])).get(revision)?.config;
  } catch {
    return undefined;
  }
}
