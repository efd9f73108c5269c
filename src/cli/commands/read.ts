/** `get`, `history`, `instances`: read-only views of one service. */
import { intFlag } from '../args.js';
import type { CommandContext } from '../context.js';
import { HubRefusedError } from '../errors.js';
import { cell, formatTime, printable, table } from '../format.js';
import { getConfig, getHistory, getInstances } from '../hub-api.js';
import { canonicalPretty } from '../json-diff.js';

export const notFoundError = (service: string): HubRefusedError =>
  new HubRefusedError(404, `hub refused (HTTP 404): no config for service '${service}'`, { detail: `no config for service '${service}'` });

/** The config on stdout (pretty, sorted keys: `get > file.json` round-trips through `set --file`); what it is on stderr. */
export async function runGet(ctx: CommandContext): Promise<void> {
  const { doc } = (await getConfig(ctx.hub, ctx.service, 'refuse'))!;
  if (ctx.globals.json) return ctx.json(doc);
  ctx.out(canonicalPretty(doc.config));
  ctx.err(
    ctx.palette.dim(
      printable(`# ${doc.service_name} revision ${cell(doc.revision)}, version ${cell(doc.version)}, updated ${formatTime(doc.updated_at)}`),
    ),
  );
}

export async function runHistory(ctx: CommandContext): Promise<void> {
  const limit = intFlag(ctx.flags, 'limit', { min: 1, max: 100, command: 'history' }) ?? 10;
  const history = await getHistory(ctx.hub, ctx.service, limit);
  if (ctx.globals.json) return ctx.json(history);
  const rows = history.history.map((e) => [
    cell(e.revision),
    e.action,
    cell(e.version),
    cell(e.changed_by),
    formatTime(e.changed_at),
    cell(e.change_reason),
  ]);
  ctx.out(...table(['REVISION', 'ACTION', 'VERSION', 'CHANGED BY', 'CHANGED AT', 'REASON'], rows, ctx.palette));
  ctx.err(ctx.palette.dim(`# ${history.history.length} of ${history.total} entries`));
}

export async function runInstances(ctx: CommandContext): Promise<void> {
  const view = await getInstances(ctx.hub, ctx.service);
  if (ctx.globals.json) return ctx.json(view);
  const { summary } = view;
  ctx.out(
    printable(
      `${view.service_name} at revision ${cell(view.revision)}: ${summary.total} instance(s), ${summary.on_latest} on latest, ${summary.behind} behind, ${summary.rejected} rejected`,
    ),
  );
  if (view.instances.length === 0) return;
  const rows = view.instances.map((i) => [
    i.instance_id,
    cell(i.host),
    cell(i.pid),
    cell(i.client_version),
    cell(i.revision),
    cell(i.source),
    i.stale ? 'yes' : 'no',
    formatTime(i.last_seen),
    cell(i.last_error),
    i.schema_hash === null ? '-' : i.schema_hash.slice(0, 12),
  ]);
  ctx.out('', ...table(['INSTANCE', 'HOST', 'PID', 'CLIENT', 'REVISION', 'SOURCE', 'STALE', 'LAST SEEN', 'ERROR', 'SCHEMA'], rows, ctx.palette));
}
