/** `diff <service> <revA> <revB>` and `diff <service> <rev> --file F`: what changed, as a unified diff of the JSON. */
import { parseIntArg } from '../args.js';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { renderDiff } from '../format.js';
import { changedPaths, unifiedJsonDiff } from '../json-diff.js';
import { configsAt } from '../revisions.js';

const revisionArg = (raw: string): number => parseIntArg(raw, 'a revision', { min: 0, max: Number.MAX_SAFE_INTEGER, command: 'diff' });

export async function runDiff(ctx: CommandContext): Promise<void> {
  const [, rawA, rawB] = ctx.args;
  const file = ctx.flags.file;
  if (rawB !== undefined && file !== undefined) throw new UsageError('diff takes two revisions or one revision and --file, not both', 'diff');
  if (rawB === undefined && file === undefined) throw new UsageError('diff needs a second revision or --file F', 'diff');
  const a = revisionArg(rawA!);
  const b = rawB === undefined ? undefined : revisionArg(rawB);
  // Read the file before asking the hub: a bad file is a usage error whatever the hub says.
  const fileConfig = b === undefined ? await ctx.readObject('config to compare') : undefined;
  const configs = await configsAt(ctx.hub, ctx.service, b === undefined ? [a] : [a, b]);
  const from = configs.get(a)!.config;
  const to = b === undefined ? fileConfig! : configs.get(b)!.config;
  const toLabel = b === undefined ? (typeof file === 'string' && file !== '-' ? file : 'stdin') : `${ctx.service}@${b}`;
  if (ctx.globals.json) {
    const changes = changedPaths(from, to);
    return ctx.json({
      service_name: ctx.service,
      from: { revision: a },
      to: b === undefined ? { file: toLabel } : { revision: b },
      equal: changes.length === 0,
      changes,
    });
  }
  const lines = renderDiff(unifiedJsonDiff(from, to), `${ctx.service}@${a}`, toLabel, ctx.palette);
  if (lines.length === 0) ctx.err(`# no differences between ${ctx.service}@${a} and ${toLabel}`);
  else ctx.out(...lines);
}
