/**
 * The CLI's `watch` (polling and `--nats`), `diff` and the read views, and the parts they are built from
 * (args.ts, format.ts, hub-api.ts, json-diff.ts), at their edges, found by mutation testing (`npm run
 * test:mutation`): the exact lines `watch` prints in human and --json mode (the announce, each change, the
 * creation and the deletion, an outage reported once and its end), when it checks (at once, every interval,
 * on each notice, a burst of notices coalesced into one more check) and when it stops (SIGINT/SIGTERM, the
 * caller's signal, a refusal) leaving no listener, request or NATS connection behind; the labels and JSON of
 * `diff`; every hub answer that breaks the wire contract, named; the parser's and the formatters' boundaries.
 *
 * The hub is answered through the msw ↔ undici bridge (test/helpers/lab/msw-undici.ts). NATS is never faked:
 * the shared nats-server at 127.0.0.1:4222 carries the notices (one service name per test: other test files
 * share the server), reached directly or through a TCP proxy that drops, resets or blackholes connections; the
 * client-name and permission cases use one private nats-server with a users block.
 */
import { randomUUID } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { delay, HttpResponse, http } from 'msw';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseInvocation, parseIntArg, stringFlag } from '../../src/cli/args.js';
import { openNotices } from '../../src/cli/commands/watch-nats.js';
import type { CommandContext } from '../../src/cli/context.js';
import { ANSI_PALETTE, cell, formatTime, NO_COLOR_PALETTE, printable, renderDiff, table } from '../../src/cli/format.js';
import { generalHelp, commandHelp } from '../../src/cli/help.js';
import { canonicalPretty, changedPaths, diffLines, hunks, unifiedJsonDiff } from '../../src/cli/json-diff.js';
import { type CliIo, type ExitCode, runCli } from '../../src/cli/main.js';
import { createMswAgent, type MswAgent } from '../helpers/lab/msw-undici.js';
import { type NatsServerHandle, startNatsServer } from '../helpers/lab/nats-server.js';
import { freePort } from '../helpers/lab/ports.js';
import { startTcpProxy, type TcpProxy } from '../helpers/lab/tcp-proxy.js';
import { bounded, sleep, waitFor } from '../helpers/settle.js';

const HUB = 'http://hub.test';
const API = `${HUB}/api/v1/config`;
const SVC = 'tick-aggregator';
const ENV = { CENTRAL_HUB_URL: HUB, CENTRAL_HUB_API_KEY: 'cli-test-key' };
const SHARED_NATS = 'nats://127.0.0.1:4222';
/** 2025-10-09T08:53:20Z: `updated_at` of revision r is T0 + r ms (the milliseconds are not printed). */
const T0 = 1_760_000_000_000;
const AT = '2025-10-09T08:53:20Z';

let agent: MswAgent;
const cleanups: Array<() => Promise<unknown>> = [];
beforeEach(() => {
  agent = createMswAgent([]);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await agent.close();
});

interface Result {
  code: ExitCode;
  stdout: string;
  stderr: string;
}

interface Session {
  readonly done: Promise<Result>;
  stdout(): string;
  stderr(): string;
  /** Aborts the signal handed to the CLI (like Ctrl-C). */
  stop(): void;
}

interface StartOptions {
  stdin?: string;
  isTTY?: boolean;
  env?: Record<string, string>;
  /** The signal handed to the CLI; `null`: none (only SIGINT/SIGTERM end a watch). Default: one `stop()` aborts. */
  signal?: AbortSignal | null;
}

/** `runCli` in process; a watch left running by a failing test is stopped after it. */
function start(argv: string[], options: StartOptions = {}): Session {
  const controller = new AbortController();
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { ...ENV, ...options.env },
    stdin: options.stdin === undefined ? undefined : Readable.from([options.stdin]),
    isTTY: options.isTTY,
    dispatcher: agent,
    signal: options.signal === null ? undefined : (options.signal ?? controller.signal),
  };
  const done = runCli(argv, io).then((code) => ({ code, stdout, stderr }));
  cleanups.push(async () => {
    controller.abort();
    await bounded(done, 'the CLI after the test', 2_000);
  });
  return { done, stdout: () => stdout, stderr: () => stderr, stop: () => controller.abort() };
}

const run = (argv: string[], options: StartOptions = {}): Promise<Result> => bounded(start(argv, options).done, `central-hub ${argv.join(' ')}`);

const doc = (service: string, revision: number, config: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  service_name: service,
  config,
  version: '1.0.0',
  updated_at: T0 + revision,
  revision,
  ...extra,
});
const etagOf = (revision: number): string => `"${revision}-x"`;

type Answer = (request: Request) => Response;
/** The config at `revision` with its ETag; 304 when the request names that ETag. */
const current =
  (service: string, revision: number, config: Record<string, unknown>, extra: Record<string, unknown> = {}): Answer =>
  (request) =>
    request.headers.get('if-none-match') === etagOf(revision)
      ? new HttpResponse(null, { status: 304 })
      : HttpResponse.json(doc(service, revision, config, extra), { headers: { etag: etagOf(revision) } });
/** The same document without an ETag (a hub or proxy that drops it): a 200 every time. */
const untagged =
  (service: string, revision: number, config: Record<string, unknown>, extra: Record<string, unknown> = {}): Answer =>
  () =>
    HttpResponse.json(doc(service, revision, config, extra));
const missing: Answer = () => HttpResponse.json({ detail: 'no config' }, { status: 404 });
const failing =
  (status: number, detail: string): Answer =>
  () =>
    HttpResponse.json({ detail }, { status });

/** GET /api/v1/config/{service} answered by `answers` in turn, the last one for good. */
function scripted(service: string, answers: Answer[]): void {
  let at = 0;
  agent.use(http.get(`${API}/${service}`, ({ request }) => answers[Math.min(at++, answers.length - 1)]!(request)));
}

/** The GETs of one service's config the hub answered (conditional ones included). */
const configGets = (service: string): Request[] => agent.requests.filter((r) => r.method === 'GET' && new URL(r.url).pathname === `/api/v1/config/${service}`);

const announce = (service: string, at: string, how: string): string => `# watching ${service} at ${at}, by ${how}; Ctrl-C ends\n`;
const atRevision = (revision: number, version = '1.0.0', time = AT): string => `revision ${revision} (version ${version}, updated ${time})`;

