/**
 * The CLI's hub client, input reader and refusal reports at their edges, found by mutation testing
 * (`npm run test:mutation`): the hub URL HubHttp accepts (a URL, http(s) only, a path prefix with or
 * without its trailing slash), the headers it sends (accept always, x-api-key only with a key, no undefined
 * header reaching the dispatcher, a content type only with a body), the deadline and the caller's signal
 * (the caller's abort is rethrown as it is, the deadline becomes "unreachable" with the timeout as cause),
 * the Agent it makes (its deadlines, closed by close(), an injected dispatcher never closed), the response
 * size cap to the byte, and how a network error is described (its code, a nested cause's code, an empty
 * message). Then readObject (context.ts): --file vs '-' vs stdin, a TTY stdin refused, a missing file's
 * errno code, the size cap to the byte for a file and for stdin, empty input, the BOM, JSON that is not an
 * object; the refusal lines (refusal.ts); and the outputs and exit codes of validate, of the writes and of
 * a 412 conflict (commands/validate.ts, write.ts, conflict.ts) for each kind of hub answer.
 *
 * The hub is answered through the msw ↔ undici bridge. undici's Agent is wrapped (vi.mock) only to record
 * the options HubHttp gives its own Agent and whether that Agent gets closed; it is otherwise the real one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { delay, HttpResponse, http } from 'msw';
import type { Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FlagValues } from '../../src/cli/args.js';
import { CommandContext, type InputStream, MAX_INPUT_BYTES } from '../../src/cli/context.js';
import { HubUnreachableError, UsageError } from '../../src/cli/errors.js';
import { NO_COLOR_PALETTE } from '../../src/cli/format.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, HubHttp, MAX_RESPONSE_BYTES } from '../../src/cli/http.js';
import { canonicalPretty } from '../../src/cli/json-diff.js';
import { type CliIo, runCli } from '../../src/cli/main.js';
import { consumerLines, describeRefusal, issueLines } from '../../src/cli/refusal.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';

/** Every undici Agent made in this file, with its options, and the ones closed. */
const agents = vi.hoisted(() => ({ made: [] as Array<{ agent: object; options: unknown }>, closed: new Set<object>() }));

