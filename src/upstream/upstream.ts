// A named group of targets with its settings, compiled from `upstreams.<name>`.
import type { Target } from './target.js';
import type { RequestContext } from '../server/context.js';

export interface UpstreamTimeouts {
  connect: number;
  response: number;
  read: number;
  websocketIdle: number;
}

/** How a target is chosen. Each policy is a small module implementing this. */
export interface BalancingPolicy {
  pick(targets: readonly Target[], ctx: RequestContext): Target | undefined;
}

export class RoundRobin implements BalancingPolicy {
  #next = 0;
  pick(targets: readonly Target[]): Target | undefined {
    if (targets.length === 0) return undefined;
    const t = targets[this.#next % targets.length];
    this.#next = (this.#next + 1) % targets.length;
    return t;
  }
}

export class Upstream {
  readonly name: string;
  readonly targets: readonly Target[];
  readonly timeouts: UpstreamTimeouts;
  /** "preserve", "target" or a fixed Host value. */
  readonly hostMode: string;
  readonly policy: BalancingPolicy;

  constructor(name: string, targets: readonly Target[], timeouts: UpstreamTimeouts, hostMode: string, policy: BalancingPolicy = new RoundRobin()) {
    this.name = name;
    this.targets = targets;
    this.timeouts = timeouts;
    this.hostMode = hostMode;
    this.policy = policy;
  }

  pick(ctx: RequestContext): Target | undefined {
    return this.targets.length === 1 ? this.targets[0] : this.policy.pick(this.targets, ctx);
  }

  /** Host header to send for `target`, given the client's. */
  hostFor(target: Target, clientHost: string): string {
    if (this.hostMode === 'preserve') return clientHost || target.address.host;
    if (this.hostMode === 'target') return target.address.host;
    return this.hostMode;
  }
}