describe('watch: when it checks and when it stops', () => {
  it('announces the revision on stderr after one GET, then polls with If-None-Match; 304s print nothing', async () => {
    scripted(SVC, [current(SVC, 1, { a: 1 })]);
    const watch = start(['watch', SVC, '--interval-ms', '100']);
    await waitFor(() => configGets(SVC).length >= 4, 'three polls');
    watch.stop();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stdout).toBe('');
    // Nothing but the announce: no "answers again" after each good check, no NATS subscription.
    expect(stderr).toBe(announce(SVC, atRevision(1), 'polling every 100 ms'));
    const conditional = configGets(SVC).map((r) => r.headers.get('if-none-match'));
    expect(conditional.slice(0, 4)).toEqual([null, etagOf(1), etagOf(1), etagOf(1)]);
  });

  it('without --interval-ms it polls every 2000 ms (the default)', async () => {
    scripted(SVC, [current(SVC, 3, {}, { version: null })]);
    const watch = start(['watch', SVC]);
    await waitFor(() => watch.stderr() !== '', 'the announce');
    watch.stop();
    const { code, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    // A version the hub does not have is the empty string of the wire contract, printed as "-".
    expect(stderr).toBe(announce(SVC, `revision 3 (version -, updated ${AT})`, 'polling every 2000 ms'));
    expect(configGets(SVC)).toHaveLength(1);
  });

  it('SIGINT ends it with exit 0 (the first check does not wait for the interval); its SIGINT/SIGTERM listeners are removed', async () => {
    scripted(SVC, [current(SVC, 1, { a: 1 })]);
    const sigint = process.listeners('SIGINT');
    const sigterm = process.listeners('SIGTERM');
    const watch = start(['watch', SVC, '--interval-ms', '60000'], { signal: null });
    await waitFor(() => watch.stderr() !== '', 'the announce', 2_000);
    const addedInt = process.listeners('SIGINT').filter((l) => !sigint.includes(l));
    const addedTerm = process.listeners('SIGTERM').filter((l) => !sigterm.includes(l));
    expect(addedInt).toHaveLength(1);
    expect(addedTerm).toHaveLength(1);
    // What Ctrl-C does: the process emits SIGINT to its listeners.
    (addedInt[0] as () => void)();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch after SIGINT');
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toBe(announce(SVC, atRevision(1), 'polling every 60000 ms'));
    expect(configGets(SVC)).toHaveLength(1);
    expect(process.listeners('SIGINT')).toEqual(sigint);
    expect(process.listeners('SIGTERM')).toEqual(sigterm);
  });

  it('SIGTERM ends it too', async () => {
    scripted(SVC, [current(SVC, 1, { a: 1 })]);
    const sigterm = process.listeners('SIGTERM');
    const watch = start(['watch', SVC, '--interval-ms', '60000'], { signal: null });
    await waitFor(() => watch.stderr() !== '', 'the announce', 2_000);
    const added = process.listeners('SIGTERM').filter((l) => !sigterm.includes(l));
    expect(added).toHaveLength(1);
    (added[0] as () => void)();
    expect((await bounded(watch.done, 'the watch after SIGTERM')).code).toBe(0);
    expect(configGets(SVC)).toHaveLength(1);
    expect(process.listeners('SIGTERM')).toEqual(sigterm);
  });

  it('a signal aborted before the start ends it at once, silently, with exit 0', async () => {
    scripted(SVC, [current(SVC, 1, { a: 1 })]);
    const aborted = new AbortController();
    aborted.abort();
    const { code, stdout, stderr } = await run(['watch', SVC, '--interval-ms', '100'], { signal: aborted.signal });
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(configGets(SVC)).toHaveLength(0);
  });

  it('a refusal of the first check exits 1 at once: no poll follows', async () => {
    scripted(SVC, [failing(401, 'key revoked')]);
    const { code, stdout, stderr } = await run(['watch', SVC, '--interval-ms', '100']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe('central-hub: hub refused (HTTP 401): key revoked\n');
    await sleep(220);
    expect(configGets(SVC)).toHaveLength(1);
  });

  it('a first check that breaks the wire contract exits 3 and names the config document', async () => {
    scripted(SVC, [() => HttpResponse.json({ service_name: SVC, config: [1], updated_at: 1 })]);
    const { code, stderr } = await run(['watch', SVC, '--interval-ms', '100']);
    expect(code).toBe(3);
    expect(stderr).toBe(`central-hub: hub ${HUB} sent a config document that does not follow the wire contract: config Invalid input\n`);
    expect(configGets(SVC)).toHaveLength(1);
  });

  it('a refusal while watching ends it with exit 1, and leaves no poll, process listener or abort listener behind', async () => {
    scripted(SVC, [current(SVC, 1, { a: 1 }), current(SVC, 1, { a: 1 }), failing(403, 'key may not read')]);
    const external = new AbortController();
    const sigint = process.listeners('SIGINT');
    const watch = start(['watch', SVC, '--interval-ms', '100'], { signal: external.signal });
    await waitFor(() => watch.stderr() !== '', 'the announce');
    expect(getEventListeners(external.signal, 'abort')).toHaveLength(1);
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(`${announce(SVC, atRevision(1), 'polling every 100 ms')}central-hub: hub refused (HTTP 403): key may not read\n`);
    expect(configGets(SVC)).toHaveLength(3);
    await sleep(250);
    expect(configGets(SVC)).toHaveLength(3);
    expect(getEventListeners(external.signal, 'abort')).toHaveLength(0);
    expect(process.listeners('SIGINT')).toEqual(sigint);
  });

  it('stopped while a check is in flight: exit 0 and no "still watching" for the aborted request', async () => {
    let gets = 0;
    let stuck!: () => void;
    const inFlight = new Promise<void>((resolve) => {
      stuck = resolve;
    });
    agent.use(
      http.get(`${API}/${SVC}`, async ({ request }) => {
        if (++gets === 2) {
          stuck();
          await delay('infinite');
        }
        return current(SVC, 1, { a: 1 })(request);
      }),
    );
    const watch = start(['watch', SVC, '--interval-ms', '100']);
    await bounded(inFlight, 'the second GET');
    watch.stop();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: '', stderr: announce(SVC, atRevision(1), 'polling every 100 ms') });
    expect(gets).toBe(2);
  });

  it('an outage is reported once when it starts, again only when its reason changes, and once when it ends', async () => {
    scripted(SVC, [
      current(SVC, 1, { a: 1 }),
      failing(503, 'database unavailable'),
      failing(503, 'database unavailable'),
      failing(500, 'disk full'),
      current(SVC, 1, { a: 1 }),
    ]);
    const watch = start(['watch', SVC, '--interval-ms', '100']);
    await waitFor(() => watch.stderr().includes('answers again'), 'the recovery');
    await waitFor(() => configGets(SVC).length >= 6, 'one more poll');
    watch.stop();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      announce(SVC, atRevision(1), 'polling every 100 ms') +
        `# hub ${HUB} failed (HTTP 503): database unavailable; still watching\n` +
        `# hub ${HUB} failed (HTTP 500): disk full; still watching\n` +
        `# ${HUB} answers again\n`,
    );
  });

  it('stopping leaves no timer behind: the interval sleep is cancelled with the watch', async () => {
    scripted(SVC, [current(SVC, 1, { a: 1 })]);
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    // Let the test runner's own throttled report timer (100 ms) fire first.
    await sleep(150);
    const before = timers();
    const watch = start(['watch', SVC, '--interval-ms', '60000']);
    await waitFor(() => watch.stderr() !== '', 'the announce');
    expect(timers()).toBe(before + 1);
    watch.stop();
    expect((await bounded(watch.done, 'the watch')).code).toBe(0);
    await sleep(20);
    expect(timers()).toBe(before);
    expect(configGets(SVC)).toHaveLength(1);
  });
});

