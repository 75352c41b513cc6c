// When a failed attempt may be tried again on another target, and how often overall.
import type { FailureKind } from './health-passive.js';

export interface RetryConfig {
  /** Attempts in total, the first included (1: no retries). */
  attempts: number;
  on: readonly (FailureKind | number)[];
  /** Retries may be at most this fraction of requests (0.2 = 20%). */
  budget: number;
  /** Limit for one attempt (to the response head). */
  tryTimeout: number;
  /** Limit for all attempts together, from the first send; 0: none. */
  deadline: number;
  /** Retry non-idempotent methods (POST, PATCH) after a reset, timeout or status too. */
  nonIdempotent: boolean;
  /** Request bodies up to this size (with a Content-Length) are buffered so they can be replayed; 0: never. */
  bufferBody: number;
}

/**
 * Retries a quiet upstream may always spend: a budget of 20% of 3 requests would otherwise
 * allow no retry at all. It refills as requests arrive, and caps the burst a brown-out can cause.
 */
const RESERVE = 10;

export class RetryPolicy {
  readonly attempts: number;
  readonly tryTimeout: number;
  readonly deadline: number;
  readonly nonIdempotent: boolean;
  readonly bufferBody: number;
  readonly onConnect: boolean;
  readonly onReset: boolean;
  readonly onTimeout: boolean;
  readonly #statuses = new Uint8Array(600);
  readonly #ratio: number;
  /**
   * A token bucket instead of a clock: each request adds `budget` of a retry, each retry takes
   * one whole token. So retries stay under budget × requests (plus the reserve) over any stretch
   * of time, and a brown-out cannot multiply its own load.
   */
  #tokens = RESERVE;

  constructor(config: RetryConfig) {
    this.attempts = config.attempts;
    this.tryTimeout = config.tryTimeout;
    this.deadline = config.deadline;
    this.nonIdempotent = config.nonIdempotent;
    this.bufferBody = config.bufferBody;
    this.onConnect = config.on.includes('connect');
    this.onReset = config.on.includes('reset');
    this.onTimeout = config.on.includes('timeout');
    for (const s of config.on) if (typeof s === 'number') this.#statuses[s] = 1;
    this.#ratio = config.budget;
  }

  /** Called once per request. */
  deposit(): void {
    const t = this.#tokens + this.#ratio;
    this.#tokens = t > RESERVE ? RESERVE : t;
  }

  /** Takes one retry from the budget; false when it is spent. */
  withdraw(): boolean {
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  retriesStatus(status: number): boolean {
    return this.#statuses[status] === 1;
  }

  retriesKind(kind: FailureKind): boolean {
    return kind === 'connect' ? this.onConnect : kind === 'reset' ? this.onReset : this.onTimeout;
  }
}
