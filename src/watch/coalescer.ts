/**
 * Burst control for triggers such as NATS notices: at most one run in flight plus at most one queued.
 * A trigger that arrives while a run is in flight cannot be served by that run (it may already have
 * read the old state), so it joins the single follow-up run; any number of such triggers collapse into it.
 */

/** Starts (or joins) a run; settles with the run that covers this trigger. */
export type Trigger = () => Promise<void>;

export function createCoalescer(run: () => Promise<void>): Trigger {
  let inFlight: Promise<void> | undefined;
  let queued: Promise<void> | undefined;

  const launch = (): Promise<void> => {
    // `then` turns a synchronous throw of `run` into a rejection of this trigger's promise.
    const current = Promise.resolve()
      .then(run)
      .finally(() => {
        inFlight = undefined;
      });
    inFlight = current;
    return current;
  };

  return () => {
    // While a follow-up is queued, `inFlight` may already be cleared: joining the queue keeps it to one run.
    if (queued) return queued;
    if (!inFlight) return launch();
    queued = inFlight
      .catch(() => {
        // The failed run is reported to its own callers; the follow-up runs regardless.
      })
      .then(() => {
        queued = undefined;
        return launch();
      });
    return queued;
  };
}
