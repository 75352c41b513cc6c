// least_requests: the target with the fewest requests in flight relative to its weight, ties
// broken at random. It counts requests, not connections: with keep-alive pools a connection
// stays open while idle, so open connections say little about load; requests in flight are
// the work a target is doing right now. The random tie-break keeps many idle targets (all at
// zero) from all sending the next burst to the first one in the list.
import type { Target } from '../target.js';
import type { BalancingPolicy } from './policy.js';

export class LeastRequests implements BalancingPolicy {
  pick(targets: readonly Target[]): Target | undefined {
    let best: Target | undefined;
    let bestScore = Infinity;
    let ties = 0;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      // +1: with weights, an idle light target should not always beat an idle heavy one.
      const score = (t.inflight + 1) / t.effectiveWeight;
      if (score < bestScore) {
        best = t;
        bestScore = score;
        ties = 1;
      } else if (score === bestScore) {
        // Reservoir sampling: each of the k tied targets ends up chosen with probability 1/k.
        ties++;
        if (Math.random() * ties < 1) best = t;
      }
    }
    return best;
  }
}
