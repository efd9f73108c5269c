/**
 * `central-hub`: the command-line client of a Central Hub. `runCli` is the whole program, testable in
 * process: it writes to the given sinks and resolves with the exit code (errors.ts); bin.ts calls it.
 */
import { type Invocation, parseInvocation } from './args.js';
import { runDiff } from './commands/diff.js';
import { runGet, runHistory, runInstances } from './commands/read.js';
import { runValidate } from './commands/validate.js';
import { runWatch } from './commands/watch.js';
import { runPatch, runRollback, runSet } from './commands/write.js';
import { type CliIo, CommandContext } from './context.js';
import { CliError, type ExitCode, UsageError } from './errors.js';
import { paletteFor, printable } from './format.js';
import { commandHelp, generalHelp } from './help.js';
import { HubHttp } from './http.js';
import type { CommandName } from './spec.js';
import { cliVersion } from './version.js';

export type { CliIo, InputStream, TextSink } from './context.js';
export type { ExitCode } from './errors.js';

const RUNNERS: Readonly<Record<Exclude<CommandName, 'help'>, (ctx: CommandContext) => Promise<void>>> = {
  get: runGet,
  set: runSet,
  patch: runPatch,
  diff: runDiff,
  history: runHistory,
  rollback: runRollback,
  validate: runValidate,
  instances: runInstances,
  watch: runWatch,
};

export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv, io.env);
  } catch (error) {
    return fail(io, error, false);
  }
  if (invocation.kind === 'version') {
    io.stdout.write(`${cliVersion()}\n`);
    return 0;
  }
  if (invocation.kind === 'help') {
    io.stdout.write(invocation.command === undefined ? generalHelp() : commandHelp(invocation.command));
    return 0;
  }
  const { globals } = invocation;
  const hub = new HubHttp({ hubUrl: globals.hubUrl, apiKey: globals.apiKey, timeoutMs: globals.timeoutMs, dispatcher: io.dispatcher });
  const ctx = new CommandContext({
    hub,
    globals,
    args: invocation.args,
    flags: invocation.flags,
    palette: paletteFor(io.isTTY, io.env),
    io,
    command: invocation.command,
  });
  try {
    await RUNNERS[invocation.command](ctx);
    return 0;
  } catch (error) {
    return fail(io, error, globals.json, ctx);
  } finally {
    await hub.close();
  }
}

/** Prints the failure (stderr; with `--json` also its document on stdout) and gives its exit code. */
function fail(io: CliIo, error: unknown, json: boolean, ctx?: CommandContext): ExitCode {
  const palette = paletteFor(io.isTTY, io.env);
  if (!(error instanceof CliError)) {
    // A bug of ours, not the hub's nor the user's: say so plainly, with the stack.
    io.stderr.write(`central-hub: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
  if (json && error.json !== undefined) ctx?.json(error.json);
  io.stderr.write(`${palette.red(`central-hub: ${printable(error.message)}`)}\n`);
  for (const line of error.details) io.stderr.write(`${line}\n`);
  if (error instanceof UsageError) {
    io.stderr.write(error.command === undefined ? "Run 'central-hub --help' for usage.\n" : `Run 'central-hub help ${error.command}' for usage.\n`);
  }
  return error.exitCode;
}
