/**
 * The safety-net poll: a tick every `intervalMs` ± jitter, the next one scheduled only after the
 * current one settles, so a slow hub never sees overlapping polls from one process.
 */
import { ConfigError } from '../errors.js';

/** Default jitter: ±20 % spreads a fleet that started together. */
export const DEFAULT_POLL_JITTER = 0.2;

export interface PollerOptions {
  /** Mean delay between the end of one tick and the start of the next, in milliseconds. */
  intervalMs: number;
  /**
   * Relative jitter in [0, 1]: each delay is drawn uniformly from `intervalMs × (1 ± jitter)`.
   * @default 0.2
   */
  jitter?: number;
  /** The work of one tick. A throw or rejection is reported through `onError`; the schedule continues. */
  tick: () => Promise<void>;
  /** Receives what a tick threw. Exceptions thrown by this callback are swallowed. */
  onError?: (error: unknown) => void;
  /**
   * Source of randomness in [0, 1), for tests.
   * @default Math.random
   */
  random?: () => number;
}

/** A delay drawn uniformly from `intervalMs × (1 ± jitter)`, never negative. Pure. */
export function jitteredDelay(intervalMs: number, jitter: number, random: () => number): number {
  const factor = 1 + jitter * (2 * random() - 1);
  return Math.max(0, Math.round(intervalMs * factor));
}

export class Poller {
  readonly #intervalMs: number;
  readonly #jitter: number;
  readonly #tick: () => Promise<void>;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #random: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  // Bumped by stop(): a tick that settles after a stop/start cycle must not fork a second schedule.
  #generation = 0;

  constructor(options: PollerOptions) {
    const { intervalMs, jitter = DEFAULT_POLL_JITTER } = options;
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
      throw new ConfigError('INVALID_OPTIONS', `intervalMs must be a positive number, got ${String(intervalMs)}`);
    }
    if (!Number.isFinite(jitter) || jitter < 0 || jitter > 1) {
      throw new ConfigError('INVALID_OPTIONS', `jitter must be between 0 and 1, got ${String(jitter)}`);
    }
    if (typeof options.tick !== 'function') {
      throw new ConfigError('INVALID_OPTIONS', 'tick must be a function');
    }
    this.#intervalMs = intervalMs;
    this.#jitter = jitter;
    this.#tick = options.tick;
    this.#onError = options.onError;
    this.#random = options.random ?? Math.random;
  }

  /** Whether a schedule is active. */
  get running(): boolean {
    return this.#running;
  }

  /** Schedules the first tick one jittered interval from now (the caller already has a fresh value). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(this.#generation);
  }

  /** Cancels the pending timer; a tick in flight finishes but schedules nothing. Idempotent. */
  stop(): void {
    this.#running = false;
    this.#generation += 1;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #schedule(generation: number): void {
    if (!this.#running || generation !== this.#generation) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run(generation);
    }, jitteredDelay(this.#intervalMs, this.#jitter, this.#random));
    // A poll is background work: it must never keep the process alive.
    timer.unref?.();
    this.#timer = timer;
  }

  async #run(generation: number): Promise<void> {
    try {
      await this.#tick();
    } catch (error) {
      this.#report(error);
    }
    this.#schedule(generation);
  }

  #report(error: unknown): void {
    try {
      this.#onError?.(error);
    } catch {
      // The error channel itself failed; the schedule matters more than this report.
    }
  }
}
