// first: priority order. Every request goes to the first target in config order that is in
// rotation; the next one takes over only when it is down, draining or full (the upstream skips
// full targets). With `backup: true` targets this gives a classic active/standby pair.
import type { Target } from '../target.js';
import type { BalancingPolicy } from './policy.js';

export class First implements BalancingPolicy {
  pick(targets: readonly Target[]): Target | undefined {
    return targets[0];
  }
}
