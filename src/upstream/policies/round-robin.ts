// round_robin: smooth weighted round robin (nginx's algorithm). Each pick adds every target's
// weight to its running weight, takes the largest, and subtracts the total from it: weights
// 5,1,1 give a a b a c a a rather than a a a a a b c, so a heavy target never gets a burst.
import type { Target } from '../target.js';
import type { BalancingPolicy } from './policy.js';

export class RoundRobin implements BalancingPolicy {
  pick(targets: readonly Target[]): Target | undefined {
    let best: Target | undefined;
    let total = 0;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      const w = t.effectiveWeight;
      t.currentWeight += w;
      total += w;
      if (best === undefined || t.currentWeight > best.currentWeight) best = t;
    }
    if (best !== undefined) best.currentWeight -= total;
    return best;
  }
}
