// ip_hash: the same client address goes to the same target, on a consistent-hash ring. The
// address is ctx.clientIp: behind a trusted load balancer that is the real client (from
// X-Forwarded-For), not the balancer, so clients do not all hash to one target.
import type { RequestContext } from '../../server/context.js';
import type { Target } from '../target.js';
import { HashRing, hashString } from './ring.js';
import type { BalancingPolicy } from './policy.js';

export class IpHash implements BalancingPolicy {
  readonly #ring: HashRing;

  constructor(allTargets: readonly Target[], weights: readonly number[]) {
    this.#ring = new HashRing(allTargets, weights);
  }

  pick(_targets: readonly Target[], ctx: RequestContext): Target | undefined {
    return this.#ring.lookup(hashString(ctx.clientIp));
  }
}
