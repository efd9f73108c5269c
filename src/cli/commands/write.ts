/**
 * `set`, `patch`, `rollback`: every write names the revision it is based on (`If-Match: "<revision>"`),
 * read first or given with `--if-match`, so that two operators never overwrite each other; a 412 is
 * explained by what changed meanwhile (conflict.ts).
 */
import type { ConfigObject, WriteResponse } from '../../hub/wire.js';
import { intFlag, stringFlag } from '../args.js';
import type { CommandContext } from '../context.js';
import { CliError, HubRefusedError, UsageError } from '../errors.js';
import { cell, printable, renderDiff } from '../format.js';
import { getConfig, getHistory, patchConfig, putConfig, rollbackConfig, type WriteQuery } from '../hub-api.js';
import { unifiedJsonDiff } from '../json-diff.js';
import { issueLines } from '../refusal.js';
import { conflictError } from './conflict.js';
import { notFoundError } from './read.js';

/** What the edit is based on: the revision, and its config when it was read. */
export interface Base {
  revision: number;
  config: ConfigObject | undefined;
}

function writeQuery(ctx: CommandContext, withVersion: boolean): WriteQuery {
  const changeReason = stringFlag(ctx.flags, 'change-reason');
  const force = ctx.flags.force === true;
  if (force && (changeReason === undefined || changeReason.trim() === '')) {
    throw new UsageError('--force needs --change-reason: the override is recorded in the history', ctx.command);
  }
  return { changeReason, force, version: withVersion ? stringFlag(ctx.flags, 'version-tag') : undefined };
}

const givenRevision = (ctx: CommandContext): number | undefined =>
  intFlag(ctx.flags, 'if-match', { min: 0, max: Number.MAX_SAFE_INTEGER, command: ctx.command });

/** `--if-match N`, else the current revision (`absent` says what a 404 means for this command). */
async function baseOf(ctx: CommandContext, absent: () => Promise<Base>): Promise<Base> {
  const given = givenRevision(ctx);
  if (given !== undefined) return { revision: given, config: undefined };
  const current = await getConfig(ctx.hub, ctx.service);
  if (current === null) return absent();
  if (current.doc.revision === undefined) {
    throw new CliError(1, `hub ${ctx.hub.origin} serves no revision for '${ctx.service}', so the write cannot name its base: pass --if-match N`);
  }
  return { revision: current.doc.revision, config: current.doc.config };
}

/** Runs the write; a 412 becomes the conflict report. */
async function commit(ctx: CommandContext, base: Base, write: () => Promise<WriteResponse>, mine: ConfigObject | undefined): Promise<void> {
  let answer: WriteResponse;
  try {
    answer = await write();
  } catch (error) {
    if (error instanceof HubRefusedError && error.status === 412) throw await conflictError(ctx, base, error, mine);
    if (error instanceof HubRefusedError && error.status === 422 && ctx.flags.force !== true) {
      throw new HubRefusedError(error.status, error.message, error.body, [
        ...error.details,
        ...(Array.isArray(error.body?.consumers) ? ['(nothing was written; --force --change-reason R commits anyway)'] : []),
      ]);
    }
    throw error;
  }
  report(ctx, base, answer);
}

function report(ctx: CommandContext, base: Base, answer: WriteResponse): void {
  if (ctx.globals.json) {
    ctx.json({ ...answer, previous_revision: base.revision });
    return;
  }
  const { palette } = ctx;
  const revisions = answer.status === 'created' ? `revision ${cell(answer.revision)}` : `revision ${base.revision} → ${cell(answer.revision)}`;
  ctx.out(printable(`${answer.status} ${answer.service_name}: ${revisions}, version ${cell(answer.version)}, broadcast ${answer.broadcast}`));
  if (answer.forced === true) {
    ctx.err(palette.red('forced: committed although running consumers would reject it'), ...issueLines(answer.issues));
  }
  if (base.config !== undefined) {
    ctx.out(...renderDiff(unifiedJsonDiff(base.config, answer.config), `${ctx.service}@${base.revision}`, `${ctx.service}@${cell(answer.revision)}`, palette));
  }
}

export async function runSet(ctx: CommandContext): Promise<void> {
  const query = writeQuery(ctx, true);
  const config = await ctx.readObject('whole config');
  // No config yet: If-Match "0" means "create it; fail if someone else did meanwhile".
  const base = await baseOf(ctx, async () => ({ revision: 0, config: undefined }));
  await commit(ctx, base, () => putConfig(ctx.hub, ctx.service, config, base.revision, query), config);
}

export async function runPatch(ctx: CommandContext): Promise<void> {
  const query = writeQuery(ctx, true);
  const patch = await ctx.readObject('merge patch');
  const base = await baseOf(ctx, async () => {
    throw notFoundError(ctx.service);
  });
  await commit(ctx, base, () => patchConfig(ctx.hub, ctx.service, patch, base.revision, query), undefined);
}

export async function runRollback(ctx: CommandContext): Promise<void> {
  const revision = intFlag(ctx.flags, 'revision', { min: 1, max: Number.MAX_SAFE_INTEGER, command: 'rollback' });
  const version = stringFlag(ctx.flags, 'version');
  if ((revision === undefined) === (version === undefined)) throw new UsageError('rollback needs exactly one of --revision N and --version V', 'rollback');
  const query = writeQuery(ctx, false);
  // A deleted config (GET 404) can be restored: the history's newest entry is the delete, with its revision.
  const base = await baseOf(ctx, async () => {
    const newest = (await getHistory(ctx.hub, ctx.service, 1)).history[0];
    if (newest?.revision === undefined) throw notFoundError(ctx.service);
    return { revision: newest.revision, config: undefined };
  });
  const target = revision !== undefined ? { revision } : { version: version! };
  await commit(ctx, base, () => rollbackConfig(ctx.hub, ctx.service, target, base.revision, query), undefined);
}
