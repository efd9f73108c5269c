/**
 * The CLI's texts and failures at their edges, found by mutation testing (`npm run test:mutation`): the exact
 * `central-hub --help` and `help <command>` pages of every command (spec.ts + help.ts), global flags with a
 * value before the command (the command-name scan skips the value), the error classes (name, exit code,
 * cause only when given, details, the `--json` document), how `runCli` reports each kind of failure (the
 * usage hint, an internal error with its stack, the hub client closed either way), the revisions looked up
 * in the history (revisions.ts), and where `--version` finds the package version (version.ts).
 *
 * The hub is answered through the msw ↔ undici bridge; `node:fs` `readFileSync` is faked only inside the
 * version tests (elsewhere it is the real one).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { HttpResponse, http } from 'msw';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CliError, HubRefusedError, HubUnreachableError, UsageError } from '../../src/cli/errors.js';
import { commandHelp, generalHelp } from '../../src/cli/help.js';
import { HubHttp } from '../../src/cli/http.js';
import { type CliIo, runCli } from '../../src/cli/main.js';
import { configsAt, HISTORY_WINDOW, tryConfigAt } from '../../src/cli/revisions.js';
import { COMMAND_NAMES, COMMANDS, type CommandName } from '../../src/cli/spec.js';
import { cliVersion } from '../../src/cli/version.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';

/** The fake file system of the version tests: `files` set → readFileSync serves only those (path → text). */
const fakeFs = vi.hoisted(() => ({ files: undefined as Map<string, string> | undefined, reads: [] as string[] }));

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const real = actual.readFileSync as (...args: unknown[]) => unknown;
  return {
    ...actual,
    readFileSync: (...args: unknown[]) => {
      if (fakeFs.files === undefined) return real(...args);
      const path = String(args[0]);
      fakeFs.reads.push(path);
      // A loop that never ends would read forever: stop it with an answer no test expects.
      if (fakeFs.reads.length > 12) return JSON.stringify({ name: '@central-hub/config', version: 'runaway' });
      const text = fakeFs.files.get(path);
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      return text;
    },
  };
});

const HUB = 'http://hub.test';
const API = `${HUB}/api/v1/config`;
const SVC = 'tick-aggregator';
const ENV = { CENTRAL_HUB_URL: HUB, CENTRAL_HUB_API_KEY: 'cli-test-key' };

let agent: MswAgent;
beforeEach(() => {
  agent = createMswAgent([]);
});
afterEach(async () => {
  vi.restoreAllMocks();
  await agent.close();
});

interface RunOptions {
  env?: Record<string, string>;
  stdin?: string;
  /** Replaces the stdout collector (e.g. a broken pipe). */
  stdoutWrite?: (s: string) => void;
}

async function run(argv: string[], options: RunOptions = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: options.stdoutWrite ?? ((s: string) => (stdout += s)) },
    stderr: { write: (s: string) => (stderr += s) },
    env: options.env ?? ENV,
    stdin: options.stdin === undefined ? undefined : Readable.from([options.stdin]),
    dispatcher: agent,
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

const doc = (revision: number, config: Record<string, unknown>) => ({
  service_name: SVC,
  config,
  version: '1.0.0',
  updated_at: 1_760_000_000_000 + revision,
  revision,
});
const serve = (revision: number, config: Record<string, unknown>) =>
  http.get(`${API}/${SVC}`, () => HttpResponse.json(doc(revision, config), { headers: { etag: `"${revision}-x"` } }));
const entry = (revision: number | undefined, config: Record<string, unknown> | null, version: string | null = '1.0.0') => ({
  version,
  action: 'updated',
  changed_by: 'admin',
  changed_at: 1_760_000_000_000,
  change_reason: null,
  config,
  ...(revision === undefined ? {} : { revision }),
});
const historyOf = (...entries: ReturnType<typeof entry>[]) =>
  http.get(`${API}/history/${SVC}`, ({ request }) =>
    HttpResponse.json({ service_name: SVC, history: entries, total: entries.length, limit: Number(new URL(request.url).searchParams.get('limit')) }),
  );
const hubClient = () => new HubHttp({ hubUrl: HUB, apiKey: undefined, timeoutMs: 5_000, dispatcher: agent });