vi.mock('undici', async (importOriginal) => {
  const real = await importOriginal<typeof import('undici')>();
  class RecordingAgent extends real.Agent {
    constructor(options?: ConstructorParameters<typeof real.Agent>[0]) {
      super(options);
      agents.made.push({ agent: this, options });
    }
    override close(...args: unknown[]): Promise<void> {
      agents.closed.add(this);
      return (super.close as (...a: unknown[]) => Promise<void>).apply(this, args);
    }
  }
  return { ...real, Agent: RecordingAgent };
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
  await agent.close();
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-http-input-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const hubClient = (options: { hubUrl?: string; apiKey?: string; timeoutMs?: number; dispatcher?: Dispatcher } = {}) =>
  new HubHttp({ hubUrl: options.hubUrl ?? HUB, apiKey: options.apiKey, timeoutMs: options.timeoutMs ?? 5_000, dispatcher: options.dispatcher ?? agent });

/** The error a promise rejects with (fails the test when it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** The error a function throws (fails the test when it returns). */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** A JSON object whose text is exactly `bytes` bytes long: `{"pad":"xxx…"}`. */
const objectOfBytes = (bytes: number): string => `{"pad":"${'x'.repeat(bytes - 10)}"}`;

interface RunOptions {
  stdin?: string | InputStream;
  isTTY?: boolean;
}

async function run(argv: string[], options: RunOptions = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: ENV,
    stdin: typeof options.stdin === 'string' ? Readable.from([options.stdin]) : options.stdin,
    isTTY: options.isTTY,
    dispatcher: agent,
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

const doc = (revision: number | undefined, config: Record<string, unknown>) => ({
  service_name: SVC,
  config,
  version: '1.0.0',
  updated_at: 1_760_000_000_000,
  ...(revision === undefined ? {} : { revision }),
});
const written = (revision: number, config: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  HttpResponse.json({ status: 'updated', service_name: SVC, config, version: '1.0.0', updated_at: 1, updated_by: 'admin', broadcast: 'sent', revision, ...extra });
const entry = (revision: number, config: Record<string, unknown> | null, action = 'updated') => ({
  version: '1.0.0',
  action,
  changed_by: 'admin',
  changed_at: 1_760_000_000_000,
  change_reason: null,
  config,
  revision,
});
const historyOf = (...entries: ReturnType<typeof entry>[]) =>
  http.get(`${API}/history/${SVC}`, () => HttpResponse.json({ service_name: SVC, history: entries, total: entries.length, limit: 100 }));
/** GET of the service: the answers in turn (the last one repeats). */
const reads = (...answers: Array<() => Response>) => {
  let at = 0;
  return http.get(`${API}/${SVC}`, () => answers[Math.min(at++, answers.length - 1)]!());
};
const notFound = () => HttpResponse.json({ detail: 'no config' }, { status: 404 });
const requestsOf = (method: string) => agent.requests.filter((r) => r.method === method);
const CONFLICT = `central-hub: conflict: '${SVC}' changed since revision`;
const UPDATED = '2025-10-09T08:53:20Z';

describe('HubHttp: the hub URL', () => {
  it('a hub URL that is not a URL is refused with a TypeError naming it', () => {
    const error = thrownBy(() => hubClient({ hubUrl: 'not a url' }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe("hub URL 'not a url' is not a URL");
  });

  it('only http: and https: are accepted', () => {
    const error = thrownBy(() => hubClient({ hubUrl: 'ftp://hub.test' }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe("hub URL 'ftp://hub.test' is not http(s)");
    expect(hubClient({ hubUrl: 'https://hub.test:8443' }).origin).toBe('https://hub.test:8443');
    expect(hubClient({ hubUrl: 'http://hub.test' }).origin).toBe(HUB);
  });

  it.each(['http://hub.test/prefix', 'http://hub.test/prefix/'])('a path prefix is kept whether or not it ends in a slash (%s)', async (hubUrl) => {
    agent.use(http.get(`${HUB}/prefix/api/v1/config/${SVC}`, () => HttpResponse.json({ ok: true })));
    const answer = await hubClient({ hubUrl }).request('GET', SVC);
    expect(answer.status).toBe(200);
    expect(agent.requests.map((r) => r.url)).toEqual([`${HUB}/prefix/api/v1/config/${SVC}`]);
  });
});

describe('HubHttp: what it sends', () => {
  it('accept: application/json on every request; x-api-key only with a key; no content type without a body', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({})));
    await hubClient({ apiKey: 'k-1' }).request('GET', SVC);
    await hubClient().request('GET', SVC);
    const [withKey, withoutKey] = agent.requests;
    expect([withKey!.headers.get('accept'), withKey!.headers.get('x-api-key'), withKey!.headers.get('content-type')]).toEqual(['application/json', 'k-1', null]);
    expect([withoutKey!.headers.get('accept'), withoutKey!.headers.get('x-api-key'), withoutKey!.headers.get('content-type')]).toEqual(['application/json', null, null]);
  });

  it('the dispatcher is handed only the headers that have a value (no x-api-key without a key, no undefined request header)', async () => {
    const seen: Dispatcher.RequestOptions[] = [];
    const recording = {
      request: (options: Dispatcher.RequestOptions) => {
        seen.push(options);
        return agent.request(options);
      },
    } as unknown as Dispatcher;
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({})));
    await hubClient({ dispatcher: recording }).request('GET', SVC, { headers: { 'if-none-match': undefined, 'x-trace': 't-1' } });
    expect(seen[0]!.headers).toStrictEqual({ accept: 'application/json', 'x-trace': 't-1' });
    expect(agent.requests[0]!.headers.get('x-trace')).toBe('t-1');
  });

  it('a body goes as JSON, application/json unless another content type is given', async () => {
    agent.use(http.post(`${API}/${SVC}`, () => HttpResponse.json({})), http.patch(`${API}/${SVC}`, () => HttpResponse.json({})));
    const hub = hubClient();
    await hub.request('POST', SVC, { body: { a: 1 } });
    await hub.request('PATCH', SVC, { body: { b: null }, contentType: 'application/merge-patch+json' });
    const [post, patch] = agent.requests;
    expect([post!.headers.get('content-type'), await post!.text()]).toEqual(['application/json', '{"a":1}']);
    expect([patch!.headers.get('content-type'), await patch!.text()]).toEqual(['application/merge-patch+json', '{"b":null}']);
  });
});

describe('HubHttp: the deadline and the caller signal', () => {
  const hang = () =>
    agent.use(
      http.get(`${API}/${SVC}`, async () => {
        await delay('infinite');
        return HttpResponse.json({});
      }),
    );

  it.each([
    ['without a caller signal', undefined],
    ['with a caller signal that is not aborted', new AbortController().signal],
  ])('a hub that does not answer within the deadline is unreachable (exit 3), the timeout as cause (%s)', { timeout: 3_000 }, async (_, signal) => {
    hang();
    const error = await rejectionOf(hubClient({ timeoutMs: 50 }).request('GET', SVC, { signal }));
    expect(error).toBeInstanceOf(HubUnreachableError);
    expect((error as HubUnreachableError).message).toBe(`hub ${HUB} unreachable: no answer within 50 ms`);
    expect((error as HubUnreachableError).exitCode).toBe(3);
    expect(((error as Error).cause as Error).name).toBe('TimeoutError');
  });

  it('an abort of the caller signal is rethrown as it is, not made "unreachable"', { timeout: 3_000 }, async () => {
    hang();
    const caller = new AbortController();
    const reason = new Error('stopped by the caller');
    const pending = hubClient({ timeoutMs: 2_000 }).request('GET', SVC, { signal: caller.signal });
    setTimeout(() => caller.abort(reason), 20);
    expect(await rejectionOf(pending)).toBe(reason);
  });

  it('a network error is unreachable, with the error as cause', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.error()));
    const error = (await rejectionOf(hubClient().request('GET', SVC))) as HubUnreachableError;
    expect(error).toBeInstanceOf(HubUnreachableError);
    expect(error.message).toBe(`hub ${HUB} unreachable: MSW_NETWORK_ERROR msw-undici: network error (HttpResponse.error()) for GET ${API}/${SVC}`);
    expect(error.cause).toMatchObject({ code: 'MSW_NETWORK_ERROR' });
  });
});

describe('HubHttp: its own Agent', () => {
  it('the Agent it makes has undici deadlines far below the defaults: connect at most 3 s, headers and body the request deadline', async () => {
    const before = agents.made.length;
    const short = new HubHttp({ hubUrl: HUB, apiKey: undefined, timeoutMs: 1_500 });
    const long = new HubHttp({ hubUrl: HUB, apiKey: undefined, timeoutMs: 20_000 });
    expect(agents.made.slice(before).map((a) => a.options)).toEqual([
      { connect: { timeout: 1_500 }, headersTimeout: 1_500, bodyTimeout: 1_500, keepAliveTimeout: 10_000, connections: 4 },
      { connect: { timeout: DEFAULT_CONNECT_TIMEOUT_MS }, headersTimeout: 20_000, bodyTimeout: 20_000, keepAliveTimeout: 10_000, connections: 4 },
    ]);
    await short.close();
    await long.close();
  });

  it('close() closes the Agent it made; an injected dispatcher is left open', async () => {
    const before = agents.made.length;
    const own = new HubHttp({ hubUrl: HUB, apiKey: undefined, timeoutMs: 1_000 });
    const made = agents.made[before]!.agent;
    expect(agents.closed.has(made)).toBe(false);
    await own.close();
    expect(agents.closed.has(made)).toBe(true);

    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({ still: 'open' })));
    const injected = hubClient();
    await injected.close();
    expect((await injected.request('GET', SVC)).body).toEqual({ still: 'open' });
  });
});

