// A named group of targets with its settings, compiled from `upstreams.<name>`: which targets are
// in rotation, which one a request goes to (policy, stickiness, limits), and the state the
// programmatic API shows.
import type { Logger } from 'pino';
import type { RequestContext } from '../server/context.js';
import { availability, type Target, type TargetState } from './target.js';
import type { BalancingPolicy } from './policies/policy.js';
import { RoundRobin } from './policies/round-robin.js';
import { RetryPolicy } from './retry.js';
import type { PassiveHealth } from './health-passive.js';
import type { StickyCookies } from './sticky.js';

export type { BalancingPolicy } from './policies/policy.js';

export interface UpstreamTimeouts {
  connect: number;
  response: number;
  read: number;
  websocketIdle: number;
}

export interface UpstreamOptions {
  policy?: BalancingPolicy | undefined;
  policyName?: string | undefined;
  retry?: RetryPolicy | undefined;
  passive?: PassiveHealth | undefined;
  sticky?: StickyCookies | undefined;
  log?: Logger | undefined;
}

/** What `portico.upstreams()` reports for one target. */
export interface TargetStatus {
  url: string;
  state: TargetState;
  /** In the current rotation (a healthy backup is not, while a primary is). */
  inRotation: boolean;
  weight: number;
  effectiveWeight: number;
  backup: boolean;
  inflight: number;
  /** Open WebSockets and other tunnels. */
  tunnels: number;
  requests: number;
  failures: number;
  retries: number;
  consecutiveFailures: number;
  /** Last active check failure ("" if none or no active checks). */
  lastCheckError: string;
}

export interface UpstreamStatus {
  name: string;
  policy: string;
  /** Targets in rotation now. */
  available: number;
  targets: TargetStatus[];
}

/** For Upstreams built without options (no retries beyond the stale keep-alive resend in forward.ts). */
const DEFAULT_RETRY = new RetryPolicy({ attempts: 1, on: [], budget: 0, tryTimeout: 60_000, deadline: 0, nonIdempotent: false, bufferBody: 0 });

export class Upstream {
  readonly name: string;
  /** Every target, in config order. */
  readonly targets: readonly Target[];
  readonly timeouts: UpstreamTimeouts;
  /** "preserve", "target" or a fixed Host value. */
  readonly hostMode: string;
  readonly policy: BalancingPolicy;
  readonly policyName: string;
  readonly retry: RetryPolicy;
  readonly passive: PassiveHealth | undefined;
  readonly sticky: StickyCookies | undefined;
  readonly log: Logger | undefined;
  #epoch = -1;
  #rotation: Target[] = [];
  #cursor = 0;
  #lastComplaint = 0;

  constructor(name: string, targets: readonly Target[], timeouts: UpstreamTimeouts, hostMode: string, options: UpstreamOptions = {}) {
    this.name = name;
    this.targets = targets;
    this.timeouts = timeouts;
    this.hostMode = hostMode;
    this.policy = options.policy ?? new RoundRobin();
    this.policyName = options.policyName ?? 'round_robin';
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.passive = options.passive;
    this.sticky = options.sticky;
    this.log = options.log;
  }

  /** Targets that may get new requests: usable primaries, or usable backups when no primary is. */
  get rotation(): readonly Target[] {
    if (this.#epoch !== availability.epoch) this.#refresh();
    return this.#rotation;
  }

  #refresh(): void {
    this.#epoch = availability.epoch;
    const before = this.#rotation;
    let list = this.targets.filter((t) => t.usable && !t.backup);
    if (list.length === 0) list = this.targets.filter((t) => t.usable && t.backup);
    for (const t of this.targets) t.inRotation = false;
    for (const t of list) t.inRotation = true;
    this.#rotation = list;
    if (list.length === 0 && before.length > 0) this.log?.error({ upstream: this.name }, `upstream ${this.name} has no healthy target`);
    else if (list.length > 0 && list[0]!.backup && (before.length === 0 || !before[0]!.backup)) {
      this.log?.warn({ upstream: this.name, targets: list.map((t) => t.label) }, 'upstream using backup targets');
    }
  }

  /**
   * The target for a request: the sticky cookie's when it is genuine and its target in rotation,
   * else the policy's choice. A full target (limits) or one already tried is skipped for the
   * next one in rotation. undefined: nothing in rotation, or everything full.
   */
  pick(ctx: RequestContext, tried?: readonly Target[], cookie?: string): Target | undefined {
    if (this.#epoch !== availability.epoch) this.#refresh();
    const list = this.#rotation;
    const n = list.length;
    if (n === 0) return undefined;
    if (cookie !== undefined && this.sticky !== undefined) {
      const t = this.sticky.targetFor(cookie);
      if (t !== undefined && t.inRotation && t.inflight < t.capacity && (tried === undefined || !tried.includes(t))) return t;
    }
    const t = n === 1 ? list[0]! : this.policy.pick(list, ctx);
    if (t !== undefined && t.inflight < t.capacity && (tried === undefined || !tried.includes(t))) return t;
    const start = this.#cursor++ % n;
    for (let k = 0; k < n; k++) {
      const c = list[(start + k) % n]!;
      if (c.inflight < c.capacity && (tried === undefined || !tried.includes(c))) return c;
    }
    return undefined;
  }

  /** Answers 503 (with Retry-After) when pick() found nothing, and says why in the log (at most once a second). */
  unavailable(ctx: RequestContext): void {
    const now = Date.now();
    if (now - this.#lastComplaint >= 1_000) {
      this.#lastComplaint = now;
      const none = this.rotation.length === 0;
      ctx.plan.log.warn({ upstream: this.name, route: ctx.route?.name },
        none ? `upstream ${this.name} has no healthy target` : `upstream ${this.name}: every target is at its connection limit`);
    }
    ctx.fail(503);
  }

  /** Host header to send for `target`, given the client's. */
  hostFor(target: Target, clientHost: string): string {
    if (this.hostMode === 'preserve') return clientHost || target.address.host;
    if (this.hostMode === 'target') return target.address.host;
    return this.hostMode;
  }

  status(): UpstreamStatus {
    const rotation = this.rotation;
    return {
      name: this.name,
      policy: this.policyName,
      available: rotation.length,
      targets: this.targets.map((t) => ({
        url: t.label,
        state: t.state,
        inRotation: t.inRotation,
        weight: t.weight,
        effectiveWeight: t.effectiveWeight,
        backup: t.backup,
        inflight: t.inflight,
        tunnels: t.tunnels,
        requests: t.requests,
        failures: t.failures,
        retries: t.retries,
        consecutiveFailures: t.consecutiveFailures,
        lastCheckError: t.activeCheck?.lastError ?? '',
      })),
    };
  }
}
