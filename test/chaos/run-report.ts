/**
 * `npm run test:chaos` runs the chaos suite (`vitest run test/chaos`, plus the integration files whose tests
 * carry hardening row ids).
 * `npm run test:chaos -- --report` also collects the figures the tests record (`recordFigure`, through
 * CHAOS_FIGURES_DIR) and the vitest JSON report, and writes `test/chaos/report.md`: one table per matrix
 * section (row id, scenario, result, figures), the run date and totals. A row's result comes from the tests
 * whose name starts with its id (`N1: …`, or several ids: `D1/X2: …`).
 *
 * Other arguments are passed to vitest (e.g. `-- --report -t N1`). The exit code is vitest's.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const VITEST = join(ROOT, 'node_modules/.bin/vitest');
const REPORT = join(HERE, 'report.md');

type Level = 'must' | 'should';
interface MatrixRow {
  id: string;
  scenario: string;
  level: Level;
}

/** The matrix of RELIABILITY.md (ids, scenarios, must/should), by section. */
const MATRIX: Record<string, MatrixRow[]> = {
  Client: [
    { id: 'C1', scenario: 'client starts, hub refuses connections', level: 'must' },
    { id: 'C2', scenario: 'client starts, hub hung (SIGSTOP)', level: 'must' },
    { id: 'C3', scenario: 'strict start (an option) with hub down', level: 'should' },
    { id: 'C5', scenario: 'client restarts while the hub is down, snapshot present', level: 'must' },
    { id: 'C6', scenario: "snapshot truncated / `{` / wrong shape / another service's file", level: 'must' },
    { id: 'C7', scenario: 'TTL expires while the hub is down', level: 'must' },
    { id: 'C8', scenario: 'hub answers 503, 503 (`Retry-After: 1`), 200', level: 'must' },
    { id: 'C9', scenario: 'key revoked (401/403) mid-run', level: 'must' },
    { id: 'C10', scenario: 'a listener throws / rejects / blocks 2 s', level: 'must' },
    { id: 'C12', scenario: '1 000 × create/close; 10 000 × onChange/unsubscribe', level: 'must' },
    { id: 'C13', scenario: 'env-critical path; hub and notices carry another value', level: 'must' },
    { id: 'C14', scenario: 'hub serves a schema-invalid document', level: 'must' },
  ],
  Hub: [
    { id: 'H1', scenario: 'hub SIGKILL and restart with 200 clients', level: 'must' },
    { id: 'H2', scenario: 'hub hung (SIGSTOP)', level: 'must' },
    { id: 'H3', scenario: 'hub killed after COMMIT, before the response', level: 'should' },
    { id: 'H4', scenario: 'hub slow (3 s ± 2 s, scaled)', level: 'should' },
    { id: 'H5', scenario: 'response cut after 100 bytes', level: 'must' },
    { id: 'H6', scenario: 'SIGTERM under 50 writes/s', level: 'should' },
  ],
  NATS: [
    { id: 'N1', scenario: 'nats-server killed, a change committed meanwhile, restarted', level: 'must' },
    { id: 'N2', scenario: "NATS down longer than nats' default reconnect budget", level: 'must' },
    { id: 'N3', scenario: 'NATS hung (SIGSTOP)', level: 'should' },
    { id: 'N4', scenario: 'notice published while one client is cut off (proxy break)', level: 'must' },
    { id: 'N5', scenario: "3-node cluster, kill the client's node", level: 'must' },
    { id: 'N6', scenario: 'one cluster node paused while the hub publishes through another', level: 'should' },
    { id: 'N7', scenario: 'NATS down at commit time, 20 writes, NATS back', level: 'must' },
    { id: 'N8', scenario: '10 000 notices/s for one service', level: 'must' },
  ],
  Database: [
    { id: 'D1', scenario: 'PostgreSQL crash (`-m immediate`) under 20 writers, restart after 5 s', level: 'must' },
    { id: 'D2', scenario: 'database hung', level: 'should' },
    { id: 'D3', scenario: '`max_connections` small, 100 concurrent POSTs', level: 'must' },
    { id: 'D5', scenario: "TRUNCATE, DISABLE TRIGGER, UPDATE/DELETE on the audit table as the hub's role", level: 'should' },
  ],
  Concurrency: [
    { id: 'X1', scenario: 'two writers with the same `If-Match`, 1 000 rounds', level: 'must' },
    { id: 'X2', scenario: '10 writers × services × rollbacks with faults mixed in', level: 'should' },
    { id: 'X3', scenario: 'notices and fetch answers reordered (fast-check scheduler)', level: 'must' },
    { id: 'X4', scenario: '1 000 parallel `get` during a slow refresh', level: 'must' },
  ],
  'Model-based (client runtime)': [
    { id: 'M1', scenario: 'fc.commands: writes, restores, outages, lagging failover, every kind of notice, ticks, restarts, close (notice = hint)', level: 'must' },
    { id: 'M2', scenario: 'the same commands with `nats.applyPayload` (payloads applied unconfirmed)', level: 'must' },
  ],
  'Hardening (hub and notices; test/integration)': [
    { id: 'P1', scenario: 'a notice over max_payload, a poison outbox row, relay lag while NATS looks connected', level: 'must' },
    { id: 'A1', scenario: 'a valid key from an address that just sent 25 wrong keys; trustProxy', level: 'must' },
    { id: 'A2', scenario: 'unauthenticated 600 KB body, stalled body/header sockets, close() with a stalled client', level: 'must' },
    { id: 'A3', scenario: 'a stored password through PATCH, rollback, restore', level: 'must' },
    { id: 'W1', scenario: 'updated_at under concurrent writers, rollback_config not found, invalid UTF-8', level: 'must' },
    { id: 'W2', scenario: 'DELETE without If-Match, restore a deleted service, rollback by version', level: 'must' },
    { id: 'T1', scenario: 'NATS users and permissions: outsiders, forged and cross-service notices, NKey, token, .creds', level: 'must' },
    { id: 'T2', scenario: 'signed notices: verified applied without a GET, tampered or unsigned only hints', level: 'must' },
    { id: 'T3', scenario: 'forged notices cannot pin a value or amplify into GETs; a notice during recovery is not lost', level: 'must' },
  ],
  'Bad input': [
    { id: 'B1', scenario: 'fast-check bytes / JSON / anything as a NATS payload', level: 'must' },
    { id: 'B2', scenario: 'fast-check bodies to POST/PATCH', level: 'must' },
    { id: 'B3', scenario: 'fast-check env/hub/defaults', level: 'must' },
    { id: 'B4', scenario: 'hostile service names', level: 'must' },
    { id: 'B5', scenario: 'hub: oversize, pollution keys, deep nesting, bad numbers, wrong types and content types', level: 'must' },
    { id: 'B6', scenario: 'notices: empty, non-JSON, null, [], foreign, older, same revision other content, `__proto__`, oversize', level: 'must' },
  ],
  Security: [
    { id: 'S1', scenario: 'key comparison', level: 'must' },
    { id: 'S3', scenario: 'scopes: keys × routes', level: 'must' },
    { id: 'S5', scenario: '10 000 wrong keys from one address', level: 'should' },
    { id: 'S6', scenario: 'a canary key and a canary secret through the suite, debug logs on', level: 'must' },
    { id: 'S7', scenario: 'secret-looking keys or values posted to the hub', level: 'must' },
    { id: 'S8', scenario: 'a forged notice from a rogue publisher', level: 'must' },
    { id: 'S9', scenario: 'errors: bad JSON, DB down', level: 'must' },
    { id: 'S10', scenario: 'prototype pollution via body, notice, snapshot', level: 'must' },
  ],
};