describe('HubHttp: the answer', () => {
  const answering = (text: string) => agent.use(http.get(`${API}/${SVC}`, () => new HttpResponse(text, { headers: { 'content-type': 'application/json' } })));

  it('an answer of exactly MAX_RESPONSE_BYTES is read in full', async () => {
    answering(`"${'a'.repeat(MAX_RESPONSE_BYTES - 2)}"`);
    const answer = await hubClient().request('GET', SVC);
    expect(answer.status).toBe(200);
    expect(typeof answer.body === 'string' ? answer.body.length : answer.body).toBe(MAX_RESPONSE_BYTES - 2);
  });

  it('an answer one byte over MAX_RESPONSE_BYTES is unreachable, naming the cap', async () => {
    answering(`"${'a'.repeat(MAX_RESPONSE_BYTES - 1)}"`);
    const error = await rejectionOf(hubClient().request('GET', SVC));
    expect(error).toBeInstanceOf(HubUnreachableError);
    expect((error as Error).message).toBe(`hub ${HUB} unreachable: an answer larger than ${MAX_RESPONSE_BYTES} bytes`);
  });

  it('headers are flat: names in lower case, a repeated header joined with ", "', async () => {
    agent.use(
      http.get(`${API}/${SVC}`, () =>
        HttpResponse.json(
          {},
          {
            headers: [
              ['ETag', '"7-x"'],
              ['set-cookie', 'a=1'],
              ['set-cookie', 'b=2'],
            ],
          },
        ),
      ),
    );
    const { headers } = await hubClient().request('GET', SVC);
    expect([headers.etag, headers['set-cookie']]).toEqual(['"7-x"', 'a=1, b=2']);
  });

  it('an empty body and a body that is not JSON are undefined; the status still arrives', async () => {
    agent.use(
      http.get(`${API}/empty`, () => new HttpResponse(null, { status: 204 })),
      http.get(`${API}/text`, () => new HttpResponse('not json', { status: 502 })),
    );
    const hub = hubClient();
    expect(await hub.request('GET', 'empty')).toMatchObject({ status: 204, body: undefined });
    expect(await hub.request('GET', 'text')).toMatchObject({ status: 502, body: undefined });
  });
});

describe('HubHttp: how a network error is described', () => {
  const withCode = (message: string, code: unknown, options?: ErrorOptions) => Object.assign(new Error(message, options), { code });
  const cases: Array<[string, unknown, string]> = [
    ['an Error with a code its message lacks: the code first', withCode('socket hang up', 'ECONNRESET'), 'ECONNRESET socket hang up'],
    ['an Error whose message names its code: not repeated', withCode('connect ECONNREFUSED 127.0.0.1:7000', 'ECONNREFUSED'), 'connect ECONNREFUSED 127.0.0.1:7000'],
    ['an Error without a code: its message', new Error('other side closed'), 'other side closed'],
    ['the code of a nested cause', new Error('fetch failed', { cause: { code: 'ENOTFOUND' } }), 'ENOTFOUND fetch failed'],
    ['a code that is not a string: the nested one instead', withCode('write failed', 32, { cause: { code: 'EPIPE' } }), 'EPIPE write failed'],
    ['a nested code that is not a string: no label', new Error('reset', { cause: { code: 104 } }), 'reset'],
    ['an empty message with a code', withCode('', 'ECONNRESET'), 'ECONNRESET request failed'],
    ['an empty message without a code', new Error(''), 'request failed'],
    ['an object with a code and no message', { code: 'ECONNRESET' }, 'ECONNRESET request failed'],
    ['a string, as it is', 'socket hang up', 'socket hang up'],
  ];

  it.each(cases)('%s', async (_, cause, reason) => {
    const failing = createMswAgent([http.get(`${API}/${SVC}`, () => HttpResponse.error())], { networkError: () => cause as Error });
    try {
      const error = await rejectionOf(hubClient({ dispatcher: failing }).request('GET', SVC));
      expect(error).toBeInstanceOf(HubUnreachableError);
      expect((error as Error).message).toBe(`hub ${HUB} unreachable: ${reason}`);
      expect((error as Error).cause).toBe(cause);
    } finally {
      await failing.close();
    }
  });
});