// ---------------------------------------------------------------------------------------------------------
// The help pages, as a user reads them.

const GLOBAL_FLAGS = `Global flags:
  --hub URL           the hub (env CENTRAL_HUB_URL; default http://127.0.0.1:7000)
  --api-key KEY       sent as X-API-Key (env CENTRAL_HUB_API_KEY)
  --json              machine output: one JSON document per command (watch: one per line)
  --timeout-ms N      deadline of each hub request (default 10000)
  -h, --help          this help, or the help of a command`;

const EXIT_CODES = `Exit codes:
  0  ok
  1  refused: the hub answered 4xx (not found, unauthorized, invalid, 412 conflict, 422 rejected)
  2  usage: unknown flag or command, missing argument, unreadable input file
  3  unreachable: network error, timeout, 5xx, or an answer that breaks the wire contract`;

const WRITE_FLAGS = `  --if-match N        the revision the edit is based on (default: the current one, read first)
  --change-reason R   recorded in the history
  --force             commit even if running consumers would reject it (needs --change-reason)`;

const GENERAL_HELP = `central-hub: read, change and watch the configs of a Central Hub

Usage: central-hub <command> [arguments] [flags]

Commands:
  get        print the current config
  set        replace the whole config (creates it when absent)
  patch      apply an RFC 7396 JSON merge patch (null removes a key)
  diff       diff two revisions, or a revision and a file
  history    list the changes, newest first
  rollback   restore an earlier revision (or the newest one with a version)
  validate   dry run: would the hub and the running consumers accept this config?
  instances  the fleet view: who runs which revision
  watch      print each change as it happens, until SIGINT/SIGTERM
  help       the help of a command

${GLOBAL_FLAGS}
  -v, --version       the version of central-hub

Writes (set, patch, rollback) always send If-Match with the revision they are based on: when someone
else changed the config meanwhile, the hub answers 412 and nothing is written (exit 1, with the diff).

Environment:
  CENTRAL_HUB_URL       the hub (default http://127.0.0.1:7000)
  CENTRAL_HUB_API_KEY   the API key
  NO_COLOR              no ANSI colours (colours are used on a terminal only)

${EXIT_CODES}

Run 'central-hub help <command>' for the flags of a command.
`;

const COMMAND_HELP: Record<CommandName, string> = {
  get: `Usage: central-hub get <service>

  print the current config

${GLOBAL_FLAGS}

Example:
  central-hub get tick-aggregator > tick.json

${EXIT_CODES}
`,
  set: `Usage: central-hub set <service> [--file F]

  replace the whole config (creates it when absent)

Flags:
  -f, --file F        read the JSON from F (- or no --file: stdin)
  --version-tag V     the config version to record (e.g. 1.1.0)
${WRITE_FLAGS}

${GLOBAL_FLAGS}

Example:
  central-hub set tick-aggregator --file tick.json --change-reason "bigger batches"

${EXIT_CODES}
`,
  patch: `Usage: central-hub patch <service> [--file F]

  apply an RFC 7396 JSON merge patch (null removes a key)

Flags:
  -f, --file F        read the JSON from F (- or no --file: stdin)
  --version-tag V     the config version to record
${WRITE_FLAGS}

${GLOBAL_FLAGS}

Example:
  echo '{"operational":{"batch_size":200}}' | central-hub patch tick-aggregator

${EXIT_CODES}
`,
  diff: `Usage: central-hub diff <service> <revA> <revB> | <service> <rev> --file F

  diff two revisions, or a revision and a file

Flags:
  -f, --file F        compare <rev> with the JSON in F (- for stdin)

${GLOBAL_FLAGS}

Example:
  central-hub diff tick-aggregator 3 5

${EXIT_CODES}
`,
  history: `Usage: central-hub history <service> [--limit N]

  list the changes, newest first

Flags:
  -n, --limit N       how many entries (1-100, default 10)

${GLOBAL_FLAGS}

Example:
  central-hub history tick-aggregator --limit 5

${EXIT_CODES}
`,
  rollback: `Usage: central-hub rollback <service> (--revision N | --version V)

  restore an earlier revision (or the newest one with a version)

Flags:
  --revision N        the revision to restore
  --version V         the newest revision with this version that differs from the current config
${WRITE_FLAGS}

${GLOBAL_FLAGS}

Example:
  central-hub rollback tick-aggregator --revision 3 --change-reason "batch 200 overloads the db"

${EXIT_CODES}
`,
  validate: `Usage: central-hub validate <service> [--file F]

  dry run: would the hub and the running consumers accept this config?

Flags:
  -f, --file F        read the JSON from F (- or no --file: stdin)

${GLOBAL_FLAGS}

Example:
  central-hub validate tick-aggregator --file tick.json

${EXIT_CODES}
`,
  instances: `Usage: central-hub instances <service>

  the fleet view: who runs which revision

${GLOBAL_FLAGS}

Example:
  central-hub instances tick-aggregator

${EXIT_CODES}
`,
  watch: `Usage: central-hub watch <service> [--interval-ms N] [--nats URL]

  print each change as it happens, until SIGINT/SIGTERM

Flags:
  --interval-ms N     poll every N ms with conditional GETs (default 2000; min 100)
  --nats URL          instead, refetch on each NATS notice config.update.<service> (and after reconnects)

${GLOBAL_FLAGS}

Example:
  central-hub watch tick-aggregator --nats nats://127.0.0.1:4222

${EXIT_CODES}
`,
  help: `Usage: central-hub help [command]

  the help of a command

${GLOBAL_FLAGS}

Example:
  central-hub help rollback

${EXIT_CODES}
`,
};