describe('watch: what it prints', () => {
  it('a change: one line with the old and the new revision and the changed paths, then the diff', async () => {
    scripted(SVC, [current(SVC, 1, { a: 1, b: 1 }), current(SVC, 2, { a: 2, b: 1, c: true }, { version: '1.1.0' })]);
    const watch = start(['watch', SVC, '--interval-ms', '100']);
    await waitFor(() => watch.stdout().endsWith(' }\n'), 'the change');
    watch.stop();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stderr).toBe(announce(SVC, atRevision(1), 'polling every 100 ms'));
    expect(stdout).toBe(
      [
        `${AT} ${SVC} revision 1 → 2 (version 1.1.0): a, c`,
        `--- ${SVC}@1`,
        `+++ ${SVC}@2`,
        '@@ -1,4 +1,5 @@',
        ' {',
        '-  "a": 1,',
        '-  "b": 1',
        '+  "a": 2,',
        '+  "b": 1,',
        '+  "c": true',
        ' }',
        '',
      ].join('\n'),
    );
  });

  it('a new revision with the same config says "(no config change)" and prints no diff', async () => {
    scripted(SVC, [current(SVC, 1, { a: 1 }), current(SVC, 2, { a: 1 }, { version: '1.0.1' })]);
    const watch = start(['watch', SVC, '--interval-ms', '100']);
    await waitFor(() => watch.stdout() !== '', 'the change');
    await waitFor(() => configGets(SVC).length >= 3, 'one more poll');
    watch.stop();
    const { stdout } = await bounded(watch.done, 'the watch');
    expect(stdout).toBe(`${AT} ${SVC} revision 1 → 2 (version 1.0.1): (no config change)\n`);
  });

  it('without ETags every poll is a 200: the same revision and timestamp is no change', async () => {
    scripted(SVC, [untagged(SVC, 1, { a: 1 })]);
    const watch = start(['watch', SVC, '--interval-ms', '100']);
    await waitFor(() => configGets(SVC).length >= 4, 'three polls');
    watch.stop();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toBe(announce(SVC, atRevision(1), 'polling every 100 ms'));
    expect(configGets(SVC).map((r) => r.headers.get('if-none-match'))).toEqual(configGets(SVC).map(() => null));
  });

  it('without ETags a new timestamp of the same revision is a change, and so is a new revision of the same timestamp', async () => {
    const later = { updated_at: T0 + 60_000 };
    scripted(SVC, [untagged(SVC, 1, { a: 1 }), untagged(SVC, 1, { a: 1 }, later), untagged(SVC, 2, { a: 1 }, later)]);
    const watch = start(['watch', SVC, '--interval-ms', '100']);
    await waitFor(() => watch.stdout().split('\n').length > 2, 'two changes');
    await waitFor(() => configGets(SVC).length >= 5, 'one more poll');
    watch.stop();
    const { stdout } = await bounded(watch.done, 'the watch');
    expect(stdout).toBe(
      `2025-10-09T08:54:20Z ${SVC} revision 1 → 1 (version 1.0.0): (no config change)\n` +
        `2025-10-09T08:54:20Z ${SVC} revision 1 → 2 (version 1.0.0): (no config change)\n`,
    );
  });

  it('from a missing config: "no config yet", a repeated 404 is no event, the creation diffs from (none), then the deletion', async () => {
    scripted(SVC, [missing, missing, current(SVC, 1, { a: 1 }), missing, missing]);
    const watch = start(['watch', SVC, '--interval-ms', '100']);
    await waitFor(() => watch.stdout().includes(' deleted '), 'the deletion');
    await waitFor(() => configGets(SVC).length >= 6, 'one more poll');
    watch.stop();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stderr).toBe(announce(SVC, 'no config yet', 'polling every 100 ms'));
    const lines = stdout.split('\n');
    expect(lines.slice(0, 8)).toEqual([`${AT} ${SVC} created 1 (version 1.0.0): a`, '--- (none)', `+++ ${SVC}@1`, '@@ -1,1 +1,3 @@', '-{}', '+{', '+  "a": 1', '+}']);
    expect(lines[8]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ ${SVC} deleted \\(was revision 1\\)$`));
    expect(lines.slice(9)).toEqual(['']);
  });

  it('--json: one document per line — absent, the change (previous_revision null, the paths), deleted with the revision it had', async () => {
    scripted(SVC, [missing, current(SVC, 1, { a: 1 }), missing]);
    const watch = start(['watch', SVC, '--interval-ms', '100', '--json']);
    await waitFor(() => watch.stdout().split('\n').length > 3, 'three documents');
    watch.stop();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout.trimEnd().split('\n').map((l) => JSON.parse(l))).toEqual([
      { event: 'absent', service_name: SVC },
      { event: 'change', ...doc(SVC, 1, { a: 1 }), previous_revision: null, changes: [{ path: 'a', op: 'add', to: 1 }] },
      { event: 'deleted', service_name: SVC, previous_revision: 1 },
    ]);
  });

  it('--json: the current document first, then changes naming the revision they replace', async () => {
    scripted(SVC, [current(SVC, 4, { n: 4 }), current(SVC, 5, { n: 5 })]);
    const watch = start(['watch', SVC, '--interval-ms', '100', '--json']);
    await waitFor(() => watch.stdout().split('\n').length > 2, 'two documents');
    watch.stop();
    const { stdout } = await bounded(watch.done, 'the watch');
    expect(stdout.trimEnd().split('\n').map((l) => JSON.parse(l))).toEqual([
      { event: 'current', ...doc(SVC, 4, { n: 4 }) },
      { event: 'change', ...doc(SVC, 5, { n: 5 }), previous_revision: 4, changes: [{ path: 'n', op: 'replace', from: 4, to: 5 }] },
    ]);
  });
});

describe('watch --nats (a real nats-server)', () => {
  let pub: NatsConnection;
  beforeAll(async () => {
    pub = await connect({ servers: SHARED_NATS });
  });
  afterAll(async () => {
    await pub?.close();
  });

  const uniqueService = (): string => `cli-watch-${randomUUID().slice(0, 8)}`;
  const notify = async (service: string, payload = '{"unused":true}'): Promise<void> => {
    pub.publish(`config.update.${service}`, new TextEncoder().encode(payload));
    await pub.flush();
  };
  async function proxy(): Promise<TcpProxy> {
    const p = await startTcpProxy({ target: { port: 4222 } });
    cleanups.push(() => p.close());
    return p;
  }
  /** The hub holds `state.revision` (config `{ n: revision }`); 304 when the request names its ETag. */
  function hubAt(service: string, state: { revision: number }): void {
    agent.use(http.get(`${API}/${service}`, ({ request }) => current(service, state.revision, { n: state.revision })(request)));
  }

  it('subscribes after one refetch, refetches on each notice (its payload is never read), polls no more, and closes its connection', async () => {
    const service = uniqueService();
    const state = { revision: 1 };
    hubAt(service, state);
    const p = await proxy();
    const url = p.url('nats');
    const watch = start(['watch', service, '--nats', url]);
    await waitFor(() => watch.stderr().includes('# subscribed'), 'the subscription');
    expect(watch.stderr()).toBe(`${announce(service, atRevision(1, '1.0.0', AT), `NATS notices from ${url}`)}# subscribed to config.update.${service} at ${url}\n`);
    expect(p.totalConnections).toBe(1);
    expect(p.connections).toBe(1);
    // The first GET and the refetch once subscribed; nothing more while no notice comes (no polling).
    expect(configGets(service)).toHaveLength(2);
    await sleep(150);
    expect(configGets(service)).toHaveLength(2);
    state.revision = 2;
    await notify(service, 'not even JSON');
    await waitFor(() => watch.stdout().endsWith(' }\n'), 'the change');
    expect(configGets(service)).toHaveLength(3);
    watch.stop();
    const { code, stdout } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe(`${AT} ${service} revision 1 → 2 (version 1.0.0): n`);
    await waitFor(() => p.connections === 0, 'the NATS connection closed');
  });

  it('a burst of notices during a refetch coalesces into exactly one more refetch, which sees the newest revision', async () => {
    const service = uniqueService();
    const state = { revision: 1 };
    let gets = 0;
    let held!: () => void;
    const holding = new Promise<void>((resolve) => {
      held = resolve;
    });
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    agent.use(
      http.get(`${API}/${service}`, async ({ request }) => {
        gets++;
        const answer = current(service, state.revision, { n: state.revision })(request);
        if (gets === 3) {
          held();
          await released;
        }
        return answer;
      }),
    );
    const watch = start(['watch', service, '--nats', SHARED_NATS]);
    await waitFor(() => watch.stderr().includes('# subscribed'), 'the subscription');
    expect(gets).toBe(2);
    state.revision = 2;
    await notify(service);
    await bounded(holding, 'the refetch of the first notice');
    // Three more notices while that refetch is held; the hub moves on to revision 3 meanwhile.
    state.revision = 3;
    for (let i = 0; i < 3; i++) await notify(service);
    await sleep(200);
    expect(gets).toBe(3);
    release();
    await waitFor(() => watch.stdout().includes(`revision 2 → 3`), 'the change to revision 3');
    await sleep(200);
    expect(gets).toBe(4);
    watch.stop();
    const { code, stdout } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stdout.split('\n').filter((l) => l.startsWith(AT))).toEqual([
      `${AT} ${service} revision 1 → 2 (version 1.0.0): n`,
      `${AT} ${service} revision 2 → 3 (version 1.0.0): n`,
    ]);
  });

  it('--nats with --interval-ms polls as well, and says both', async () => {
    const service = uniqueService();
    hubAt(service, { revision: 1 });
    const watch = start(['watch', service, '--nats', SHARED_NATS, '--interval-ms', '100']);
    await waitFor(() => configGets(service).length >= 5, 'polls besides the notices');
    watch.stop();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      `${announce(service, atRevision(1), `NATS notices from ${SHARED_NATS} and polling every 100 ms`)}# subscribed to config.update.${service} at ${SHARED_NATS}\n`,
    );
  });

  it('a NATS outage: says so, keeps reconnecting past a failed attempt, and refetches once back (the notices meanwhile are lost)', async () => {
    const service = uniqueService();
    const state = { revision: 1 };
    hubAt(service, state);
    const p = await proxy();
    const url = p.url('nats');
    const watch = start(['watch', service, '--nats', url]);
    await waitFor(() => watch.stderr().includes('# subscribed'), 'the subscription');
    // Every reconnect attempt is accepted and reset until restore().
    await p.break('reset');
    await waitFor(() => watch.stderr().includes('disconnected'), 'the disconnect');
    state.revision = 2;
    await notify(service);
    await waitFor(() => p.totalConnections >= 2, 'a failed reconnect attempt', 3_000);
    await p.restore();
    await waitFor(() => p.connections === 1 && watch.stdout().endsWith(' }\n'), 'the reconnect and the refetch after it', 4_000);
    watch.stop();
    const { code, stdout, stderr } = await bounded(watch.done, 'the watch');
    expect(code).toBe(0);
    expect(stderr).toBe(
      announce(service, atRevision(1), `NATS notices from ${url}`) +
        `# subscribed to config.update.${service} at ${url}\n` +
        '# NATS disconnected; reconnecting\n' +
        '# NATS reconnected; refetching (notices sent meanwhile are lost)\n',
    );
    expect(stdout.split('\n')[0]).toBe(`${AT} ${service} revision 1 → 2 (version 1.0.0): n`);
    expect(configGets(service)).toHaveLength(3);
  });

  it('an unreachable NATS exits 3 naming the URL, after the announce', async () => {
    const service = uniqueService();
    hubAt(service, { revision: 1 });
    const url = `nats://127.0.0.1:${await freePort()}`;
    const { code, stdout, stderr } = await run(['watch', service, '--nats', url]);
    expect(code).toBe(3);
    expect(stdout).toBe('');
    expect(stderr).toBe(`${announce(service, atRevision(1), `NATS notices from ${url}`)}central-hub: NATS ${url} unreachable: CONNECTION_REFUSED\n`);
    expect(configGets(service)).toHaveLength(1);
  });

  it('a NATS server that accepts but never answers: the connect gives up after --timeout-ms', async () => {
    const service = uniqueService();
    hubAt(service, { revision: 1 });
    const p = await proxy();
    await p.break('blackhole');
    const url = p.url('nats');
    const started = Date.now();
    const { code, stderr } = await bounded(start(['watch', service, '--nats', url, '--timeout-ms', '300']).done, 'the watch', 4_000);
    expect(code).toBe(3);
    expect(stderr).toBe(`${announce(service, atRevision(1), `NATS notices from ${url}`)}central-hub: NATS ${url} unreachable: TIMEOUT\n`);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(p.totalConnections).toBe(1);
  });

  it('openNotices keeps the NATS error as the cause of its exit-3 error', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const lines: string[] = [];
    const ctx = { globals: { timeoutMs: 1_000 }, service: 'svc', err: (...l: string[]) => lines.push(...l) } as unknown as CommandContext;
    const failure = await openNotices(ctx, url, async () => undefined, new AbortController().signal).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ exitCode: 3, message: `NATS ${url} unreachable: CONNECTION_REFUSED`, cause: expect.objectContaining({ code: 'CONNECTION_REFUSED' }) });
    expect(lines).toEqual([]);
  });

  describe('a nats-server with permissions (private)', () => {
    const DENIED = 'cli-denied';
    let server: NatsServerHandle;
    beforeAll(async () => {
      server = await startNatsServer({
        config: `authorization {
          users = [
            { user: "cli", password: "x", permissions: { subscribe: { allow: [">"], deny: ["config.update.${DENIED}"] } } }
          ]
        }
        no_auth_user: "cli"`,
      });
    });
    afterAll(async () => {
      await server?.dispose();
    });

    it('identifies itself as central-hub-cli', async () => {
      const ALLOWED = 'cli-allowed';
      hubAt(ALLOWED, { revision: 1 });
      const watch = start(['watch', ALLOWED, '--nats', server.url]);
      await waitFor(() => watch.stderr().includes('# subscribed'), 'the subscription');
      const connz = await server.monitor<{ connections: Array<{ name?: string }> }>('connz');
      expect(connz.connections.map((c) => c.name)).toEqual(['central-hub-cli']);
      watch.stop();
      const { code } = await bounded(watch.done, 'the watch');
      expect(code).toBe(0);
      // The first read, then the refetch once the subscription is in place.
      expect(configGets(ALLOWED)).toHaveLength(2);
    });

    it('a subscription the server refuses ends the watch: exit 1 naming the subject and the reason, no refetch, the connection closed', async () => {
      hubAt(DENIED, { revision: 1 });
      const watch = start(['watch', DENIED, '--nats', server.url]);
      const { code, stderr } = await bounded(watch.done, 'the watch');
      expect(code).toBe(1);
      expect(stderr).toBe(
        announce(DENIED, atRevision(1), `NATS notices from ${server.url}`) +
          `central-hub: NATS refused the subscription to config.update.${DENIED}: 'Permissions Violation for Subscription to "config.update.${DENIED}"'\n`,
      );
      // The first read only: no refetch for a subscription that never was.
      expect(configGets(DENIED)).toHaveLength(1);
      const connz = await server.monitor<{ connections: Array<{ name?: string }> }>('connz');
      expect(connz.connections).toEqual([]);
    });

    it('with --json a refused subscription prints {error: {status: null, detail}} as the last line, the cause kept off stdout', async () => {
      hubAt(DENIED, { revision: 1 });
      const { code, stdout } = await run(['watch', DENIED, '--nats', server.url, '--json']);
      expect(code).toBe(1);
      const lines = stdout.trimEnd().split('\n');
      expect(JSON.parse(lines.at(-1)!)).toEqual({
        error: { status: null, detail: `NATS refused the subscription to config.update.${DENIED}: 'Permissions Violation for Subscription to "config.update.${DENIED}"'` },
      });
      expect(configGets(DENIED)).toHaveLength(1);
    });
  });
});

