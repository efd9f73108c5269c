/** Ajv's errors as the issues a refused write names (docs/fleet.md §4): `{ path, message, keyword }`. Pure. */
import type { ErrorObject } from 'ajv';

export interface ConsumerIssue {
  /** Dotted path of the value (`operational.batch_size`, `items.0`); `""` for the root. */
  path: string;
  message: string;
  /** The JSON Schema keyword that failed (`exclusiveMinimum`, `required`, `type`, …). */
  keyword: string;
}

/** Issues listed per consumer at most (`allErrors` can report one per array item). */
export const MAX_ISSUES = 50;

const unescapePointer = (segment: string): string => segment.replace(/~1/g, '/').replace(/~0/g, '~');

/** `/operational/batch_size` → `operational.batch_size` (RFC 6901 escapes undone). */
export function pointerToPath(pointer: string): string {
  if (pointer === '' || pointer === '/') return '';
  return pointer.split('/').slice(1).map(unescapePointer).join('.');
}

// Keywords whose error sits on the parent object but is about one named property.
const PROPERTY_PARAM: Record<string, string> = {
  required: 'missingProperty',
  dependentRequired: 'missingProperty',
  additionalProperties: 'additionalProperty',
  unevaluatedProperties: 'unevaluatedProperty',
};

export function issueOf(error: ErrorObject): ConsumerIssue {
  let path = pointerToPath(error.instancePath);
  const param = PROPERTY_PARAM[error.keyword];
  const property = param === undefined ? undefined : (error.params as Record<string, unknown>)[param];
  if (typeof property === 'string') path = path === '' ? property : `${path}.${property}`;
  return { path: path.slice(0, 1000), message: (error.message ?? 'is invalid').slice(0, 200), keyword: error.keyword };
}

/** At most `limit` issues, without repeats. */
export function issuesOf(errors: readonly ErrorObject[] | null | undefined, limit: number = MAX_ISSUES): ConsumerIssue[] {
  return dedupeIssues((errors ?? []).map(issueOf), limit);
}

export function dedupeIssues(issues: Iterable<ConsumerIssue>, limit: number = MAX_ISSUES): ConsumerIssue[] {
  const seen = new Set<string>();
  const out: ConsumerIssue[] = [];
  for (const issue of issues) {
    const key = `${issue.path}\u0000${issue.keyword}\u0000${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(issue);
    if (out.length >= limit) break;
  }
  return out;
}
