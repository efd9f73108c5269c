/** The commands and flags of `central-hub`, in one table: the parser and the help text both read it. */
import type { ParseArgsConfig } from 'node:util';

export type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

export const COMMAND_NAMES = ['get', 'set', 'patch', 'diff', 'history', 'rollback', 'validate', 'instances', 'watch', 'help'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export interface CommandSpec {
  name: CommandName;
  /** Positional arguments as shown in the usage line. */
  synopsis: string;
  summary: string;
  minArgs: number;
  maxArgs: number;
  options: OptionsConfig;
  /** `--flag VALUE  meaning` lines of the command's own flags. */
  flags: readonly string[];
  example: string;
}

export const GLOBAL_OPTIONS: OptionsConfig = {
  hub: { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean' },
  'timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};
/** Globals that take a value: the command-name scan skips their value. */
export const GLOBAL_VALUE_FLAGS: ReadonlySet<string> = new Set(['--hub', '--api-key', '--timeout-ms']);

export const GLOBAL_FLAGS: readonly string[] = [
  '--hub URL           the hub (env CENTRAL_HUB_URL; default http://127.0.0.1:7000)',
  '--api-key KEY       sent as X-API-Key (env CENTRAL_HUB_API_KEY)',
  '--json              machine output: one JSON document per command (watch: one per line)',
  '--timeout-ms N      deadline of each hub request (default 10000)',
  '-h, --help          this help, or the help of a command',
];

const file = { type: 'string', short: 'f' } as const;
const WRITE_OPTIONS: OptionsConfig = {
  'if-match': { type: 'string' },
  'change-reason': { type: 'string' },
  force: { type: 'boolean' },
};
const WRITE_FLAGS = [
  '--if-match N        the revision the edit is based on (default: the current one, read first)',
  '--change-reason R   recorded in the history',
  '--force             commit even if running consumers would reject it (needs --change-reason)',
];
const INPUT_FLAG = '-f, --file F        read the JSON from F (- or no --file: stdin)';

export const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  get: {
    name: 'get', synopsis: '<service>', summary: 'print the current config', minArgs: 1, maxArgs: 1, options: {}, flags: [],
    example: 'central-hub get tick-aggregator > tick.json',
  },
  set: {
    name: 'set', synopsis: '<service> [--file F]', summary: 'replace the whole config (creates it when absent)', minArgs: 1, maxArgs: 1,
    options: { file, 'version-tag': { type: 'string' }, ...WRITE_OPTIONS },
    flags: [INPUT_FLAG, '--version-tag V     the config version to record (e.g. 1.1.0)', ...WRITE_FLAGS],
    example: 'central-hub set tick-aggregator --file tick.json --change-reason "bigger batches"',
  },
  patch: {
    name: 'patch', synopsis: '<service> [--file F]', summary: 'apply an RFC 7396 JSON merge patch (null removes a key)', minArgs: 1, maxArgs: 1,
    options: { file, 'version-tag': { type: 'string' }, ...WRITE_OPTIONS },
    flags: [INPUT_FLAG, '--version-tag V     the config version to record', ...WRITE_FLAGS],
    example: `echo '{"operational":{"batch_size":200}}' | central-hub patch tick-aggregator`,
  },
  diff: {
    name: 'diff', synopsis: '<service> <revA> <revB> | <service> <rev> --file F', summary: 'diff two revisions, or a revision and a file', minArgs: 2, maxArgs: 3,
    options: { file },
    flags: ['-f, --file F        compare <rev> with the JSON in F (- for stdin)'],
    example: 'central-hub diff tick-aggregator 3 5',
  },
  history: {
    name: 'history', synopsis: '<service> [--limit N]', summary: 'list the changes, newest first', minArgs: 1, maxArgs: 1,
    options: { limit: { type: 'string', short: 'n' } },
    flags: ['-n, --limit N       how many entries (1-100, default 10)'],
    example: 'central-hub history tick-aggregator --limit 5',
  },
  rollback: {
    name: 'rollback', synopsis: '<service> (--revision N | --version V)', summary: 'restore an earlier revision (or the newest one with a version)', minArgs: 1, maxArgs: 1,
    options: { revision: { type: 'string' }, version: { type: 'string' }, ...WRITE_OPTIONS },
    flags: ['--revision N        the revision to restore', '--version V         the newest revision with this version that differs from the current config', ...WRITE_FLAGS],
    example: 'central-hub rollback tick-aggregator --revision 3 --change-reason "batch 200 overloads the db"',
  },
  validate: {
    name: 'validate', synopsis: '<service> [--file F]', summary: 'dry run: would the hub and the running consumers accept this config?', minArgs: 1, maxArgs: 1,
    options: { file }, flags: [INPUT_FLAG],
    example: 'central-hub validate tick-aggregator --file tick.json',
  },
  instances: {
    name: 'instances', synopsis: '<service>', summary: 'the fleet view: who runs which revision', minArgs: 1, maxArgs: 1, options: {}, flags: [],
    example: 'central-hub instances tick-aggregator',
  },
  watch: {
    name: 'watch', synopsis: '<service> [--interval-ms N] [--nats URL]', summary: 'print each change as it happens, until SIGINT/SIGTERM', minArgs: 1, maxArgs: 1,
    options: { 'interval-ms': { type: 'string' }, nats: { type: 'string' } },
    flags: [
      '--interval-ms N     poll every N ms with conditional GETs (default 2000; min 100)',
      '--nats URL          instead, refetch on each NATS notice config.update.<service> (and after reconnects)',
    ],
    example: 'central-hub watch tick-aggregator --nats nats://127.0.0.1:4222',
  },
  help: {
    name: 'help', synopsis: '[command]', summary: 'the help of a command', minArgs: 0, maxArgs: 1, options: {}, flags: [],
    example: 'central-hub help rollback',
  },
};

export const isCommandName = (name: string): name is CommandName => (COMMAND_NAMES as readonly string[]).includes(name);
