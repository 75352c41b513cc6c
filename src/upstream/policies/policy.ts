// The one interface every balancing policy implements. `targets` is the upstream's current
// rotation: usable targets only (healthy, not cooling down, not draining), primaries before
// backups; never empty. A policy returns one of them, or undefined to let the caller choose.
import type { RequestContext } from '../../server/context.js';
import type { Target } from '../target.js';

export interface BalancingPolicy {
  pick(targets: readonly Target[], ctx: RequestContext): Target | undefined;
}

/** Uniform random choice. */
export function pickRandom(targets: readonly Target[]): Target | undefined {
  return targets[(Math.random() * targets.length) | 0];
}
