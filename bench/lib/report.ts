import type { FigureResult } from './util.js';

interface Report {
  generatedAt: string;
  mode: string;
  durationMs: number;
  machine: Record<string, unknown>;
  fatal?: string | undefined;
  figures: FigureResult[];
}

function table(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'number' ? (Math.abs(v) >= 10_000 ? Math.round(v).toLocaleString('en-US') : String(v)) : String(v).replace(/\|/g, '\\|'));
  return [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(' | ')} |`)].join('\n');
}

export function renderMarkdown(report: Report): string {
  const m = report.machine;
  const out: string[] = [
    '# Benchmark results',
    '',
    `${report.mode} run, ${report.generatedAt}, ${(report.durationMs / 1000).toFixed(0)} s — ${String(m.cpus)} × ${String(m.cpuModel)}, node ${String(m.node)}, ${String(m.platform)}.`,
    'Every figure is measured beside its floor in the same run; compare ratios, absolute times drift on shared machines.',
    '',
    '## Goals',
    '',
    table(
      report.figures.flatMap((f) =>
        f.error
          ? [{ '#': f.id, figure: f.title, goal: '(figure failed)', measured: f.error.split('\n')[0], status: 'error' }]
          : f.goals.map((g) => ({ '#': f.id, figure: f.title, goal: g.goal, measured: g.measured, status: g.met === null ? 'reported' : g.met ? 'met' : '**missed**' })),
      ),
    ),
    '',
  ];
  if (report.fatal) out.push(`**Setup failed:** \`${report.fatal.split('\n')[0]}\``, '');
  for (const f of report.figures) {
    out.push(`## ${f.id}. ${f.title}`, '');
    if (f.error) {
      out.push('```', f.error, '```', '');
      continue;
    }
    out.push(table(f.rows), '', `Method: ${f.method}`, '');
    for (const n of f.notes) out.push(`- ${n}`);
    if (f.notes.length) out.push('');
    const extra = f.data?.markdown;
    if (typeof extra === 'string') out.push(extra, '');
  }
  return `${out.join('\n')}\n`;
}
