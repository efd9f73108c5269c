/**
 * A 412 explained: the hub holds another revision than the one the edit was based on. Nothing was
 * written; the operator sees the current revision and what changed between their base and it.
 */
import type { ConfigObject } from '../../hub/wire.js';
import type { CommandContext } from '../context.js';
import { CliError, type HubRefusedError } from '../errors.js';
import { cell, formatTime, printable, renderDiff } from '../format.js';
import { getConfig } from '../hub-api.js';
import { changedPaths, unifiedJsonDiff } from '../json-diff.js';
import { tryConfigAt } from '../revisions.js';
import type { Base } from './write.js';

export async function conflictError(ctx: CommandContext, base: Base, refusal: HubRefusedError, mine: ConfigObject | undefined): Promise<CliError> {
  const { service, palette } = ctx;
  const current = await getConfig(ctx.hub, service).catch(() => undefined);
  const reported = typeof refusal.body?.revision === 'number' ? refusal.body.revision : undefined;
  const currentRevision = current?.doc.revision ?? reported;
  // Revision 0 is "no config yet" (a create): everything the hub holds now came meanwhile.
  const baseConfig = base.config ?? (base.revision === 0 ? {} : await tryConfigAt(ctx.hub, service, base.revision));
  const details: string[] = [];
  let changes: ReturnType<typeof changedPaths> | undefined;
  if (current === null) {
    details.push(
      currentRevision === undefined
        ? `'${service}' has no config now (deleted meanwhile)`
        : `'${service}' was deleted (revision ${currentRevision}); to re-create it on purpose: --if-match ${currentRevision}`,
    );
  } else if (current !== undefined) {
    const { doc } = current;
    details.push(
      printable(`the hub is at revision ${cell(doc.revision)} now (version ${cell(doc.version)}, updated ${formatTime(doc.updated_at)})`),
    );
    if (baseConfig !== undefined) {
      // A base revision that is a delete held no config: everything the hub holds now came meanwhile.
      if (baseConfig === null) details.push(`(revision ${base.revision} was a delete: the diff starts from an empty config)`);
      const from = baseConfig ?? {};
      changes = changedPaths(from, doc.config);
      const diff = renderDiff(unifiedJsonDiff(from, doc.config), `${service}@${base.revision} (your base)`, `${service}@${cell(doc.revision)} (current)`, palette);
      details.push(`what changed meanwhile:`, ...(diff.length > 0 ? diff : ['  (the config is the same; only its revision moved)']));
    } else {
      details.push(`(revision ${base.revision} is not in the recent history: no diff)`);
    }
    if (mine !== undefined) {
      const lost = changedPaths(mine, doc.config).map((c) => c.path || '(root)');
      if (lost.length > 0) details.push(printable(`your config differs from the current one at: ${lost.join(', ')}`));
    }
    details.push(`re-read and retry, or after checking the diff: --if-match ${cell(doc.revision)}`);
  }
  return new CliError(1, `conflict: '${service}' changed since revision ${base.revision}, the one this edit was based on; nothing was written`, {
    details,
    json: {
      error: {
        status: 412,
        detail: refusal.body?.detail ?? refusal.message,
        expected_revision: base.revision,
        current_revision: currentRevision ?? null,
        current: current?.doc ?? null,
        changes: changes ?? null,
      },
    },
  });
}
