/**
 * Argument parsing with `node:util` `parseArgs`, strict: an unknown flag, a missing value or a stray
 * argument is a UsageError (exit 2). Global flags may come before or after the command.
 */
import { parseArgs } from 'node:util';
import { isValidServiceName } from '../hub/wire.js';
import { DEFAULT_TIMEOUT_MS } from './http.js';
import { UsageError } from './errors.js';
import { type CommandName, COMMANDS, GLOBAL_OPTIONS, GLOBAL_VALUE_FLAGS, isCommandName, type OptionsConfig } from './spec.js';

export const DEFAULT_HUB_URL = 'http://127.0.0.1:7000';

export interface Globals {
  hubUrl: string;
  apiKey: string | undefined;
  json: boolean;
  timeoutMs: number;
}

export type FlagValues = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

export type Invocation =
  | { kind: 'help'; command: CommandName | undefined }
  | { kind: 'version' }
  | { kind: 'run'; command: Exclude<CommandName, 'help'>; globals: Globals; args: readonly string[]; flags: FlagValues };

/** The first token that is neither a flag nor the value of a global flag. */
function findCommand(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') return argv[i + 1];
    if (GLOBAL_VALUE_FLAGS.has(token)) i++;
    else if (!token.startsWith('-') || token === '-') return token;
  }
  return undefined;
}

function parse(argv: readonly string[], options: OptionsConfig, command: string | undefined) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (error) {
    const message = error instanceof Error ? error.message.replace(/\. To specify a positional argument.*$/s, '') : String(error);
    throw new UsageError(message, command);
  }
}

export function parseInvocation(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Invocation {
  const name = findCommand(argv);
  if (name === undefined) {
    const { values } = parse(argv, { ...GLOBAL_OPTIONS, version: { type: 'boolean', short: 'v' } }, undefined);
    if (values.version === true) return { kind: 'version' };
    if (values.help === true) return { kind: 'help', command: undefined };
    throw new UsageError('no command given');
  }
  if (!isCommandName(name)) throw new UsageError(`unknown command '${name}'`);
  const spec = COMMANDS[name];
  const { values, positionals } = parse(argv, { ...GLOBAL_OPTIONS, ...spec.options }, name);
  const args = positionals.slice(1);
  if (name === 'help') {
    const topic = args[0];
    if (args.length > 1) throw new UsageError('help takes at most one command', 'help');
    if (topic !== undefined && !isCommandName(topic)) throw new UsageError(`unknown command '${topic}'`, 'help');
    return { kind: 'help', command: topic };
  }
  if (values.help === true) return { kind: 'help', command: name };
  if (args.length < spec.minArgs) throw new UsageError(`missing ${args.length === 0 ? '<service>' : 'arguments'}: central-hub ${name} ${spec.synopsis}`, name);
  if (args.length > spec.maxArgs) throw new UsageError(`unexpected argument '${args[spec.maxArgs]}'`, name);
  const service = args[0]!;
  if (!isValidServiceName(service)) throw new UsageError(`'${service}' is not a service name (^[a-z0-9-]+$, at most 100 characters)`, name);
  return { kind: 'run', command: name, globals: globalsOf(values, env, name), args, flags: values };
}

function globalsOf(values: FlagValues, env: Readonly<Record<string, string | undefined>>, command: CommandName): Globals {
  const hubUrl = stringFlag(values, 'hub') ?? nonEmpty(env.CENTRAL_HUB_URL) ?? DEFAULT_HUB_URL;
  try {
    const url = new URL(hubUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new UsageError(`hub URL '${hubUrl}' is not an http(s) URL`, command);
  }
  return {
    hubUrl,
    apiKey: stringFlag(values, 'api-key') ?? nonEmpty(env.CENTRAL_HUB_API_KEY),
    json: values.json === true,
    timeoutMs: intFlag(values, 'timeout-ms', { min: 1, max: 600_000, command }) ?? DEFAULT_TIMEOUT_MS,
  };
}

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

export function stringFlag(values: FlagValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A decimal integer flag within [min, max]; absent → undefined; anything else → UsageError. */
export function intFlag(values: FlagValues, name: string, bounds: { min: number; max: number; command?: string }): number | undefined {
  const raw = stringFlag(values, name);
  if (raw === undefined) return undefined;
  return parseIntArg(raw, `--${name}`, bounds);
}

export function parseIntArg(raw: string, label: string, bounds: { min: number; max: number; command?: string }): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < bounds.min || n > bounds.max) {
    throw new UsageError(`${label} must be an integer from ${bounds.min} to ${bounds.max}, not '${raw}'`, bounds.command);
  }
  return n;
}
