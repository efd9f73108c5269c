/** The `--help` texts, built from the command table (spec.ts). */
import { type CommandName, COMMAND_NAMES, COMMANDS, GLOBAL_FLAGS } from './spec.js';

export const EXIT_CODES_TEXT: readonly string[] = [
  'Exit codes:',
  '  0  ok',
  '  1  refused: the hub answered 4xx (not found, unauthorized, invalid, 412 conflict, 422 rejected)',
  '  2  usage: unknown flag or command, missing argument, unreadable input file',
  '  3  unreachable: network error, timeout, 5xx, or an answer that breaks the wire contract',
];

const ENV_TEXT: readonly string[] = [
  'Environment:',
  '  CENTRAL_HUB_URL       the hub (default http://127.0.0.1:7000)',
  '  CENTRAL_HUB_API_KEY   the API key',
  '  NO_COLOR              no ANSI colours (colours are used on a terminal only)',
];

export function generalHelp(): string {
  const width = Math.max(...COMMAND_NAMES.map((n) => n.length));
  return [
    'central-hub: read, change and watch the configs of a Central Hub',
    '',
    'Usage: central-hub <command> [arguments] [flags]',
    '',
    'Commands:',
    ...COMMAND_NAMES.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n].summary}`),
    '',
    'Global flags:',
    ...GLOBAL_FLAGS.map((f) => `  ${f}`),
    '  -v, --version       the version of central-hub',
    '',
    'Writes (set, patch, rollback) always send If-Match with the revision they are based on: when someone',
    'else changed the config meanwhile, the hub answers 412 and nothing is written (exit 1, with the diff).',
    '',
    ...ENV_TEXT,
    '',
    ...EXIT_CODES_TEXT,
    '',
    "Run 'central-hub help <command>' for the flags of a command.",
    '',
  ].join('\n');
}

export function commandHelp(name: CommandName): string {
  const spec = COMMANDS[name];
  return [
    `Usage: central-hub ${name} ${spec.synopsis}`,
    '',
    `  ${spec.summary}`,
    '',
    ...(spec.flags.length > 0 ? ['Flags:', ...spec.flags.map((f) => `  ${f}`), ''] : []),
    'Global flags:',
    ...GLOBAL_FLAGS.map((f) => `  ${f}`),
    '',
    'Example:',
    `  ${spec.example}`,
    '',
    ...EXIT_CODES_TEXT,
    '',
  ].join('\n');
}
