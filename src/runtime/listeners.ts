/** Delivers one change to the listeners of a service: one that throws or rejects is reported, the others still run. */
import type { ChangeListener, ConfigChange } from './types.js';

export function notifyListeners(
  listeners: ReadonlySet<ChangeListener>,
  next: unknown,
  prev: unknown,
  change: ConfigChange,
  failed: (cause: unknown) => void,
): void {
  // A copy: a listener that unsubscribes (or subscribes another) does not change this delivery.
  for (const listener of [...listeners]) {
    try {
      const result = listener(next, prev, change);
      if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(undefined, failed);
    } catch (error) {
      failed(error);
    }
  }
}