/** Integration files whose tests carry matrix row ids (the hardening rows): run with the chaos suite. */
const MATRIX_INTEGRATION_FILES = [
  'test/integration/hub-outbox-poison.test.ts',
  'test/integration/hub-strangers.test.ts',
  'test/integration/hub-stored-secrets.test.ts',
  'test/integration/hub-write-integrity.test.ts',
  'test/integration/hub-delete-restore.test.ts',
  'test/integration/nats-auth.test.ts',
  'test/integration/notice-signing.test.ts',
  'test/integration/notice-trust.test.ts',
];

interface Figure {
  row: string;
  name: string;
  value: number | string | boolean;
  unit?: string;
}

interface AssertionResult {
  title: string;
  fullName?: string;
  status: 'passed' | 'failed' | 'skipped' | 'pending' | 'todo' | 'disabled';
  duration?: number | null;
}

interface JsonReport {
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  startTime: number;
  success: boolean;
  testResults: { name: string; assertionResults: AssertionResult[] }[];
}

/** Leading row ids of a test title: `N1: …` → [N1]; `D1/X2: …` → [D1, X2]. */
export function rowIds(title: string): string[] {
  const match = /^\s*((?:[A-Z]\d+)(?:\s*[,/&+]\s*[A-Z]\d+)*)\s*:/.exec(title);
  return match ? match[1]!.split(/\s*[,/&+]\s*/) : [];
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolvePromise) => {
    const child = spawn(VITEST, ['run', 'test/chaos', ...MATRIX_INTEGRATION_FILES, ...args], { cwd: ROOT, env, stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolvePromise(code ?? (signal ? 1 : 0));
    });
  });
}

