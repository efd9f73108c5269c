/**
 * The lines that explain a hub refusal beyond its `detail` (docs/fleet.md §4): the `issues` of a 422, the
 * `consumers` that would reject the config, what was left `unchecked`, `unknown_schemas`, the secret-looking
 * `paths`. Read defensively: an older hub sends only `detail`, and nothing here may throw.
 */

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v) ?? String(v));
// An older hub (or a consumer that never reported one) sends no hash: '?', as for an unknown instance count.
const short = (hash: unknown): string =>
  hash === undefined || hash === null ? '?' : typeof hash === 'string' && hash.length > 12 ? `${hash.slice(0, 12)}…` : text(hash);

/** One line per issue: `  operational.batch_size: must be > 0 (exclusiveMinimum)`. */
export function issueLines(issues: unknown, indent = '  '): string[] {
  if (!Array.isArray(issues)) return [];
  return issues.map((issue) => {
    if (!isRecord(issue)) return `${indent}${text(issue)}`;
    const path = typeof issue.path === 'string' && issue.path.length > 0 ? issue.path : Array.isArray(issue.path) ? issue.path.join('.') || '(root)' : '(root)';
    const keyword = typeof issue.keyword === 'string' ? ` (${issue.keyword})` : '';
    return `${indent}${path}: ${text(issue.message ?? 'invalid')}${keyword}`;
  });
}

/** The consumers of a 422 or of a validate answer: one line each, then its issues. */
export function consumerLines(consumers: unknown): string[] {
  if (!Array.isArray(consumers)) return [];
  const lines: string[] = [];
  for (const c of consumers) {
    if (!isRecord(c)) continue;
    const ids = Array.isArray(c.instance_ids) && c.instance_ids.length > 0 ? `: ${c.instance_ids.map(text).join(', ')}` : '';
    lines.push(`  schema ${short(c.schema_hash)}, ${text(c.instances ?? '?')} instance(s)${ids}`);
    lines.push(...issueLines(c.issues, '    '));
  }
  return lines;
}

export function describeRefusal(body: Record<string, unknown> | undefined): string[] {
  if (body === undefined) return [];
  const lines: string[] = [];
  if (Array.isArray(body.issues) && body.issues.length > 0) lines.push('issues:', ...issueLines(body.issues));
  if (Array.isArray(body.consumers) && body.consumers.length > 0) lines.push('consumers that would reject it:', ...consumerLines(body.consumers));
  if (Array.isArray(body.unchecked) && body.unchecked.length > 0) {
    lines.push('not checked (JSON Schema cannot express them; the clients still check):');
    for (const u of body.unchecked) lines.push(isRecord(u) ? `  ${text(u.path ?? '(root)')}: ${text(u.kind ?? '?')} (schema ${short(u.schema_hash)})` : `  ${text(u)}`);
  }
  if (Array.isArray(body.unknown_schemas) && body.unknown_schemas.length > 0) {
    lines.push(`schemas the hub does not hold (not checked): ${body.unknown_schemas.map(short).join(', ')}`);
  }
  if (Array.isArray(body.paths) && body.paths.length > 0) lines.push(`paths: ${body.paths.map(text).join(', ')}`);
  return lines;
}