describe('diff', () => {
  const entry = (revision: number, config: Record<string, unknown>) => ({
    version: '1.0.0',
    action: 'updated',
    changed_by: 'admin',
    changed_at: T0 + revision,
    change_reason: null,
    config,
    revision,
  });
  const historyOf = (...entries: ReturnType<typeof entry>[]) =>
    http.get(`${API}/history/${SVC}`, () => HttpResponse.json({ service_name: SVC, history: entries, total: entries.length, limit: 100 }));
  const historyGets = (): number => agent.requests.filter((r) => new URL(r.url).pathname === `/api/v1/config/history/${SVC}`).length;

  it('a revision against a file: the diff and the --json document are labelled with the file name', async () => {
    agent.use(historyOf(entry(2, { a: 1, b: 2 })));
    const dir = await mkdtemp(join(tmpdir(), 'cli-diff-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'tick.json');
    await writeFile(file, '{"a":1,"b":3}');
    const human = await run(['diff', SVC, '2', '--file', file]);
    expect(human).toEqual({
      code: 0,
      stdout: `--- ${SVC}@2\n+++ ${file}\n@@ -1,4 +1,4 @@\n {\n   "a": 1,\n-  "b": 2\n+  "b": 3\n }\n`,
      stderr: '',
    });
    const json = await run(['diff', SVC, '2', '--file', file, '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ service_name: SVC, from: { revision: 2 }, to: { file }, equal: false, changes: [{ path: 'b', op: 'replace', from: 2, to: 3 }] });
    expect(historyGets()).toBe(2);
  });

  it('a revision against stdin is labelled stdin; equal configs say so on stderr', async () => {
    agent.use(historyOf(entry(2, { a: 1 })));
    const changed = await run(['diff', SVC, '2', '--file', '-'], { stdin: '{"a":2}' });
    expect(changed).toEqual({ code: 0, stdout: `--- ${SVC}@2\n+++ stdin\n@@ -1,3 +1,3 @@\n {\n-  "a": 1\n+  "a": 2\n }\n`, stderr: '' });
    const equal = await run(['diff', SVC, '2', '--file', '-'], { stdin: '{"a":1}' });
    expect(equal).toEqual({ code: 0, stdout: '', stderr: `# no differences between ${SVC}@2 and stdin\n` });
    expect(historyGets()).toBe(2);
  });

  it('two revisions: the diff is labelled with both; --json names them both, equal is true when nothing changed', async () => {
    agent.use(historyOf(entry(4, { a: 2 }), entry(3, { a: 1 }), entry(2, { a: 1 })));
    const human = await run(['diff', SVC, '3', '4']);
    expect(human).toEqual({ code: 0, stdout: `--- ${SVC}@3\n+++ ${SVC}@4\n@@ -1,3 +1,3 @@\n {\n-  "a": 1\n+  "a": 2\n }\n`, stderr: '' });
    const { code, stdout } = await run(['diff', SVC, '2', '3', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ service_name: SVC, from: { revision: 2 }, to: { revision: 3 }, equal: true, changes: [] });
    expect(historyGets()).toBe(2);
  });

  it('a revision the history does not have, compared with a file, exits 1 naming it', async () => {
    agent.use(historyOf(entry(2, { a: 1 })));
    const { code, stdout, stderr } = await run(['diff', SVC, '5', '--file', '-'], { stdin: '{"a":1}' });
    expect({ code, stdout, stderr }).toEqual({ code: 1, stdout: '', stderr: `central-hub: revision 5 of '${SVC}' is not among its last 100 history entries\n` });
    expect(historyGets()).toBe(1);
  });

  it('the file is read before the hub is asked: without stdin it is a usage error naming "the config to compare"', async () => {
    agent.use(historyOf(entry(2, { a: 1 })));
    const { code, stdout, stderr } = await run(['diff', SVC, '2', '--file', '-']);
    expect({ code, stdout, stderr }).toEqual({
      code: 2,
      stdout: '',
      stderr: "central-hub: diff needs the config to compare: pass --file F or pipe the JSON on stdin\nRun 'central-hub help diff' for usage.\n",
    });
    expect(historyGets()).toBe(0);
  });

  it('a revision that is not a decimal integer is a usage error giving the range and the diff usage', async () => {
    const { code, stderr } = await run(['diff', SVC, 'one', '2']);
    expect(code).toBe(2);
    expect(stderr).toBe("central-hub: a revision must be an integer from 0 to 9007199254740991, not 'one'\nRun 'central-hub help diff' for usage.\n");
    expect(agent.requests).toHaveLength(0);
  });
});

describe('get, instances, patch: what the read views print', () => {
  const instance = (extra: Record<string, unknown>) => ({
    instance_id: 'web-1',
    host: 'h1',
    pid: 10,
    client_version: '0.1.0',
    revision: 4,
    source: 'hub',
    stale: false,
    last_seen: T0,
    last_error: null,
    schema_hash: null,
    ...extra,
  });
  const view = (instances: unknown[], extra: Record<string, unknown> = {}) => ({
    service_name: SVC,
    revision: 4,
    instances,
    summary: { total: instances.length, on_latest: instances.length, behind: 0, rejected: 0 },
    ...extra,
  });
  const serveInstances = (body: Record<string, unknown>) => agent.use(http.get(`${API}/${SVC}/instances`, () => HttpResponse.json(body)));

  it('instances without instances prints the summary line only', async () => {
    serveInstances(view([]));
    const { code, stdout } = await run(['instances', SVC]);
    expect(code).toBe(0);
    expect(stdout).toBe(`${SVC} at revision 4: 0 instance(s), 0 on latest, 0 behind, 0 rejected\n`);
    expect(agent.requests).toHaveLength(1);
  });

  it('instances: a blank line before the table; an absent stale is "no", absent times and texts are "-"', async () => {
    serveInstances(view([instance({ stale: null, last_seen: null, host: null, source: undefined })]));
    const { code, stdout } = await run(['instances', SVC]);
    expect(code).toBe(0);
    expect(stdout).toBe(
      `${SVC} at revision 4: 1 instance(s), 1 on latest, 0 behind, 0 rejected\n` +
        '\n' +
        'INSTANCE  HOST  PID  CLIENT  REVISION  SOURCE  STALE  LAST SEEN  ERROR  SCHEMA\n' +
        'web-1     -     10   0.1.0   4         -       no     -          -      -\n',
    );
    const json = await run(['instances', SVC, '--json']);
    expect(JSON.parse(json.stdout).instances).toEqual([
      { instance_id: 'web-1', host: null, pid: 10, client_version: '0.1.0', revision: 4, source: null, stale: false, last_seen: null, last_error: null, schema_hash: null },
    ]);
  });

  it('patch of a service the hub does not have: exit 1, and --json gives the 404 document with its detail', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'no config' }, { status: 404 })));
    const { code, stdout, stderr } = await run(['patch', SVC, '--json'], { stdin: '{"a":1}' });
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toEqual({ error: { status: 404, detail: `no config for service '${SVC}'` } });
    expect(stderr).toBe(`central-hub: hub refused (HTTP 404): no config for service '${SVC}'\n`);
    expect(agent.requests.map((r) => r.method)).toEqual(['GET']);
  });
});

