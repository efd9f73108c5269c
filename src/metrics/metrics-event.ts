/**
 * What a runtime transition means to the metrics (pure): the change it announced to `onChange` listeners
 * (`central_hub.changes.applied`, by source), and whether it reported an update the schema refused
 * (`central_hub.changes.rejected`: exactly the `CONFIG_INVALID` errors `onError` receives, once per
 * rejected revision, never once per retry).
 */
import type { Plan } from '../runtime/transition.js';
import type { ChangeSource } from '../runtime/types.js';

export interface MetricsEvent {
  applied: ChangeSource | undefined;
  rejected: boolean;
}

/** `reportedKey`: the runtime's once-per-state key just before the plan's reports (a repeat is not reported). */
export function metricsEvent(plan: Plan, change: { source: ChangeSource } | undefined, reportedKey: string | undefined): MetricsEvent | undefined {
  const rejected = plan.report.some(({ error, key }) => error.code === 'CONFIG_INVALID' && (key === undefined || key !== reportedKey));
  if (!rejected && change === undefined) return undefined;
  return { applied: change?.source, rejected };
}