describe('help pages', () => {
  it.each([[['--help']], [['-h']], [['help']]])('%j prints the general help, word for word, and exits 0', async (argv) => {
    const { code, stdout, stderr } = await run(argv);
    expect(code).toBe(0);
    expect(stdout).toBe(GENERAL_HELP);
    expect(stderr).toBe('');
    expect(agent.requests).toHaveLength(0);
  });

  it('the general help is the one generalHelp() builds', () => {
    expect(generalHelp()).toBe(GENERAL_HELP);
  });

  it('there is a help page for every command, and no other', () => {
    expect(Object.keys(COMMAND_HELP)).toEqual([...COMMAND_NAMES]);
  });

  it('every entry of the command table is named after its command', () => {
    expect(Object.keys(COMMANDS)).toEqual([...COMMAND_NAMES]);
    expect(Object.values(COMMANDS).map((spec) => spec.name)).toEqual([...COMMAND_NAMES]);
  });

  it.each(COMMAND_NAMES.map((name) => [name]))('help %s prints the page of the command, word for word, and exits 0', async (name) => {
    const { code, stdout, stderr } = await run(['help', name]);
    expect(code).toBe(0);
    expect(stdout).toBe(COMMAND_HELP[name]);
    expect(stderr).toBe('');
    expect(commandHelp(name)).toBe(COMMAND_HELP[name]);
  });

  it.each(COMMAND_NAMES.filter((name) => name !== 'help').map((name) => [name]))('%s --help prints the same page as help %s', async (name) => {
    const { code, stdout } = await run([name, '--help']);
    expect(code).toBe(0);
    expect(stdout).toBe(COMMAND_HELP[name]);
  });
});

