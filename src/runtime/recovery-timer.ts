/**
 * The background retry after a failure: capped, jittered backoff; a hard, jittered delay while the hub
 * answers 401/403 (never a hot loop, never given up). Timers are unref'd: recovery never holds the process.
 */
import { backoffDelay } from '../hub/retry.js';

export interface RecoveryDelays {
  minDelayMs: number;
  maxDelayMs: number;
  unauthorizedDelayMs: number;
}

export class RecoveryTimer {
  readonly #delays: RecoveryDelays;
  readonly #fire: () => void;
  readonly #random: () => number;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #dueAt = 0;
  #unauthorized = false;

  constructor(delays: RecoveryDelays, fire: () => void, random: () => number = Math.random) {
    this.#delays = delays;
    this.#fire = fire;
    this.#random = random;
  }

  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /** Arms the next retry unless one is already due; `unauthorized` picks the hard delay. */
  schedule(unauthorized: boolean): void {
    if (this.#timer) return;
    const { minDelayMs, maxDelayMs, unauthorizedDelayMs } = this.#delays;
    this.#unauthorized = unauthorized;
    const delay = unauthorized
      ? unauthorizedDelayMs * (0.8 + this.#random() * 0.4)
      : minDelayMs + backoffDelay(this.#attempt, minDelayMs, maxDelayMs, this.#random);
    this.#attempt++;
    this.#arm(delay);
  }

  /** A hint that the hub is back: brings a distant retry forward to `minDelayMs` (never for a revoked key). */
  expedite(): void {
    if (!this.#timer || this.#unauthorized) return;
    const { minDelayMs } = this.#delays;
    if (this.#dueAt - Date.now() > minDelayMs) this.#arm(minDelayMs);
  }

  /** Success: no retry pending, the backoff starts over. */
  reset(): void {
    this.cancel();
    this.#attempt = 0;
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delay: number): void {
    clearTimeout(this.#timer);
    this.#dueAt = Date.now() + delay;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#fire();
    }, delay);
    this.#timer.unref();
  }
}
