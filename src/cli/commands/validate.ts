/** `validate`: the hub's dry run (POST /api/v1/config/{service}/validate, docs/fleet.md §4). Valid → 0, refused → 1. */
import type { CommandContext } from '../context.js';
import { CliError, HubRefusedError } from '../errors.js';
import { validateConfig } from '../hub-api.js';
import { consumerLines, describeRefusal } from '../refusal.js';

export async function runValidate(ctx: CommandContext): Promise<void> {
  const config = await ctx.readObject('config to check');
  let outcome: Awaited<ReturnType<typeof validateConfig>>;
  try {
    outcome = await validateConfig(ctx.hub, ctx.service, config);
  } catch (error) {
    // An older hub has no such route: say so instead of "no route POST …".
    if (error instanceof HubRefusedError && (error.status === 404 || error.status === 405) && /no route/i.test(String(error.body?.detail))) {
      throw new HubRefusedError(error.status, `hub ${ctx.hub.origin} has no validate route (${String(error.body?.detail)})`, error.body);
    }
    throw error;
  }
  if (outcome.kind === 'refused') {
    const { refusal } = outcome;
    if (ctx.globals.json) ctx.json({ valid: false, ...(refusal.body ?? { detail: refusal.message }) });
    // The document is printed already; the error only carries the text for stderr.
    throw new CliError(1, `invalid: ${refusal.message.replace(/^hub refused \(HTTP 422\): /, '')}`, { details: refusal.details });
  }
  const { answer } = outcome;
  if (ctx.globals.json) ctx.json(answer);
  if (!answer.valid) throw new CliError(1, 'invalid', { details: describeRefusal(answer) });
  if (ctx.globals.json) return;
  const consumers = answer.consumers ?? [];
  ctx.out(`valid: ${ctx.service} accepts it (${consumers.length === 0 ? 'no running consumer reported a schema' : `checked against ${consumers.length} consumer schema(s)`})`);
  if (consumers.length > 0) ctx.out(...consumerLines(consumers));
  const notes = describeRefusal({ unchecked: answer.unchecked, unknown_schemas: answer.unknown_schemas });
  if (notes.length > 0) ctx.out(...notes);
}