describe('global flags with a value may come before the command', () => {
  it.each([
    [['--hub', HUB, 'get', SVC], { CENTRAL_HUB_API_KEY: 'cli-test-key' }, 'cli-test-key'],
    [['--api-key', 'flag-key', 'get', SVC], { CENTRAL_HUB_URL: HUB }, 'flag-key'],
    [['--timeout-ms', '5000', 'get', SVC], ENV, 'cli-test-key'],
  ])('%j: the value is not taken for the command', async (argv, env, key) => {
    agent.use(serve(7, { a: 1 }));
    const { code, stdout, stderr } = await run(argv, { env });
    expect(stderr).toBe(`# ${SVC} revision 7, version 1.0.0, updated 2025-10-09T08:53:20Z\n`);
    expect(code).toBe(0);
    expect(stdout).toBe('{\n  "a": 1\n}\n');
    expect(agent.requests.map((r) => [r.url, r.headers.get('x-api-key')])).toEqual([[`${API}/${SVC}`, key]]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The error classes.

describe('error classes', () => {
  it('a CliError has its exit code, no details, no document and no cause unless given', () => {
    const error = new CliError(1, 'it went wrong');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('CliError');
    expect(error.message).toBe('it went wrong');
    expect(error.exitCode).toBe(1);
    expect(error.details).toEqual([]);
    expect(error.json).toBeUndefined();
    expect('cause' in error).toBe(false);
    expect(String(error)).toBe('CliError: it went wrong');
  });

  it('a CliError keeps the details, the document and the cause it is given', () => {
    const cause = new Error('socket hang up');
    const error = new CliError(3, 'down', { details: ['line 1', 'line 2'], json: { error: { status: null } }, cause });
    expect(error.exitCode).toBe(3);
    expect(error.details).toEqual(['line 1', 'line 2']);
    expect(error.json).toEqual({ error: { status: null } });
    expect(error.cause).toBe(cause);
    expect(Object.hasOwn(error, 'cause')).toBe(true);
  });

  it('a CliError given cause: undefined has no cause at all', () => {
    expect('cause' in new CliError(2, 'x', { cause: undefined })).toBe(false);
  });

  it('a UsageError exits 2 and names the command to show the usage of, when known', () => {
    const error = new UsageError('missing <service>', 'get');
    expect(error).toBeInstanceOf(CliError);
    expect(error.name).toBe('UsageError');
    expect(error.exitCode).toBe(2);
    expect(error.command).toBe('get');
    expect(error.details).toEqual([]);
    expect(error.json).toBeUndefined();
    expect('cause' in error).toBe(false);
    expect(new UsageError('no command given').command).toBeUndefined();
  });

  it('a HubRefusedError exits 1; its document is the status with the hub body', () => {
    const body = { detail: 'nope', revision: 4 };
    const error = new HubRefusedError(409, 'hub refused (HTTP 409): nope', body);
    expect(error).toBeInstanceOf(CliError);
    expect(error.name).toBe('HubRefusedError');
    expect(error.exitCode).toBe(1);
    expect(error.status).toBe(409);
    expect(error.body).toBe(body);
    expect(error.details).toEqual([]);
    expect(error.json).toEqual({ error: { status: 409, detail: 'nope', revision: 4 } });
    expect('cause' in error).toBe(false);
  });

  it('a HubRefusedError without a JSON body has the message as detail, and keeps its details', () => {
    const error = new HubRefusedError(404, 'HTTP 404', undefined, ['hint']);
    expect(error.body).toBeUndefined();
    expect(error.details).toEqual(['hint']);
    expect(error.json).toEqual({ error: { status: 404, detail: 'HTTP 404' } });
  });

  it('a HubUnreachableError exits 3; its document has the status (null without one) and the message', () => {
    const cause = new TypeError('fetch failed');
    const failing = new HubUnreachableError('failed (HTTP 503)', { status: 503, cause });
    expect(failing).toBeInstanceOf(CliError);
    expect(failing.name).toBe('HubUnreachableError');
    expect(failing.exitCode).toBe(3);
    expect(failing.status).toBe(503);
    expect(failing.cause).toBe(cause);
    expect(failing.details).toEqual([]);
    expect(failing.json).toEqual({ error: { status: 503, detail: 'failed (HTTP 503)' } });

    const down = new HubUnreachableError('hub unreachable');
    expect(down.status).toBeUndefined();
    expect('cause' in down).toBe(false);
    expect(down.json).toEqual({ error: { status: null, detail: 'hub unreachable' } });
  });
});

// ---------------------------------------------------------------------------------------------------------
// How runCli reports failures.

describe('failures on stderr', () => {
  it('a usage error without a command points at --help', async () => {
    const { code, stdout, stderr } = await run([]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe("central-hub: no command given\nRun 'central-hub --help' for usage.\n");
  });

  it('a usage error of a command points at the help of that command', async () => {
    const { code, stdout, stderr } = await run(['get']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe("central-hub: missing <service>: central-hub get <service>\nRun 'central-hub help get' for usage.\n");
  });

  it('a usage error found by the command itself (after parsing) points at that command too', async () => {
    const { code, stderr } = await run(['diff', SVC, '1']);
    expect(code).toBe(2);
    expect(stderr).toBe("central-hub: diff needs a second revision or --file F\nRun 'central-hub help diff' for usage.\n");
  });

  it('a refusal prints its message only, with no usage hint; with --json its document goes to stdout', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({ detail: `no config for service '${SVC}'` }, { status: 404 })));
    const human = await run(['get', SVC]);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe('');
    expect(human.stderr).toBe(`central-hub: hub refused (HTTP 404): no config for service '${SVC}'\n`);
    const json = await run(['get', SVC, '--json']);
    expect(json.code).toBe(1);
    expect(json.stdout).toBe(`{"error":{"status":404,"detail":"no config for service '${SVC}'"}}\n`);
    expect(json.stderr).toBe(human.stderr);
  });

  it('a failing hub prints its message only, with no usage hint; with --json its document has the status', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'database unavailable' }, { status: 503 })));
    const human = await run(['get', SVC]);
    expect(human.code).toBe(3);
    expect(human.stdout).toBe('');
    expect(human.stderr).toBe(`central-hub: hub ${HUB} failed (HTTP 503): database unavailable\n`);
    const json = await run(['get', SVC, '--json']);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toEqual({ error: { status: 503, detail: `hub ${HUB} failed (HTTP 503): database unavailable` } });
  });

  it('an error that is not a CliError (a bug, a broken stdout) is an internal error with its stack, exit 1', async () => {
    agent.use(serve(7, { a: 1 }));
    const broken = new Error('write EPIPE');
    const { code, stderr } = await run(['get', SVC], {
      stdoutWrite: () => {
        throw broken;
      },
    });
    expect(code).toBe(1);
    expect(broken.stack).toContain('write EPIPE\n    at ');
    expect(stderr).toBe(`central-hub: internal error: ${broken.stack}\n`);
  });

  it('a thrown non-Error is an internal error too, printed as a string', async () => {
    agent.use(serve(7, { a: 1 }));
    const { code, stderr } = await run(['get', SVC], {
      stdoutWrite: () => {
        throw 'EPIPE';
      },
    });
    expect(code).toBe(1);
    expect(stderr).toBe('central-hub: internal error: EPIPE\n');
  });

  it('closes its hub client once the command is over, whether it succeeded or failed', async () => {
    const close = vi.spyOn(HubHttp.prototype, 'close');
    agent.use(serve(7, { a: 1 }));
    expect((await run(['get', SVC])).code).toBe(0);
    expect(close).toHaveBeenCalledTimes(1);
    agent.resetHandlers();
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'nope' }, { status: 404 })));
    expect((await run(['get', SVC])).code).toBe(1);
    expect(close).toHaveBeenCalledTimes(2);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Revisions from the history.

