/**
 * What a runtime transition means to the fleet report (pure): `rejected` when the hub's value was refused
 * (`CONFIG_INVALID` newly set: reported at once), `applied` when an answer of the hub was committed (reported
 * soon, if the hub does not know the new state yet), otherwise nothing.
 */
import type { Outcome, Plan } from '../runtime/transition.js';

export type FleetEvent = 'applied' | 'rejected';

export function fleetEvent(outcome: Outcome, plan: Plan, errorBefore: string | undefined): FleetEvent | undefined {
  if (outcome.kind === 'document' && plan.lastError?.code === 'CONFIG_INVALID' && errorBefore !== 'CONFIG_INVALID') return 'rejected';
  // A snapshot or the defaults are committed when the hub is out of reach: nothing to tell it then.
  if (plan.commit && (outcome.kind === 'document' || outcome.kind === 'not-found')) return 'applied';
  return undefined;
}
