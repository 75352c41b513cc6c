// Policy by config name.
import type { Target } from '../target.js';
import type { BalancingPolicy } from './policy.js';
import { RoundRobin } from './round-robin.js';
import { LeastRequests } from './least-requests.js';
import { RandomTwo } from './random-two.js';
import { IpHash } from './ip-hash.js';
import { HashPolicy } from './hash.js';
import { First } from './first.js';

export type { BalancingPolicy } from './policy.js';
export type BalanceConfig = 'round_robin' | 'least_requests' | 'random_two' | 'ip_hash' | 'first' | { hash: string };

/**
 * `targets`: every target of the upstream, in config order (rings are built over all of them);
 * `weights`: their weights in the new config (carried-over targets get theirs only when the plan
 * is committed).
 */
export function createPolicy(config: BalanceConfig, targets: readonly Target[], weights: readonly number[]): BalancingPolicy {
  if (typeof config === 'object') return new HashPolicy(targets, weights, config.hash);
  switch (config) {
    case 'least_requests': return new LeastRequests();
    case 'random_two': return new RandomTwo();
    case 'ip_hash': return new IpHash(targets, weights);
    case 'first': return new First();
    default: return new RoundRobin();
  }
}