describe('revisions from the history', () => {
  it('configsAt gives each revision of the last 100 entries its config and version (null when absent)', async () => {
    agent.use(historyOf(entry(3, { a: 3 }), entry(2, null, null), entry(1, { a: 1 }, '0.9.0')));
    const configs = await configsAt(hubClient(), SVC, [1, 3]);
    expect([...configs.entries()]).toEqual([
      [3, { revision: 3, config: { a: 3 }, version: '1.0.0' }],
      [2, { revision: 2, config: null, version: null }],
      [1, { revision: 1, config: { a: 1 }, version: '0.9.0' }],
    ]);
    expect(HISTORY_WINDOW).toBe(100);
    expect(new URL(agent.requests[0]!.url).searchParams.get('limit')).toBe('100');
  });

  it('entries without a revision (an older hub) are skipped, and of a revision listed twice the newest (first) entry counts', async () => {
    agent.use(historyOf(entry(5, { a: 'newest' }), entry(undefined, { a: 'legacy' }), entry(5, { a: 'older' }, '0.1.0'), entry(4, { a: 4 })));
    const configs = await configsAt(hubClient(), SVC, [5]);
    expect([...configs.entries()]).toEqual([
      [5, { revision: 5, config: { a: 'newest' }, version: '1.0.0' }],
      [4, { revision: 4, config: { a: 4 }, version: '1.0.0' }],
    ]);
  });

  it('diff of a revision not in the history exits 1 naming it; with --json the error document says 404', async () => {
    agent.use(historyOf(entry(3, { a: 3 }), entry(2, { a: 2 })));
    const human = await run(['diff', SVC, '3', '9']);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe('');
    expect(human.stderr).toBe(`central-hub: revision 9 of '${SVC}' is not among its last 100 history entries\n`);
    const json = await run(['diff', SVC, '3', '9', '--json']);
    expect(json.code).toBe(1);
    expect(json.stderr).toBe(human.stderr);
    expect(json.stdout.endsWith('\n')).toBe(true);
    expect(JSON.parse(json.stdout)).toEqual({ error: { status: 404, detail: 'revision 9 not found in history', revision: 9 } });
  });

  it('tryConfigAt gives the config of a revision, null for a config-less entry, undefined when the history lacks it or fails', async () => {
    agent.use(historyOf(entry(3, { a: 3 }), entry(2, null)));
    const hub = hubClient();
    expect(await tryConfigAt(hub, SVC, 3)).toEqual({ a: 3 });
    expect(await tryConfigAt(hub, SVC, 2)).toBeNull();
    expect(await tryConfigAt(hub, SVC, 9)).toBeUndefined();
    agent.resetHandlers();
    agent.use(http.get(`${API}/history/${SVC}`, () => HttpResponse.json({ detail: 'down' }, { status: 503 })));
    expect(await tryConfigAt(hub, SVC, 3)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------
// Where --version finds the version.

describe('cliVersion', () => {
  /** The directory of src/cli/version.ts, where the search starts (dist/ when bundled). */
  const cliDir = dirname(fileURLToPath(new URL('../../src/cli/version.ts', import.meta.url)));
  const up = (levels: number) => {
    let dir = cliDir;
    for (let i = 0; i < levels; i++) dir = dirname(dir);
    return dir;
  };
  const pkgAt = (levels: number) => join(up(levels), 'package.json');

  afterEach(() => {
    fakeFs.files = undefined;
    fakeFs.reads = [];
  });

  function withFiles(files: Record<string, string>): void {
    fakeFs.files = new Map(Object.entries(files));
    fakeFs.reads = [];
  }

  it('is the version of the @central-hub/config package.json of this repository, which --version prints', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
    expect(pkg.name).toBe('@central-hub/config');
    expect(cliVersion()).toBe(pkg.version);
    const { code, stdout } = await run(['--version']);
    expect(code).toBe(0);
    expect(stdout).toBe(`${pkg.version}\n`);
  });

  it("looks in the running file's directory and the three above it, then says 'unknown'", () => {
    withFiles({ [pkgAt(4)]: JSON.stringify({ name: '@central-hub/config', version: '4.4.4' }) });
    expect(cliVersion()).toBe('unknown');
    expect(fakeFs.reads).toEqual([pkgAt(0), pkgAt(1), pkgAt(2), pkgAt(3)]);
  });

  it('skips a package.json of another package, one without a string version and one that is not JSON', () => {
    withFiles({
      [pkgAt(0)]: JSON.stringify({ name: 'some-app', version: '9.9.9' }),
      [pkgAt(1)]: JSON.stringify({ name: '@central-hub/config', version: 7 }),
      [pkgAt(2)]: '{ not json',
      [pkgAt(3)]: JSON.stringify({ name: '@central-hub/config', version: '1.2.3' }),
    });
    expect(cliVersion()).toBe('1.2.3');
    expect(fakeFs.reads).toEqual([pkgAt(0), pkgAt(1), pkgAt(2), pkgAt(3)]);
  });

  it('a @central-hub/config package.json without a version is skipped too', () => {
    withFiles({
      [pkgAt(0)]: JSON.stringify({ name: '@central-hub/config' }),
      [pkgAt(1)]: JSON.stringify({ name: '@central-hub/config', version: '0.1.0' }),
    });
    expect(cliVersion()).toBe('0.1.0');
    expect(fakeFs.reads).toEqual([pkgAt(0), pkgAt(1)]);
  });
});