describe('hub answers: refusals, failures and broken answers', () => {
  it.each([
    [400, {}, 'hub refused (HTTP 400): HTTP 400'],
    [400, { detail: null }, 'hub refused (HTTP 400): HTTP 400'],
    [409, { detail: { code: 'locked', by: 'admin' } }, 'hub refused (HTTP 409): {"code":"locked","by":"admin"}'],
    [422, { detail: 'secret-looking keys are not accepted' }, 'hub refused (HTTP 422): secret-looking keys are not accepted'],
  ])('a %i with %j exits 1 with "%s"', async (status, body, message) => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json(body, { status })));
    const { code, stdout, stderr } = await run(['get', SVC]);
    expect({ code, stdout, stderr }).toEqual({ code: 1, stdout: '', stderr: `central-hub: ${message}\n` });
    expect(agent.requests).toHaveLength(1);
  });

  it('a 3xx other than 304 is not a document: exit 1', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json(doc(SVC, 1, { a: 1 }), { status: 300 })));
    const { code, stdout, stderr } = await run(['get', SVC]);
    expect({ code, stdout, stderr }).toEqual({ code: 1, stdout: '', stderr: 'central-hub: hub refused (HTTP 300): HTTP 300\n' });
    expect(agent.requests).toHaveLength(1);
  });

  it('a 5xx with --json: the error document carries the status', async () => {
    agent.use(http.get(`${API}/${SVC}`, () => HttpResponse.json({ detail: 'database unavailable' }, { status: 503 })));
    const { code, stdout } = await run(['get', SVC, '--json']);
    expect(code).toBe(3);
    expect(JSON.parse(stdout)).toEqual({ error: { status: 503, detail: `hub ${HUB} failed (HTTP 503): database unavailable` } });
    expect(agent.requests).toHaveLength(1);
  });

  const written = { status: 'updated', service_name: SVC, config: { a: 1 }, version: '1.0.0', updated_at: 1, updated_by: 'admin', broadcast: 'sent', revision: 8 };
  const broken = { ...written, broadcast: 'maybe' };
  const brokenWrite = 'broadcast Invalid option: expected one of "sent"|"unavailable"|"failed"';
  const contract = (what: string, where: string): string => `central-hub: hub ${HUB} sent ${what} that does not follow the wire contract: ${where}\n`;
  it.each([
    ['get', ['get', SVC], () => [http.get(`${API}/${SVC}`, () => HttpResponse.json('not a document'))], contract('a config document', '(root) Invalid input: expected object, received string')],
    [
      'set',
      ['set', SVC],
      () => [http.get(`${API}/${SVC}`, () => HttpResponse.json(doc(SVC, 7, { a: 0 }))), http.post(`${API}/${SVC}`, () => HttpResponse.json(broken))],
      contract('a write answer', brokenWrite),
    ],
    [
      'patch',
      ['patch', SVC],
      () => [http.get(`${API}/${SVC}`, () => HttpResponse.json(doc(SVC, 7, { a: 0 }))), http.patch(`${API}/${SVC}`, () => HttpResponse.json(broken))],
      contract('a write answer', brokenWrite),
    ],
    [
      'rollback',
      ['rollback', SVC, '--revision', '3'],
      () => [http.get(`${API}/${SVC}`, () => HttpResponse.json(doc(SVC, 7, { a: 0 }))), http.post(`${API}/rollback/${SVC}`, () => HttpResponse.json(broken))],
      contract('a write answer', brokenWrite),
    ],
    [
      'history',
      ['history', SVC],
      () => [http.get(`${API}/history/${SVC}`, () => HttpResponse.json({ service_name: SVC, history: [], total: -1, limit: 10 }))],
      contract('a history', 'total Too small: expected number to be >=0'),
    ],
    [
      'validate',
      ['validate', SVC],
      () => [http.post(`${API}/${SVC}/validate`, () => HttpResponse.json({ consumers: [] }))],
      contract('a validation answer', 'valid Invalid input: expected boolean, received undefined'),
    ],
    [
      'instances (an instance)',
      ['instances', SVC],
      () => [
        http.get(`${API}/${SVC}/instances`, () =>
          HttpResponse.json({ service_name: SVC, revision: 1, instances: [{ instance_id: 'a', pid: 'ten' }], summary: { total: 1, on_latest: 1, behind: 0, rejected: 0 } }),
        ),
      ],
      contract('an instances view', 'instances.0.pid Invalid input: expected number, received string'),
    ],
    [
      'instances (the summary)',
      ['instances', SVC],
      () => [http.get(`${API}/${SVC}/instances`, () => HttpResponse.json({ service_name: SVC, revision: 1, instances: [], summary: { total: 0 } }))],
      contract('an instances view', 'summary.on_latest Invalid input: expected number, received undefined'),
    ],
    [
      'instances (the view)',
      ['instances', SVC],
      () => [http.get(`${API}/${SVC}/instances`, () => HttpResponse.json({ revision: 1, instances: [], summary: { total: 0, on_latest: 0, behind: 0, rejected: 0 } }))],
      contract('an instances view', 'service_name Invalid input: expected string, received undefined'),
    ],
  ])('%s: an answer that breaks the contract exits 3 naming what and where', async (_name, argv, handlers, message) => {
    agent.use(...handlers());
    const { code, stdout, stderr } = await run(argv as string[], { stdin: '{"a":1}' });
    expect({ code, stdout, stderr }).toEqual({ code: 3, stdout: '', stderr: message });
    expect(agent.requests.length).toBeGreaterThan(0);
  });
});

