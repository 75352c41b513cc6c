// One backend address of one upstream: its keep-alive connection pool, its health state and its
// counters. A Target belongs to exactly one upstream (two upstreams naming the same address get
// two Targets), so weights, health checks and limits never conflict between upstreams.
import type { UpstreamTls } from '../tls/upstream.js';
import { Pool } from 'undici';
import type { Logger } from 'pino';
import type { ActiveHealthCheck } from './health-active.js';

export interface TargetAddress {
  /** As written in the config, normalised ("http://127.0.0.1:8000", "unix:/run/api.sock"). */
  url: string;
  protocol: 'http:' | 'https:';
  /** host:port for TCP targets; "localhost" for Unix sockets. */
  host: string;
  /** For TCP connects: the host without brackets, and the port (the scheme's default if none). */
  hostname: string;
  port: number;
  socketPath: string | undefined;
  /** The origin undici is given. */
  origin: string;
}

/** Parses "http://host:port", "https://host:port", "host:port" or "unix:/path". Throws with a readable message. */
export function parseTarget(input: string): TargetAddress {
  if (input.startsWith('unix:')) {
    const socketPath = input.slice(5);
    if (!socketPath.startsWith('/')) throw new Error('a unix target is "unix:/absolute/path.sock"');
    return { url: input, protocol: 'http:', host: 'localhost', hostname: 'localhost', port: 80, socketPath, origin: 'http://localhost' };
  }
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `http://${input}`;
  let url: URL;
  try { url = new URL(withScheme); } catch { throw new Error(`expected "http://host:port", "https://host:port" or "unix:/path", got "${input}"`); }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported scheme "${url.protocol}" (http, https or unix)`);
  if (url.pathname !== '/' || url.search || url.hash || url.username) throw new Error(`a target is an origin only, without path, query or credentials: "${input}"`);
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { url: url.origin, protocol: url.protocol, host: url.host, hostname, port, socketPath: undefined, origin: url.origin };
}

export interface PoolOptions {
  connections: number;
  idleTimeout: number;
  connectTimeout: number;
  /** TLS toward https:// targets (CA, SNI, verification), from upstreams.<name>.tls. */
  tls?: UpstreamTls | undefined;
}

/**
 * Bumped whenever any target's availability changes (health, cool-down, drain, removal). Each
 * Upstream caches its list of usable targets and rebuilds it only when this moved, so the request
 * path pays one integer compare instead of filtering targets per request.
 */
export const availability = { epoch: 0 };

export type TargetState = 'healthy' | 'unhealthy' | 'cooldown' | 'draining';

export class Target {
  readonly key: string;
  readonly upstream: string;
  readonly address: TargetAddress;
  /** TLS options for https:// targets (the upgrade tunnel connects with node:https and needs them too). */
  readonly tls: UpstreamTls | undefined;
  readonly pool: Pool;
  readonly label: string;
  /** From the config; updated in place on reload (the pool and counters stay). */
  weight = 1;
  backup = false;
  drain = false;
  /** `weight`, reduced while the target ramps up after coming back (slow_start). */
  effectiveWeight = 1;
  /** Smooth weighted round robin's running weight (nginx's algorithm). */
  currentWeight = 0;
  /** Requests in flight (sent or waiting for a connection): balancing, limits and draining read it. */
  inflight = 0;
  /** Open upgraded connections (WebSockets); they use their own sockets, not the pool. */
  tunnels = 0;
  /** inflight may not reach this: max_connections + max_pending. */
  capacity = Infinity;
  /** Counters for the programmatic API and logs. */
  requests = 0;
  failures = 0;
  retries = 0;
  /** Passive health: failures since the last success; a cool-down ends at `cooldownUntil`. */
  consecutiveFailures = 0;
  cooldownUntil = 0;
  #cooldownTimer: NodeJS.Timeout | undefined;
  /** Active health: the last verdict (targets start healthy so a restart does not refuse traffic). */
  activeUp = true;
  activeCheck: ActiveHealthCheck | undefined = undefined;
  /** In the upstream's current rotation (set when the upstream rebuilds it); hash rings read it. */
  inRotation = false;
  /** Removed from the config: gets no new request, finishes what it has. */
  retired = false;
  slowStart = 0;
  #rampTimer: NodeJS.Timeout | undefined;
  log: Logger | undefined;

  constructor(key: string, upstream: string, address: TargetAddress, options: PoolOptions) {
    this.key = key;
    this.upstream = upstream;
    this.address = address;
    this.tls = options.tls;
    this.label = address.url;
    this.pool = new Pool(address.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: options.idleTimeout,
      keepAliveMaxTimeout: options.idleTimeout,
      // undici's own defaults are 300s; per-request values are passed at dispatch.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: { timeout: options.connectTimeout, ...options.tls?.connect },
      ...(options.tls?.allowH2 && address.protocol === 'https:' ? { allowH2: true } : {}),
      ...(address.socketPath ? { socketPath: address.socketPath } : {}),
    });
  }

  /** May get new requests (the upstream still prefers primaries over backups). */
  get usable(): boolean {
    return this.activeUp && this.cooldownUntil === 0 && !this.drain && !this.retired;
  }

  get state(): TargetState {
    if (this.drain || this.retired) return 'draining';
    if (!this.activeUp) return 'unhealthy';
    if (this.cooldownUntil !== 0) return 'cooldown';
    return 'healthy';
  }

  /** Active health verdict changed. */
  setActive(up: boolean, reason: string): void {
    if (this.activeUp === up) return;
    this.activeUp = up;
    availability.epoch++;
    if (up) {
      this.log?.info({ upstream: this.upstream, target: this.label }, 'target healthy: back in rotation');
      if (this.usable) this.#startRamp();
    } else {
      this.log?.warn({ upstream: this.upstream, target: this.label, reason }, 'target unhealthy: out of rotation');
    }
  }

  /** Passive health: out of rotation for `ms`, then back (ramping up over slow_start). */
  startCooldown(ms: number, reason: string): void {
    if (this.cooldownUntil !== 0 || this.retired) return;
    this.cooldownUntil = Date.now() + ms;
    availability.epoch++;
    this.log?.warn({ upstream: this.upstream, target: this.label, reason, failures: this.consecutiveFailures, cooldownMs: ms }, 'target failing: out of rotation for a cool-down');
    this.#cooldownTimer = setTimeout(() => {
      this.#cooldownTimer = undefined;
      this.cooldownUntil = 0;
      this.consecutiveFailures = 0;
      availability.epoch++;
      this.log?.info({ upstream: this.upstream, target: this.label }, 'target cool-down over: back in rotation');
      if (this.usable) this.#startRamp();
    }, ms);
    this.#cooldownTimer.unref();
  }

  /** Drain flag from the config (reload). */
  setDrain(drain: boolean): void {
    if (this.drain === drain) return;
    this.drain = drain;
    availability.epoch++;
    this.log?.info({ upstream: this.upstream, target: this.label, inflight: this.inflight }, drain ? 'target draining' : 'target no longer draining');
  }

  /**
   * slow_start: the weight grows linearly from 10% to 100%. A timer updates `effectiveWeight`
   * in steps, so policies read a plain number instead of looking at the clock per request.
   */
  #startRamp(): void {
    if (this.slowStart <= 0) return;
    clearInterval(this.#rampTimer);
    const start = Date.now();
    const step = Math.max(50, this.slowStart / 20);
    this.effectiveWeight = this.weight * 0.1;
    this.#rampTimer = setInterval(() => {
      const f = (Date.now() - start) / this.slowStart;
      if (f >= 1) {
        this.effectiveWeight = this.weight;
        clearInterval(this.#rampTimer);
        this.#rampTimer = undefined;
      } else {
        this.effectiveWeight = this.weight * Math.max(0.1, f);
      }
    }, step);
    this.#rampTimer.unref();
  }

  /** Config values changed on reload. */
  setWeight(weight: number): void {
    this.weight = weight;
    if (this.#rampTimer === undefined) this.effectiveWeight = weight;
  }

  /** Removed from the config: no new requests; in-flight ones (and the pool) finish, then close. */
  close(): Promise<void> {
    if (!this.retired) {
      this.retired = true;
      availability.epoch++;
    }
    this.activeCheck?.stop();
    clearTimeout(this.#cooldownTimer);
    clearInterval(this.#rampTimer);
    return this.pool.close();
  }
}

/**
 * Targets are keyed by upstream, address, pool options and active health-check config, so a
 * reload that keeps them keeps the connections, the health state and the counters.
 */
export function targetKey(upstream: string, address: TargetAddress, options: PoolOptions, healthKey: string): string {
  return `${upstream}|${address.url}|${options.connections}|${options.idleTimeout}|${options.connectTimeout}|${healthKey}|${options.tls?.key ?? ''}`;
}