describe('readObject: the JSON object of --file, "-" or stdin', () => {
  const contextFor = (flags: FlagValues, stdin?: InputStream, command = 'set') =>
    new CommandContext({
      hub: hubClient(),
      globals: { hubUrl: HUB, apiKey: undefined, json: false, timeoutMs: 5_000 },
      args: [SVC],
      flags,
      palette: NO_COLOR_PALETTE,
      io: { stdout: { write: () => true }, stderr: { write: () => true }, env: {}, stdin },
      command,
    });
  const stdinOf = (...chunks: Array<string | Uint8Array>): InputStream => Readable.from(chunks);
  const fileWith = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  /** The usage error readObject refuses with: its message (and that it points at the command). */
  async function refusal(flags: FlagValues, stdin?: InputStream): Promise<string> {
    const error = await rejectionOf(contextFor(flags, stdin).readObject('whole config'));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(2);
    return (error as UsageError).message;
  }

  it('reads the file of --file; "-" and no --file read stdin', async () => {
    const path = fileWith('input.json', '{"from":"file"}');
    expect(await contextFor({ file: path }, stdinOf('{"from":"stdin"}')).readObject('whole config')).toEqual({ from: 'file' });
    expect(await contextFor({ file: '-' }, stdinOf('{"from":"stdin"}')).readObject('whole config')).toEqual({ from: 'stdin' });
    expect(await contextFor({}, stdinOf('{"from":', Buffer.from('"stdin"}'))).readObject('whole config')).toEqual({ from: 'stdin' });
  });

  it('a terminal on stdin is refused, not read: the command needs --file or a pipe', async () => {
    const terminal = Object.assign(stdinOf('{"a":1}'), { isTTY: true });
    const error = (await rejectionOf(contextFor({ file: '-' }, terminal).readObject('whole config'))) as UsageError;
    expect(error).toBeInstanceOf(UsageError);
    expect([error.message, error.command]).toEqual(['set needs the whole config: pass --file F or pipe the JSON on stdin', 'set']);
    expect(await refusal({}, undefined)).toBe('set needs the whole config: pass --file F or pipe the JSON on stdin');
  });

  it('a file that cannot be read is named with its errno code', async () => {
    const path = join(dir, 'missing.json');
    const error = (await rejectionOf(contextFor({ file: path }).readObject('whole config'))) as UsageError;
    expect([error.message, error.command]).toEqual([`cannot read ${path}: ENOENT`, 'set']);
  });

  it('empty and whitespace-only input is "empty", naming the source and what was expected', async () => {
    expect(await refusal({}, stdinOf(''))).toBe('stdin is empty: expected a JSON object (the whole config)');
    expect(await refusal({ file: '-' }, stdinOf(' \n\t '))).toBe('stdin is empty: expected a JSON object (the whole config)');
    const path = fileWith('blank.json', '  \n');
    expect(await refusal({ file: path })).toBe(`${path} is empty: expected a JSON object (the whole config)`);
  });

  it('a byte order mark is stripped at the start only', async () => {
    expect(await contextFor({}, stdinOf('\uFEFF{"a":1}')).readObject('whole config')).toEqual({ a: 1 });
    expect(await contextFor({}, stdinOf('{"a":"\uFEFF"}')).readObject('whole config')).toEqual({ a: '\uFEFF' });
  });

  it.each(['[1]', '[]', 'null', '42', '"text"', 'true'])('JSON that is not an object (%s) is refused', async (text) => {
    expect(await refusal({}, stdinOf(text))).toBe('stdin must hold a JSON object (the whole config)');
  });

  it('a file of exactly MAX_INPUT_BYTES is read; one byte more is refused naming the file and the cap', async () => {
    const atCap = fileWith('at-cap.json', objectOfBytes(MAX_INPUT_BYTES));
    expect(((await contextFor({ file: atCap }).readObject('whole config')).pad as string).length).toBe(MAX_INPUT_BYTES - 10);
    const over = fileWith('over-cap.json', objectOfBytes(MAX_INPUT_BYTES + 1));
    expect(await refusal({ file: over })).toBe(`${over} is larger than ${MAX_INPUT_BYTES} bytes`);
  });

  it('stdin of exactly MAX_INPUT_BYTES (in chunks) is read', async () => {
    const text = objectOfBytes(MAX_INPUT_BYTES);
    const half = MAX_INPUT_BYTES / 2;
    const value = await contextFor({}, stdinOf(text.slice(0, half), Buffer.from(text.slice(half)))).readObject('whole config');
    expect((value.pad as string).length).toBe(MAX_INPUT_BYTES - 10);
  });

  it('stdin is refused at the chunk that crosses MAX_INPUT_BYTES, and not read any further', async () => {
    let readPast = false;
    async function* endless(): AsyncGenerator<string> {
      yield objectOfBytes(MAX_INPUT_BYTES + 1);
      readPast = true;
    }
    expect(await refusal({}, endless())).toBe(`stdin is larger than ${MAX_INPUT_BYTES} bytes`);
    expect(readPast).toBe(false);
  });

  it("stdin over MAX_INPUT_BYTES names the command's own help page, as every other input error does", async () => {
    expect(await run(['set', SVC], { stdin: objectOfBytes(MAX_INPUT_BYTES + 1) })).toEqual({
      code: 2,
      stdout: '',
      stderr: `central-hub: stdin is larger than ${MAX_INPUT_BYTES} bytes\nRun 'central-hub help set' for usage.\n`,
    });
  });

  it('each command names what it reads (the whole config, the merge patch, the config to check)', async () => {
    const hint = (command: string) => `Run 'central-hub help ${command}' for usage.\n`;
    expect(await run(['set', SVC], { stdin: '' })).toEqual({ code: 2, stdout: '', stderr: `central-hub: stdin is empty: expected a JSON object (the whole config)\n${hint('set')}` });
    expect(await run(['patch', SVC], { stdin: '' })).toEqual({ code: 2, stdout: '', stderr: `central-hub: stdin is empty: expected a JSON object (the merge patch)\n${hint('patch')}` });
    expect(await run(['validate', SVC], { stdin: '' })).toEqual({
      code: 2,
      stdout: '',
      stderr: `central-hub: stdin is empty: expected a JSON object (the config to check)\n${hint('validate')}`,
    });
    expect(agent.requests).toEqual([]);
  });
});

