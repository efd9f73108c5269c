/**
 * The CLI's parsing, in process and without a hub: strict flags (an unknown one is a usage error, exit 2,
 * before any request), the help and version texts, global flags on either side of the command, env defaults.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_HUB_URL, parseInvocation } from '../../src/cli/args.js';
import { type CliIo, runCli } from '../../src/cli/main.js';
import { COMMAND_NAMES } from '../../src/cli/spec.js';

async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

describe('usage errors exit 2 and name the problem', () => {
  it.each([
    [['get', 'tick-aggregator', '--bogus'], "Unknown option '--bogus'"],
    [['--nope', 'get', 'x'], "Unknown option '--nope'"],
    [['frobnicate', 'x'], "unknown command 'frobnicate'"],
    [[], 'no command given'],
    [['get'], 'missing <service>'],
    [['get', 'a', 'b'], "unexpected argument 'b'"],
    [['get', 'Not_A_Service'], 'is not a service name'],
    [['history', 'x', '--limit', '0'], '--limit must be an integer from 1 to 100'],
    [['history', 'x', '--limit', 'ten'], "not 'ten'"],
    [['watch', 'x', '--interval-ms', '5'], '--interval-ms must be an integer from 100'],
    [['get', 'x', '--timeout-ms', '0'], '--timeout-ms must be an integer from 1 to 600000'],
    [['get', 'x', '--hub', 'ftp://hub'], "hub URL 'ftp://hub' is not an http(s) URL"],
    [['get', 'x', '--hub'], "Option '--hub <value>' argument missing"],
    [['rollback', 'x'], 'exactly one of --revision N and --version V'],
    [['rollback', 'x', '--revision', '2', '--version', '1.0.0'], 'exactly one of --revision N and --version V'],
    [['set', 'x', '--file', 'f.json', '--force'], '--force needs --change-reason'],
    [['diff', 'x', '1'], 'diff needs a second revision or --file F'],
    [['diff', 'x', '1', '2', '--file', 'f.json'], 'not both'],
    [['diff', 'x', 'one', '2'], 'a revision must be an integer'],
    [['help', 'frobnicate'], "unknown command 'frobnicate'"],
    [['get', 'x', '--version'], "Unknown option '--version'"],
  ])('%j → exit 2: %s', async (argv, message) => {
    // No dispatcher and the default hub: a request would fail with exit 3, not 2.
    const { code, stdout, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr).toMatch(/Run 'central-hub (help \w+|--help)' for usage\./);
    expect(stdout).toBe('');
  });

  it('set without --file and without a stdin is a usage error, not a hang', async () => {
    const { code, stderr } = await run(['set', 'x']);
    expect(code).toBe(2);
    expect(stderr).toContain('pass --file F or pipe the JSON on stdin');
  });

  it('an input file that is missing, empty, not JSON or not an object is a usage error (exit 2)', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'cli-args-'));
    try {
      const files = { empty: '', broken: '{"a":', array: '[1,2]' };
      for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
      expect((await run(['set', 'x', '--file', join(dir, 'missing')])).stderr).toContain('ENOENT');
      expect((await run(['set', 'x', '--file', join(dir, 'empty')])).stderr).toContain('is empty');
      expect((await run(['validate', 'x', '--file', join(dir, 'broken')])).stderr).toContain('is not valid JSON');
      const array = await run(['patch', 'x', '--file', join(dir, 'array')]);
      expect(array.code).toBe(2);
      expect(array.stderr).toContain('must hold a JSON object (the merge patch)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('help and version', () => {
  it('--help lists every command, the environment and the exit codes, and exits 0', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    for (const name of COMMAND_NAMES) expect(stdout).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
    expect(stdout).toContain('CENTRAL_HUB_URL');
    expect(stdout).toContain('CENTRAL_HUB_API_KEY');
    expect(stdout).toContain('NO_COLOR');
    for (const line of ['0  ok', '1  refused', '2  usage', '3  unreachable']) expect(stdout).toContain(line);
  });

  it.each([[['help', 'rollback']], [['rollback', '--help']], [['rollback', 'x', '-h']]])('%j shows the flags of the command', async (argv) => {
    const { code, stdout } = await run(argv);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: central-hub rollback <service> (--revision N | --version V)');
    expect(stdout).toContain('--change-reason R');
    expect(stdout).toContain('Exit codes:');
  });

  it('--version prints the package version', async () => {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    for (const flag of ['--version', '-v']) {
      const { code, stdout } = await run([flag]);
      expect(code).toBe(0);
      expect(stdout).toBe(`${version}\n`);
    }
  });
});

describe('flags and environment', () => {
  it('global flags may come before or after the command; flags override the environment', () => {
    const env = { CENTRAL_HUB_URL: 'http://env-hub:7000', CENTRAL_HUB_API_KEY: 'env-key' };
    const before = parseInvocation(['--hub', 'http://flag-hub:1', '--json', 'get', 'svc'], env);
    const after = parseInvocation(['get', 'svc', '--api-key=flag-key', '--timeout-ms', '250'], env);
    expect(before).toMatchObject({ kind: 'run', command: 'get', args: ['svc'], globals: { hubUrl: 'http://flag-hub:1', apiKey: 'env-key', json: true } });
    expect(after).toMatchObject({ kind: 'run', globals: { hubUrl: 'http://env-hub:7000', apiKey: 'flag-key', json: false, timeoutMs: 250 } });
  });

  it('without flags or environment the hub is http://127.0.0.1:7000 and no key is sent', () => {
    expect(parseInvocation(['get', 'svc'], { CENTRAL_HUB_URL: '', CENTRAL_HUB_API_KEY: '' })).toMatchObject({
      globals: { hubUrl: DEFAULT_HUB_URL, apiKey: undefined, timeoutMs: 10_000 },
    });
    expect(DEFAULT_HUB_URL).toBe('http://127.0.0.1:7000');
  });

  it('rollback --version takes a value (the config version); at the top level --version is the CLI version', () => {
    expect(parseInvocation(['rollback', 'svc', '--version', '1.2.0'], {})).toMatchObject({ kind: 'run', flags: { version: '1.2.0' } });
    expect(parseInvocation(['--version'], {})).toEqual({ kind: 'version' });
  });
});
