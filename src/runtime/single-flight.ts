/**
 * One fetch in flight per service, plus at most one queued behind it. A caller that may have seen news the
 * running fetch started too early to see (a notice, an explicit refresh) asks for the follow-up.
 */
export class SingleFlight<T> {
  #inFlight: Promise<T> | undefined;
  #followUp: Promise<T> | undefined;

  get busy(): boolean {
    return this.#inFlight !== undefined;
  }

  /** The running fetch if there is one (joined), else a new one; with `followUp`, one more after it. */
  run(start: () => Promise<T>, followUp = false): Promise<T> {
    const running = this.#inFlight;
    if (!running) return this.#begin(start);
    if (!followUp) return running;
    this.#followUp ??= running
      .catch(() => undefined)
      .then(() => {
        this.#followUp = undefined;
        return this.run(start);
      });
    return this.#followUp;
  }

  #begin(start: () => Promise<T>): Promise<T> {
    const run = start().finally(() => {
      if (this.#inFlight === run) this.#inFlight = undefined;
    });
    this.#inFlight = run;
    return run;
  }
}