describe('argument parsing at its edges', () => {
  const cli = (argv: string[]): Promise<Result> => run(argv);

  it("'--' ends the flags: the token after it is the command, even one that starts with '-'", async () => {
    expect(parseInvocation(['--', 'get', 'svc'], {})).toMatchObject({ kind: 'run', command: 'get', args: ['svc'] });
    expect(await cli(['--', '-x'])).toEqual({ code: 2, stdout: '', stderr: "central-hub: unknown command '-x'\nRun 'central-hub --help' for usage.\n" });
  });

  it("a lone '-' is a command name, not a flag", async () => {
    expect(await cli(['-', 'x'])).toEqual({ code: 2, stdout: '', stderr: "central-hub: unknown command '-'\nRun 'central-hub --help' for usage.\n" });
  });

  it("an unknown flag: node's hint about positionals is cut from the message", async () => {
    expect(await cli(['get', SVC, '--bogus'])).toEqual({ code: 2, stdout: '', stderr: "central-hub: Unknown option '--bogus'\nRun 'central-hub help get' for usage.\n" });
  });

  it('help: with no topic the general help, with one the command help, with two a usage error', async () => {
    expect(await cli(['help'])).toEqual({ code: 0, stdout: generalHelp(), stderr: '' });
    expect(await cli(['help', 'watch'])).toEqual({ code: 0, stdout: commandHelp('watch'), stderr: '' });
    expect(await cli(['help', 'get', 'set'])).toEqual({ code: 2, stdout: '', stderr: "central-hub: help takes at most one command\nRun 'central-hub help help' for usage.\n" });
  });

  it('missing arguments after the service name the synopsis', async () => {
    expect(await cli(['diff', SVC])).toEqual({
      code: 2,
      stdout: '',
      stderr: "central-hub: missing arguments: central-hub diff <service> <revA> <revB> | <service> <rev> --file F\nRun 'central-hub help diff' for usage.\n",
    });
  });

  it('an https hub URL is accepted; another scheme is not', () => {
    expect(parseInvocation(['get', 'svc', '--hub', 'https://hub.example:8443'], {})).toMatchObject({ kind: 'run', globals: { hubUrl: 'https://hub.example:8443' } });
    expect(() => parseInvocation(['get', 'svc', '--hub', 'ws://hub.example'], {})).toThrow("hub URL 'ws://hub.example' is not an http(s) URL");
  });

  it('stringFlag gives strings only: a boolean or repeated flag is undefined', () => {
    expect(stringFlag({ file: 'f.json', force: true, many: ['a', 'b'] }, 'file')).toBe('f.json');
    expect(stringFlag({ file: 'f.json', force: true, many: ['a', 'b'] }, 'force')).toBeUndefined();
    expect(stringFlag({ file: 'f.json', force: true, many: ['a', 'b'] }, 'many')).toBeUndefined();
  });

  it('parseIntArg takes decimal digits only, from min to max inclusive', () => {
    const bounds = { min: 1, max: 100, command: 'history' };
    expect(parseIntArg('1', '--limit', bounds)).toBe(1);
    expect(parseIntArg('100', '--limit', bounds)).toBe(100);
    expect(parseIntArg('007', '--limit', bounds)).toBe(7);
    for (const raw of ['0', '101', '+5', ' 5', '5 ', '5.0', '1e1', '0x10', '-1', '']) {
      expect(() => parseIntArg(raw, '--limit', bounds), raw).toThrow(`--limit must be an integer from 1 to 100, not '${raw}'`);
    }
    expect(() => parseIntArg('9007199254740993', 'a revision', { min: 0, max: Number.MAX_SAFE_INTEGER })).toThrow('a revision must be an integer');
  });
});