describe('--json documents', () => {
  it('are pretty with sorted keys on a terminal and one compact line otherwise', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json(doc(7, { z: 1, a: 2 }))));
    const tty = await run(['get', SVC, '--json'], { isTTY: true });
    expect(tty.stdout).toBe(`${canonicalPretty(doc(7, { z: 1, a: 2 }))}\n`);
    expect(tty.stdout.split('\n').length).toBeGreaterThan(2);
    const piped = await run(['get', SVC, '--json']);
    expect(piped.stdout).toBe(`${JSON.stringify(doc(7, { z: 1, a: 2 }))}\n`);
  });
});

describe('refusal lines', () => {
  it('issueLines: one line per issue, path (string or array, else (root)), message (else invalid), keyword when given', () => {
    expect(
      issueLines([
        { path: 'operational.batch_size', message: 'must be > 0', keyword: 'exclusiveMinimum' },
        { path: ['a', 'b'], message: 'must be string' },
        { path: [], message: 'not an object' },
        { path: '', message: 'empty path' },
        { path: 7, message: 'odd path' },
        { message: { nested: true } },
        {},
      ]),
    ).toEqual([
      '  operational.batch_size: must be > 0 (exclusiveMinimum)',
      '  a.b: must be string',
      '  (root): not an object',
      '  (root): empty path',
      '  (root): odd path',
      '  (root): {"nested":true}',
      '  (root): invalid',
    ]);
  });

  it('issueLines: an issue that is not an object is printed as JSON text; the indent is the caller’s', () => {
    expect(issueLines(['plain text', null, [1, 2], 42, undefined], '>')).toEqual(['>plain text', '>null', '>[1,2]', '>42', '>undefined']);
  });

  it.each([undefined, null, 'issues', { path: 'a' }])('issueLines of %j (not an array) is no line', (issues) => {
    expect(issueLines(issues)).toEqual([]);
  });

  it('consumerLines: schema hash cut to 12 characters (…) only when longer, instances (else ?), ids only when some, then the issues', () => {
    expect(
      consumerLines([
        { schema_hash: 'f'.repeat(64), instances: 3, instance_ids: ['a', 'b'], issues: [{ path: 'x', message: 'bad' }] },
        { schema_hash: '123456789012', instances: 1, instance_ids: [] },
        { schema_hash: '1234567890123' },
        { schema_hash: 'abc', instance_ids: [7] },
        {},
        'not a consumer',
        null,
        [1],
      ]),
    ).toEqual([
      '  schema ffffffffffff…, 3 instance(s): a, b',
      '    x: bad',
      '  schema 123456789012, 1 instance(s)',
      '  schema 123456789012…, ? instance(s)',
      '  schema abc, ? instance(s): 7',
      '  schema ?, ? instance(s)',
    ]);
  });

  it.each([undefined, {}, 'consumers'])('consumerLines of %j (not an array) is no line', (consumers) => {
    expect(consumerLines(consumers)).toEqual([]);
  });

  it('describeRefusal: issues, consumers, unchecked, unknown schemas and paths, each only when non-empty, in that order', () => {
    expect(
      describeRefusal({
        detail: 'refused',
        paths: ['db.password', 'api.token'],
        unknown_schemas: ['b'.repeat(64), 'short'],
        unchecked: [{ path: 'operational', kind: 'refinement', schema_hash: 'c'.repeat(64) }, { schema_hash: 'abc' }, 'raw'],
        consumers: [{ schema_hash: 'd'.repeat(13), instances: 2 }],
        issues: [{ path: 'a', message: 'must be string', keyword: 'type' }],
      }),
    ).toEqual([
      'issues:',
      '  a: must be string (type)',
      'consumers that would reject it:',
      '  schema dddddddddddd…, 2 instance(s)',
      'not checked (JSON Schema cannot express them; the clients still check):',
      '  operational: refinement (schema cccccccccccc…)',
      '  (root): ? (schema abc)',
      '  raw',
      'schemas the hub does not hold (not checked): bbbbbbbbbbbb…, short',
      'paths: db.password, api.token',
    ]);
  });

  it('describeRefusal: no body, only a detail, empty lists or lists that are not arrays give no line', () => {
    expect(describeRefusal(undefined)).toEqual([]);
    expect(describeRefusal({ detail: 'only this' })).toEqual([]);
    expect(describeRefusal({ issues: [], consumers: [], unchecked: [], unknown_schemas: [], paths: [] })).toEqual([]);
    expect(describeRefusal({ issues: 'x', consumers: 'y', unchecked: 'z', unknown_schemas: 'w', paths: 'v' })).toEqual([]);
  });
});

