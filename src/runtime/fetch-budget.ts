/**
 * A token bucket for fetches that notices trigger. Anyone on the NATS network can publish a notice; without
 * a rate bound, K clients turn every forged message into K authenticated GETs. Up to `burst` fetches go out at
 * once; beyond it, they are spaced `refillMs` apart and the last one is never lost: the caller defers it until
 * `waitMs()`. A fetch that proved worth it is `refund`ed.
 */
export class FetchBudget {
  readonly #burst: number;
  readonly #refillMs: number;
  readonly #now: () => number;
  #tokens: number;
  #updatedAt: number;

  constructor(burst: number, refillMs: number, now: () => number = Date.now) {
    this.#burst = burst;
    this.#refillMs = refillMs;
    this.#now = now;
    this.#tokens = burst;
    this.#updatedAt = now();
  }

  /** Takes a token if one is there. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Gives a token back (the fetch it paid for was worth it). */
  refund(): void {
    this.#refill();
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }

  /** Milliseconds until the next token. */
  waitMs(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) * this.#refillMs);
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updatedAt) / this.#refillMs);
    this.#updatedAt = now;
  }
}
