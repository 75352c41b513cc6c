// Passive health (nginx max_fails/fail_timeout, Envoy outlier detection): real requests are the
// probe. `failures` failed attempts in a row (no success between them) put a target in a
// cool-down; after it the target gets traffic again, ramped over slow_start when set.
import type { Target } from './target.js';

/** What counts as a failed attempt. */
export type FailureKind = 'connect' | 'reset' | 'timeout';

export interface PassiveHealthConfig {
  /** Failures in a row that start a cool-down; 0 disables passive health. */
  failures: number;
  cooldown: number;
  on: readonly (FailureKind | number)[];
}

export class PassiveHealth {
  readonly failures: number;
  readonly cooldown: number;
  readonly onConnect: boolean;
  readonly onReset: boolean;
  readonly onTimeout: boolean;
  /** Indexed by status code: a table beats a Set lookup on every response. */
  readonly #statuses = new Uint8Array(600);

  constructor(config: PassiveHealthConfig) {
    this.failures = config.failures;
    this.cooldown = config.cooldown;
    this.onConnect = config.on.includes('connect');
    this.onReset = config.on.includes('reset');
    this.onTimeout = config.on.includes('timeout');
    for (const s of config.on) if (typeof s === 'number') this.#statuses[s] = 1;
  }

  countsStatus(status: number): boolean {
    return this.#statuses[status] === 1;
  }

  countsKind(kind: FailureKind): boolean {
    return kind === 'connect' ? this.onConnect : kind === 'reset' ? this.onReset : this.onTimeout;
  }
}

/**
 * Records a failed attempt on `target`. `counts`: it is a kind passive health looks at; then
 * enough of them in a row start the cool-down. Used by forwarding and tunnelling alike.
 */
export function recordFailure(target: Target, passive: PassiveHealth | undefined, reason: string, counts: boolean): void {
  target.failures++;
  if (!counts || passive === undefined) return;
  if (++target.consecutiveFailures >= passive.failures) target.startCooldown(passive.cooldown, reason);
}