describe('validate', () => {
  const validateRoute = `${API}/${SVC}/validate`;
  const answer = (body: Record<string, unknown>, status = 200) => agent.use(http.post(validateRoute, () => HttpResponse.json(body, { status })));

  it('valid without consumers: one line, "no running consumer reported a schema"', async () => {
    answer({ valid: true });
    expect(await run(['validate', SVC], { stdin: '{"a":1}' })).toEqual({ code: 0, stdout: `valid: ${SVC} accepts it (no running consumer reported a schema)\n`, stderr: '' });
    answer({ valid: true, consumers: [], unchecked: [], unknown_schemas: [] });
    expect((await run(['validate', SVC], { stdin: '{"a":1}' })).stdout).toBe(`valid: ${SVC} accepts it (no running consumer reported a schema)\n`);
  });

  it('valid with consumers: how many, the consumers, then what was not checked', async () => {
    answer({
      valid: true,
      consumers: [{ schema_hash: 'a'.repeat(64), instances: 2, instance_ids: ['x', 'y'], issues: [] }],
      unchecked: [{ schema_hash: 'a'.repeat(64), path: 'operational', kind: 'refinement' }],
      unknown_schemas: ['e'.repeat(64)],
    });
    const { code, stdout, stderr } = await run(['validate', SVC], { stdin: '{"a":1}' });
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout.split('\n')).toEqual([
      `valid: ${SVC} accepts it (checked against 1 consumer schema(s))`,
      '  schema aaaaaaaaaaaa…, 2 instance(s): x, y',
      'not checked (JSON Schema cannot express them; the clients still check):',
      '  operational: refinement (schema aaaaaaaaaaaa…)',
      'schemas the hub does not hold (not checked): eeeeeeeeeeee…',
      '',
    ]);
  });

  it('--json prints the answer and nothing else', async () => {
    const body = { valid: true, consumers: [{ schema_hash: 'abc', instances: 1 }] };
    answer(body);
    expect(await run(['validate', SVC, '--json'], { stdin: '{"a":1}' })).toEqual({ code: 0, stdout: `${JSON.stringify(body)}\n`, stderr: '' });
  });

  it('a 200 saying valid: false exits 1 "invalid" with the explanation (--json: the answer on stdout)', async () => {
    const body = { valid: false, issues: [{ path: 'a', message: 'must be string', keyword: 'type' }] };
    answer(body);
    expect(await run(['validate', SVC], { stdin: '{"a":1}' })).toEqual({ code: 1, stdout: '', stderr: 'central-hub: invalid\nissues:\n  a: must be string (type)\n' });
    const json = await run(['validate', SVC, '--json'], { stdin: '{"a":1}' });
    expect([json.code, json.stdout]).toEqual([1, `${JSON.stringify(body)}\n`]);
  });

  it('a 422 exits 1 "invalid: <detail>" with its details, nothing on stdout', async () => {
    answer({ detail: '1 consumer (1 instance) would reject this config', issues: [{ path: 'a', message: 'must be string', keyword: 'type' }] }, 422);
    expect(await run(['validate', SVC], { stdin: '{"a":1}' })).toEqual({
      code: 1,
      stdout: '',
      stderr: 'central-hub: invalid: 1 consumer (1 instance) would reject this config\nissues:\n  a: must be string (type)\n',
    });
  });

  it('a 422 that is not JSON: --json prints {valid: false, detail: the message}', async () => {
    agent.use(http.post(validateRoute, () => new HttpResponse('Unprocessable', { status: 422 })));
    expect(await run(['validate', SVC, '--json'], { stdin: '{"a":1}' })).toEqual({
      code: 1,
      stdout: `${JSON.stringify({ valid: false, detail: 'hub refused (HTTP 422): HTTP 422' })}\n`,
      stderr: 'central-hub: invalid: HTTP 422\n',
    });
  });

  it('a 405 "No route …" is also an older hub without the validate route', async () => {
    answer({ detail: `No route POST /api/v1/config/${SVC}/validate` }, 405);
    expect(await run(['validate', SVC], { stdin: '{}' })).toEqual({
      code: 1,
      stdout: '',
      stderr: `central-hub: hub ${HUB} has no validate route (No route POST /api/v1/config/${SVC}/validate)\n`,
    });
  });

  it.each([
    ['a 404 for another reason', 404, { detail: `no config for service '${SVC}'` }, `hub refused (HTTP 404): no config for service '${SVC}'`, 1],
    ['a "no route" detail with another status', 400, { detail: 'no route to the schema registry' }, 'hub refused (HTTP 400): no route to the schema registry', 1],
    ['a 404 that is not JSON', 404, undefined, 'hub refused (HTTP 404): HTTP 404', 1],
    ['a 503', 503, { detail: 'no route to the database' }, `hub ${HUB} failed (HTTP 503): no route to the database`, 3],
  ])('%s is passed on as it is', async (_, status, body, message, exitCode) => {
    agent.use(http.post(validateRoute, () => (body === undefined ? new HttpResponse('Not Found', { status }) : HttpResponse.json(body, { status }))));
    expect(await run(['validate', SVC], { stdin: '{}' })).toEqual({ code: exitCode, stdout: '', stderr: `central-hub: ${message}\n` });
  });
});