function readFigures(dir: string): Figure[] {
  if (!existsSync(dir)) return [];
  const figures: Figure[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        figures.push(JSON.parse(line) as Figure);
      } catch {
        // a torn last line of a crashed worker: skip it
      }
    }
  }
  return figures;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function formatFigure(f: Figure): string {
  const value = typeof f.value === 'number' ? f.value.toLocaleString('en-US', { maximumFractionDigits: 2 }) : String(f.value);
  return `${f.name}: **${value}**${f.unit ? ` ${f.unit}` : ''}`;
}

export function renderReport(report: JsonReport | undefined, figures: Figure[], exitCode: number, wallMs: number): string {
  const byRow = new Map<string, { passed: number; failed: number; skipped: number; titles: string[] }>();
  const unmatched: string[] = [];
  for (const file of report?.testResults ?? []) {
    for (const a of file.assertionResults) {
      const ids = rowIds(a.title);
      if (ids.length === 0) unmatched.push(a.title);
      for (const id of ids) {
        const entry = byRow.get(id) ?? { passed: 0, failed: 0, skipped: 0, titles: [] };
        if (a.status === 'passed') entry.passed++;
        else if (a.status === 'failed') entry.failed++;
        else entry.skipped++;
        entry.titles.push(a.title);
        byRow.set(id, entry);
      }
    }
  }
  const figuresByRow = new Map<string, Figure[]>();
  for (const f of figures) figuresByRow.set(f.row, [...(figuresByRow.get(f.row) ?? []), f]);

  const lines: string[] = [];
  const date = new Date(report?.startTime ?? Date.now()).toISOString();
  lines.push('# Chaos suite report', '');
  lines.push(`Generated by \`npm run test:chaos -- --report\` (\`test/chaos/run-report.ts\`). Matrix: \`RELIABILITY.md\`.`, '');
  lines.push(`- Run date: ${date}`);
  lines.push(`- Host: ${process.platform} ${process.arch}, node ${process.version}`);
  lines.push(`- Wall time: ${(wallMs / 1000).toFixed(1)} s; vitest exit code ${exitCode}`);
  if (report) {
    lines.push(
      `- Tests: ${report.numTotalTests} total, ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests} skipped/todo`,
    );
  } else {
    lines.push('- Tests: no vitest JSON report was produced');
  }
  let rowsPass = 0;
  let rowsFail = 0;
  let rowsMissing = 0;
  const sections: string[] = [];
  for (const [section, rows] of Object.entries(MATRIX)) {
    sections.push(`## ${section}`, '', '| id | scenario | | result | figures |', '|---|---|---|---|---|');
    for (const row of rows) {
      const r = byRow.get(row.id);
      let result: string;
      if (!r) {
        result = 'not run';
        rowsMissing++;
      } else if (r.failed > 0) {
        result = `**FAIL** (${r.failed} of ${r.passed + r.failed} tests)`;
        rowsFail++;
      } else if (r.passed > 0) {
        result = `pass (${r.passed} test${r.passed === 1 ? '' : 's'})`;
        rowsPass++;
      } else {
        result = 'skipped';
        rowsMissing++;
      }
      const figs = (figuresByRow.get(row.id) ?? []).map(formatFigure).join('<br>') || '—';
      sections.push(`| ${row.id} | ${cell(row.scenario)} | ${row.level} | ${result} | ${cell(figs)} |`);
    }
    sections.push('');
  }
  const known = new Set(Object.values(MATRIX).flatMap((rows) => rows.map((r) => r.id)));
  const extra = [...byRow.keys()].filter((id) => !known.has(id)).sort();
  lines.push(`- Matrix rows: ${rowsPass} pass, ${rowsFail} fail, ${rowsMissing} not run`, '');
  lines.push(...sections);
  if (extra.length > 0 || unmatched.length > 0) {
    lines.push('## Other tests', '');
    for (const id of extra) {
      const r = byRow.get(id)!;
      lines.push(`- ${id}: ${r.failed > 0 ? 'FAIL' : 'pass'} — ${r.titles.map(cell).join('; ')}`);
    }
    for (const title of unmatched) lines.push(`- (no row id) ${cell(title)}`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const wantReport = args.includes('--report');
  const passThrough = args.filter((a) => a !== '--report');
  if (!wantReport) {
    process.exitCode = await run(passThrough, process.env);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'chaos-report-'));
  const figuresDir = join(work, 'figures');
  const jsonFile = join(work, 'vitest.json');
  const started = Date.now();
  try {
    const code = await run(['--reporter=default', '--reporter=json', `--outputFile.json=${jsonFile}`, ...passThrough], {
      ...process.env,
      CHAOS_FIGURES_DIR: figuresDir,
    });
    const wall = Date.now() - started;
    const report = existsSync(jsonFile) ? (JSON.parse(readFileSync(jsonFile, 'utf8')) as JsonReport) : undefined;
    writeFileSync(REPORT, renderReport(report, readFigures(figuresDir), code, wall));
    process.stdout.write(`chaos: wrote ${REPORT}\n`);
    process.exitCode = code;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