describe('formatting', () => {
  it('formatTime: absent is "-", a string is kept as sent, epoch ms is ISO without milliseconds', () => {
    expect(formatTime(null)).toBe('-');
    expect(formatTime(undefined)).toBe('-');
    expect(formatTime('2025-10-09T08:53:20.123Z')).toBe('2025-10-09T08:53:20.123Z');
    expect(formatTime('yesterday')).toBe('yesterday');
    expect(formatTime(T0 + 999)).toBe(AT);
    expect(formatTime(0)).toBe('1970-01-01T00:00:00Z');
    expect(formatTime(Number.NaN)).toBe('NaN');
  });

  it('cell: null, undefined and the empty string are "-"; anything else as text', () => {
    expect([cell(null), cell(undefined), cell(''), cell('x'), cell(0), cell(false)]).toEqual(['-', '-', '-', 'x', '0', 'false']);
  });

  it('printable: C0 controls, DEL and the C1 range U+0080–U+009F are "?", a tab a space, the rest kept', () => {
    expect(printable('a\u0000b\u001fc\u007fd\u0080e\u009ff\u00a0g\u007eh\ti')).toBe('a?b?c?d?e?f\u00a0g~h i');
  });

  it('table: a row shorter than the header pads nothing for the missing cells; an empty last cell leaves no trailing space', () => {
    expect(table(['A', 'BB', 'C'], [['x']])).toEqual(['A  BB  C', 'x']);
    expect(table(['A', 'B'], [['long', ''], ['y', 'z']])).toEqual(['A     B', 'long', 'y     z']);
  });

  it('renderDiff colours removals red and additions green; headers bold, ranges cyan, context lines plain', () => {
    const lines = renderDiff(unifiedJsonDiff({ a: 1, k: true }, { a: 2, k: true }), 'svc@1', 'svc@2', ANSI_PALETTE);
    expect(lines).toEqual([
      '\u001b[1m--- svc@1\u001b[22m',
      '\u001b[1m+++ svc@2\u001b[22m',
      '\u001b[36m@@ -1,4 +1,4 @@\u001b[39m',
      ' {',
      '\u001b[31m-  "a": 1,\u001b[39m',
      '\u001b[32m+  "a": 2,\u001b[39m',
      '   "k": true',
      ' }',
    ]);
    expect(renderDiff(unifiedJsonDiff({ a: 1 }, { a: 2 }), 'x\u001by', 'z', NO_COLOR_PALETTE).slice(0, 2)).toEqual(['--- x?y', '+++ z']);
  });
});