describe('writes', () => {
  it.each([['   '], ['']])('--force with a blank change reason (%j) is a usage error, and nothing is sent', async (reason) => {
    expect(await run(['set', SVC, '--force', '--change-reason', reason], { stdin: '{"a":1}' })).toEqual({
      code: 2,
      stdout: '',
      stderr: "central-hub: --force needs --change-reason: the override is recorded in the history\nRun 'central-hub help set' for usage.\n",
    });
    expect(agent.requests).toEqual([]);
  });

  it('--if-match and --revision name their bounds and the command', async () => {
    expect(await run(['set', SVC, '--if-match', 'seven'], { stdin: '{"a":1}' })).toEqual({
      code: 2,
      stdout: '',
      stderr: `central-hub: --if-match must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}, not 'seven'\nRun 'central-hub help set' for usage.\n`,
    });
    expect(await run(['rollback', SVC, '--revision', '0'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `central-hub: --revision must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}, not '0'\nRun 'central-hub help rollback' for usage.\n`,
    });
    expect(agent.requests).toEqual([]);
  });

  it('a hub that serves no revision cannot be written to without --if-match: exit 1, nothing written', async () => {
    agent.use(reads(() => HttpResponse.json(doc(undefined, { a: 1 }))));
    expect(await run(['set', SVC], { stdin: '{"a":2}' })).toEqual({
      code: 1,
      stdout: '',
      stderr: `central-hub: hub ${HUB} serves no revision for '${SVC}', so the write cannot name its base: pass --if-match N\n`,
    });
    expect(requestsOf('POST')).toEqual([]);
  });

  it('with --if-match there is no base config: the summary line only, no diff, nothing on stderr', async () => {
    agent.use(http.post(`${API}/${SVC}`, () => written(6, { a: 1 }, { forced: false })));
    expect(await run(['set', SVC, '--if-match', '5'], { stdin: '{"a":1}' })).toEqual({
      code: 0,
      stdout: `updated ${SVC}: revision 5 → 6, version 1.0.0, broadcast sent\n`,
      stderr: '',
    });
  });

  it('a forced write says so on stderr, with the issues it overrode', async () => {
    agent.use(http.post(`${API}/${SVC}`, () => written(6, { a: -1 }, { forced: true, issues: [{ path: 'a', message: 'must be > 0', keyword: 'exclusiveMinimum' }] })));
    expect(await run(['set', SVC, '--if-match', '5', '--force', '--change-reason', 'incident 42'], { stdin: '{"a":-1}' })).toEqual({
      code: 0,
      stdout: `updated ${SVC}: revision 5 → 6, version 1.0.0, broadcast sent\n`,
      stderr: 'forced: committed although running consumers would reject it\n  a: must be > 0 (exclusiveMinimum)\n',
    });
  });

  it('patch sends --version-tag as the version', async () => {
    agent.use(http.patch(`${API}/${SVC}`, () => written(4, { a: 1 })));
    expect((await run(['patch', SVC, '--if-match', '3', '--version-tag', '2.0.0'], { stdin: '{"a":1}' })).code).toBe(0);
    expect(new URL(requestsOf('PATCH')[0]!.url).searchParams.get('version')).toBe('2.0.0');
  });

  const consumers = [{ schema_hash: 'f'.repeat(64), instances: 1 }];
  it.each([
    [
      'a 422 without consumers (secret-looking keys): its paths, no --force hint',
      422,
      { detail: 'secret-looking keys are not accepted', paths: ['db.password'] },
      [],
      'hub refused (HTTP 422): secret-looking keys are not accepted\npaths: db.password\n',
    ],
    [
      'a 422 with consumers under --force: no --force hint',
      422,
      { detail: 'refused even forced', consumers },
      ['--force', '--change-reason', 'r'],
      'hub refused (HTTP 422): refused even forced\nconsumers that would reject it:\n  schema ffffffffffff…, 1 instance(s)\n',
    ],
    [
      'a 403 whose body lists consumers: no --force hint',
      403,
      { detail: 'API key may not write', consumers },
      [],
      'hub refused (HTTP 403): API key may not write\nconsumers that would reject it:\n  schema ffffffffffff…, 1 instance(s)\n',
    ],
    ['a 422 that is not JSON', 422, undefined, [], 'hub refused (HTTP 422): HTTP 422\n'],
  ])('%s', async (_, status, body, flags, stderr) => {
    agent.use(http.post(`${API}/${SVC}`, () => (body === undefined ? new HttpResponse('Unprocessable', { status }) : HttpResponse.json(body, { status }))));
    expect(await run(['set', SVC, '--if-match', '5', ...flags], { stdin: '{"a":1}' })).toEqual({ code: 1, stdout: '', stderr: `central-hub: ${stderr}` });
  });

  it('a 503 on a write stays "failed" (exit 3), with or without --force', async () => {
    agent.use(http.post(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'database unavailable', consumers }, { status: 503 })));
    const expected = { code: 3, stdout: '', stderr: `central-hub: hub ${HUB} failed (HTTP 503): database unavailable\n` };
    expect(await run(['set', SVC, '--if-match', '5'], { stdin: '{"a":1}' })).toEqual(expected);
    expect(await run(['set', SVC, '--if-match', '5', '--force', '--change-reason', 'r'], { stdin: '{"a":1}' })).toEqual(expected);
  });

  it.each([
    ['an empty history', []],
    ['a history entry without a revision', [{ ...entry(1, { a: 1 }, 'deleted'), revision: undefined }]],
  ])('rollback of a service without config and %s is "no config", nothing written', async (_, history) => {
    agent.use(reads(notFound), http.get(`${API}/history/${SVC}`, () => HttpResponse.json({ service_name: SVC, history, total: history.length, limit: 1 })));
    expect(await run(['rollback', SVC, '--revision', '1'])).toEqual({ code: 1, stdout: '', stderr: `central-hub: hub refused (HTTP 404): no config for service '${SVC}'\n` });
    expect(requestsOf('POST')).toEqual([]);
  });
});

describe('a 412 conflict', () => {
  const conflictOn = (method: 'post' | 'patch', body: unknown) =>
    http[method](`${API}/${SVC}`, () => (body === undefined ? new HttpResponse('Precondition Failed', { status: 412 }) : HttpResponse.json(body, { status: 412 })));
  const mismatch = 'revision mismatch: If-Match 4, current 5';
  /** The hub of one run: fresh handlers (their answer sequences start over). */
  const serving = (...handlers: Parameters<MswAgent['use']>) => {
    agent.resetHandlers();
    agent.use(...handlers);
  };

  it('deleted meanwhile, the 412 naming the revision: how to re-create it on purpose (--json: current null)', async () => {
    const hub = () => serving(reads(() => HttpResponse.json(doc(4, { a: 1 })), notFound), conflictOn('post', { detail: mismatch, revision: 5 }));
    hub();
    expect(await run(['set', SVC], { stdin: '{"a":2}' })).toEqual({
      code: 1,
      stdout: '',
      stderr: `${CONFLICT} 4, the one this edit was based on; nothing was written\n'${SVC}' was deleted (revision 5); to re-create it on purpose: --if-match 5\n`,
    });
    hub();
    const json = await run(['set', SVC, '--json'], { stdin: '{"a":2}' });
    expect(JSON.parse(json.stdout)).toEqual({
      error: { status: 412, detail: mismatch, expected_revision: 4, current_revision: 5, current: null, changes: null },
    });
  });

  it.each([
    ['without a revision', { detail: mismatch }],
    ['with a revision that is not a number', { detail: mismatch, revision: '5' }],
  ])('deleted meanwhile, the 412 %s: "has no config now"', async (_, body) => {
    agent.use(reads(() => HttpResponse.json(doc(4, { a: 1 })), notFound), conflictOn('post', body));
    expect(await run(['set', SVC], { stdin: '{"a":2}' })).toEqual({
      code: 1,
      stdout: '',
      stderr: `${CONFLICT} 4, the one this edit was based on; nothing was written\n'${SVC}' has no config now (deleted meanwhile)\n`,
    });
  });

  it('a 412 that is not JSON: the --json detail is the message', async () => {
    agent.use(reads(() => HttpResponse.json(doc(4, { a: 1 })), notFound), conflictOn('post', undefined));
    const { code, stdout, stderr } = await run(['set', SVC, '--json'], { stdin: '{"a":2}' });
    expect(code).toBe(1);
    expect(stderr).toBe(`${CONFLICT} 4, the one this edit was based on; nothing was written\n'${SVC}' has no config now (deleted meanwhile)\n`);
    expect(JSON.parse(stdout)).toEqual({
      error: { status: 412, detail: 'hub refused (HTTP 412): HTTP 412', expected_revision: 4, current_revision: null, current: null, changes: null },
    });
  });

  it('the current config cannot be read: the conflict line alone, the revision taken from the 412', async () => {
    const hub = () =>
      serving(
        reads(() => HttpResponse.json(doc(4, { a: 1 })), () => HttpResponse.json({ detail: 'database unavailable' }, { status: 503 })),
        conflictOn('post', { detail: mismatch, revision: 5 }),
      );
    hub();
    expect(await run(['set', SVC], { stdin: '{"a":2}' })).toEqual({ code: 1, stdout: '', stderr: `${CONFLICT} 4, the one this edit was based on; nothing was written\n` });
    hub();
    const json = await run(['set', SVC, '--json'], { stdin: '{"a":2}' });
    expect(JSON.parse(json.stdout)).toEqual({
      error: { status: 412, detail: mismatch, expected_revision: 4, current_revision: 5, current: null, changes: null },
    });
  });

  it('only the revision moved, and my config is the current one: "the config is the same", no "differs" line', async () => {
    const hub = () => serving(reads(() => HttpResponse.json(doc(7, { a: 1 })), () => HttpResponse.json(doc(8, { a: 1 }))), conflictOn('post', { detail: 'revision mismatch' }));
    hub();
    expect(await run(['set', SVC], { stdin: '{"a":1}' })).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        `${CONFLICT} 7, the one this edit was based on; nothing was written`,
        `the hub is at revision 8 now (version 1.0.0, updated ${UPDATED})`,
        'what changed meanwhile:',
        '  (the config is the same; only its revision moved)',
        're-read and retry, or after checking the diff: --if-match 8',
        '',
      ].join('\n'),
    });
    hub();
    const json = await run(['set', SVC, '--json'], { stdin: '{"a":1}' });
    // The 412 names no revision: the current one comes from the re-read document.
    expect(JSON.parse(json.stdout)).toEqual({
      error: { status: 412, detail: 'revision mismatch', expected_revision: 7, current_revision: 8, current: doc(8, { a: 1 }), changes: [] },
    });
  });

  it('a patch based on --if-match N whose revision is not in the recent history: no diff, and no "differs" line (a patch is not the config)', async () => {
    agent.use(reads(() => HttpResponse.json(doc(9, { a: 3 }))), historyOf(entry(9, { a: 3 }), entry(8, { a: 2 })), conflictOn('patch', { detail: 'revision mismatch', revision: 9 }));
    expect(await run(['patch', SVC, '--if-match', '5'], { stdin: '{"b":1}' })).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        `${CONFLICT} 5, the one this edit was based on; nothing was written`,
        `the hub is at revision 9 now (version 1.0.0, updated ${UPDATED})`,
        '(revision 5 is not in the recent history: no diff)',
        're-read and retry, or after checking the diff: --if-match 9',
        '',
      ].join('\n'),
    });
  });

  it('a patch based on --if-match N whose revision is a delete: said so, and the diff starts from an empty config (--json: every path added)', async () => {
    const hub = () =>
      serving(reads(() => HttpResponse.json(doc(9, { a: 3 }))), historyOf(entry(9, { a: 3 }), entry(5, null, 'deleted')), conflictOn('patch', { detail: 'revision mismatch', revision: 9 }));
    hub();
    const { code, stderr } = await run(['patch', SVC, '--if-match', '5'], { stdin: '{"b":1}' });
    expect(code).toBe(1);
    expect(stderr).toContain('(revision 5 was a delete: the diff starts from an empty config)\nwhat changed meanwhile:\n');
    expect(stderr).toContain('+  "a": 3');
    expect(stderr).not.toContain('not in the recent history');
    hub();
    const json = await run(['patch', SVC, '--if-match', '5', '--json'], { stdin: '{"b":1}' });
    expect(JSON.parse(json.stdout).error.changes).toEqual([{ path: 'a', op: 'add', to: 3 }]);
  });

  it('where my config differs from the current one, a top-level key "" is shown as (root)', async () => {
    agent.use(reads(() => HttpResponse.json(doc(7, { a: 1 })), () => HttpResponse.json(doc(8, { a: 1 }))), conflictOn('post', { detail: 'revision mismatch', revision: 8 }));
    const { code, stderr } = await run(['set', SVC], { stdin: '{"":true,"a":2}' });
    expect(code).toBe(1);
    expect(stderr.split('\n').filter((line) => line.startsWith('your config'))).toEqual(['your config differs from the current one at: (root), a']);
  });
});