describe('JSON diff at its edges', () => {
  const lines = (n: number): string[] => Array.from({ length: n }, (_, i) => `l${i + 1}`);
  const ranges = (a: string[], b: string[]) => hunks(diffLines(a, b)).map((h) => [h.aStart, h.aLen, h.bStart, h.bLen]);

  it('the edit script is minimal where ties between a removal and an addition are possible', () => {
    expect(diffLines(['c', 'a', 'b', 'b'], ['a', 'c', 'a'])).toEqual([
      { op: '+', line: 'a' },
      { op: ' ', line: 'c' },
      { op: ' ', line: 'a' },
      { op: '-', line: 'b' },
      { op: '-', line: 'b' },
    ]);
  });

  it('a hunk ends 3 lines after its last change, also after a lone removal', () => {
    // One removal near the top: lines 1–5 of a, 1–4 of b.
    expect(ranges(lines(20), lines(20).filter((l) => l !== 'l2'))).toEqual([[1, 5, 1, 4]]);
    // A second, distant hunk that is a lone removal: 3 lines of context on both sides.
    const b = lines(30)
      .map((l) => (l === 'l2' ? 'L2' : l))
      .filter((l) => l !== 'l15');
    expect(ranges(lines(30), b)).toEqual([
      [1, 5, 1, 5],
      [12, 7, 12, 6],
    ]);
  });

  it('changes 6 unchanged lines apart share a hunk; 7 apart they do not', () => {
    const a = lines(20);
    expect(ranges(a, a.map((l) => (l === 'l2' ? 'L2' : l === 'l9' ? 'L9' : l)))).toEqual([[1, 12, 1, 12]]);
    expect(ranges(a, a.map((l) => (l === 'l2' ? 'L2' : l === 'l10' ? 'L10' : l)))).toEqual([
      [1, 5, 1, 5],
      [7, 7, 7, 7],
    ]);
  });

  it('a removal of everything starts the new side at 0', () => {
    expect(ranges(['x'], [])).toEqual([[1, 1, 0, 0]]);
  });

  it('changed paths: strings and null compare whole; an object replaced by a scalar is one replace', () => {
    expect(changedPaths({ a: 'abc' }, { a: 'abd' })).toEqual([{ path: 'a', op: 'replace', from: 'abc', to: 'abd' }]);
    expect(changedPaths({ a: null }, { a: { b: 1 } })).toEqual([{ path: 'a', op: 'replace', from: null, to: { b: 1 } }]);
    expect(changedPaths({ a: { x: 1 } }, { a: 5 })).toEqual([{ path: 'a', op: 'replace', from: { x: 1 }, to: 5 }]);
  });

  it('undefined prints as null', () => {
    expect(canonicalPretty(undefined)).toBe('null');
  });
});
