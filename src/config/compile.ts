// Config -> Plan. Everything a request needs is decided here: matchers, handler chains, header
// sets, upstream objects. Long-lived resources (target connection pools) are looked up in the
// previous generation by key and carried over when unchanged.
import { BlockList, isIP } from 'node:net';
import type { Config, RouteConfig } from './schema.js';
import type { z } from 'zod';
import type { UpstreamSchema } from './schema/upstream.js';
import type { CompiledRoute, Plan, ServerSettings } from './plan.js';
import { ConfigError } from './errors.js';
import { Router } from '../router/router.js';
import { composeChain } from '../handlers/chain.js';
import type { Action, Handler } from '../handlers/types.js';
import { compileHeaderOps, headersHandler } from '../handlers/headers/index.js';
import { redirectAction, compileTemplate } from '../handlers/redirect/index.js';
import { respondAction } from '../handlers/respond/index.js';
import { proxyAction } from '../handlers/proxy/index.js';
import { availability, parseTarget, Target, targetKey } from '../upstream/target.js';
import { compileUpstreamTls } from '../tls/upstream.js';
import { Upstream } from '../upstream/upstream.js';
import { ActiveHealthCheck, activeHealthKey, type ActiveHealthConfig } from '../upstream/health-active.js';
import { PassiveHealth } from '../upstream/health-passive.js';
import { RetryPolicy } from '../upstream/retry.js';
import { StickyCookies } from '../upstream/sticky.js';
import { createPolicy } from '../upstream/policies/index.js';
import { capacityOf } from '../upstream/limits.js';
import type { Logs } from '../observe/logs.js';

export interface CompileInput {
  config: Config;
  generation: number;
  logs: Logs;
  /** Target pools of the running plan, reused when their key is unchanged. */
  previousTargets?: ReadonlyMap<string, Target> | undefined;
  file?: string | undefined;
}

export function compilePlan(input: CompileInput): Plan {
  const { config, logs } = input;
  const file = input.file ?? '<config>';
  const problems: ConstructorParameters<typeof ConfigError>[0] = [];

  const targets = new Map<string, Target>();
  const upstreams = new Map<string, Upstream>();
  /** Config values applied to carried-over targets only once the whole plan compiled. */
  const updates: (() => void)[] = [];
  for (const [name, up] of Object.entries(config.upstreams)) {
    compileUpstream(name, up, input, file, targets, upstreams, updates, problems, logs);
  }
  const settings = compileSettings(config);
  const routes: { route: CompiledRoute; conditions: ConstructorParameters<typeof Router>[0][number]['conditions'] }[] = [];
  config.routes.forEach((rc, index) => {
    try {
      routes.push({ route: compileRoute(rc, index, upstreams, settings), conditions: {
        hosts: rc.match.host, paths: rc.match.path, exactPaths: rc.match.exact_path, methods: rc.match.method, headers: rc.match.headers,
      } });
    } catch (err) {
      problems.push({ file, key: `routes[${index}]`, message: (err as Error).message });
    }
  });

  if (problems.length > 0) {
    // Pools created for this failed plan are not referenced anywhere: close them.
    for (const [key, t] of targets) if (!input.previousTargets?.has(key)) void t.close();
    throw new ConfigError(problems);
  }
  for (const apply of updates) apply();

  return {
    generation: input.generation,
    config,
    settings,
    router: new Router(routes),
    upstreams,
    targets,
    log: logs.log,
    access: logs.access,
  };
}

type UpstreamConfig = z.output<typeof UpstreamSchema>;

/**
 * One upstream: its targets (carried over from the running plan when their key is unchanged, so
 * connections, health state and counters survive), policy, health, retries and limits.
 */
function compileUpstream(
  name: string, up: UpstreamConfig, input: CompileInput, file: string, targets: Map<string, Target>,
  upstreams: Map<string, Upstream>, updates: (() => void)[], problems: ConstructorParameters<typeof ConfigError>[0], logs: Logs,
): void {
  const list: Target[] = [];
  const weights: number[] = [];
  const maxConnections = up.limits.max_connections ?? up.keepalive.connections;
  const poolOptions = {
    connections: maxConnections, idleTimeout: up.keepalive.idle_timeout, connectTimeout: up.timeouts.connect,
    tls: compileUpstreamTls(name, up.tls, up.targets.some((t) => (typeof t === 'string' ? t : t.url).startsWith('https:')), logs.log),
  };
  const a = up.health.active;
  const active: ActiveHealthConfig | undefined = a === undefined ? undefined : {
    kind: a.tcp ? 'tcp' : 'http', path: a.path, interval: a.interval, timeout: a.timeout, rise: a.rise, fall: a.fall,
    statusMin: a.status[0], statusMax: a.status[1], body: a.body, host: a.host, headers: a.headers,
  };
  const healthKey = activeHealthKey(active);
  const capacity = capacityOf({ maxConnections, maxPending: up.limits.max_pending });
  const seen = new Set<string>();
  up.targets.forEach((t, i) => {
    const spec = typeof t === 'string' ? { url: t, weight: 1, backup: false, drain: false } : t;
    let address;
    try { address = parseTarget(spec.url); } catch (err) {
      problems.push({ file, key: `upstreams.${name}.targets[${i}]`, message: (err as Error).message });
      return;
    }
    if (seen.has(address.url)) {
      problems.push({ file, key: `upstreams.${name}.targets[${i}]`, message: `"${address.url}" is listed twice (use weight for a bigger share)` });
      return;
    }
    seen.add(address.url);
    const key = targetKey(name, address, poolOptions, healthKey);
    const previous = input.previousTargets?.get(key);
    const target = previous ?? new Target(key, name, address, poolOptions);
    if (previous === undefined) {
      // A new target is not referenced by any running plan yet: set it up now.
      target.setWeight(spec.weight);
      target.backup = spec.backup;
      target.drain = spec.drain;
    }
    targets.set(key, target);
    list.push(target);
    weights.push(spec.weight);
    updates.push(() => {
      target.log = logs.log;
      target.setWeight(spec.weight);
      target.backup = spec.backup;
      target.setDrain(spec.drain);
      target.capacity = capacity;
      target.slowStart = up.slow_start;
      if (active !== undefined && target.activeCheck === undefined) {
        target.activeCheck = new ActiveHealthCheck(target, active);
        target.activeCheck.start();
      }
    });
  });
  // Backup flags and weights may have changed on carried-over targets: rebuild rotations.
  updates.push(() => { availability.epoch++; });
  const r = up.retries;
  const p = up.health.passive;
  upstreams.set(name, new Upstream(name, list, {
    connect: up.timeouts.connect,
    response: up.timeouts.response,
    read: up.timeouts.read,
    websocketIdle: up.timeouts.websocket_idle,
  }, up.host, {
    policy: createPolicy(up.balance, list, weights),
    policyName: typeof up.balance === 'string' ? up.balance : `hash ${up.balance.hash}`,
    retry: new RetryPolicy({
      attempts: r.attempts, on: r.on, budget: r.budget, tryTimeout: r.try_timeout ?? up.timeouts.response,
      deadline: r.deadline, nonIdempotent: r.non_idempotent, bufferBody: r.buffer_body,
    }),
    // Like nginx with a single server: failures cannot take out the only target (it would turn
    // a brief error into a cool-down of refusals with nothing to fail over to).
    passive: p.failures > 0 && list.length > 1 ? new PassiveHealth({ failures: p.failures, cooldown: p.cooldown, on: p.on }) : undefined,
    sticky: up.sticky === undefined ? undefined : new StickyCookies({
      cookie: up.sticky.cookie, key: up.sticky.key, maxAge: up.sticky.max_age, sameSite: up.sticky.same_site, secure: up.sticky.secure,
    }, name, list),
    log: logs.log,
  }));
}

function compileSettings(config: Config): ServerSettings {
  const s = config.server;
  let trusted: BlockList | undefined;
  let trustUnix = false;
  for (const entry of s.trusted_proxies) {
    if (entry === 'unix') { trustUnix = true; continue; }
    trusted ??= new BlockList();
    const [addr, bits] = entry.split('/') as [string, string | undefined];
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) trusted.addAddress(addr, family);
    else trusted.addSubnet(addr, Number(bits), family);
  }
  const id = s.headers.request_id;
  return {
    trustedProxies: trusted,
    trustUnixPeers: trustUnix,
    via: s.headers.via,
    forwarded: s.headers.forwarded,
    hideResponseHeaders: new Set(s.headers.hide.map((h) => h.toLowerCase())),
    requestIdHeader: id === false ? undefined : id.toLowerCase(),
    paths: { mergeSlashes: s.paths.merge_slashes, encodedSlashes: s.paths.encoded_slashes },
    maxBodySize: s.limits.max_body_size,
  };
}

function compileRoute(rc: RouteConfig, index: number, upstreams: Map<string, Upstream>, settings: ServerSettings): CompiledRoute {
  const name = rc.name ?? `route${index}`;
  const handlers: Handler[] = [];
  if (rc.request_headers || rc.response_headers) {
    handlers.push(headersHandler(
      rc.request_headers ? compileHeaderOps(rc.request_headers) : undefined,
      rc.response_headers ? compileHeaderOps(rc.response_headers) : undefined,
    ));
  }
  let action: Action;
  if (rc.upstream !== undefined) {
    action = proxyAction(upstreams.get(rc.upstream)!, {
      stripPrefix: rc.strip_prefix,
      rewrite: rc.rewrite ? { regex: new RegExp(rc.rewrite.regex), to: rc.rewrite.to } : undefined,
      addPrefix: rc.add_prefix,
    }, rc.max_body_size ?? settings.maxBodySize);
  } else if (rc.redirect !== undefined) {
    compileTemplate(rc.redirect.to); // throws on an unknown placeholder
    action = redirectAction(rc.redirect.to, rc.redirect.status);
  } else {
    const r = rc.respond!;
    action = respondAction(r.status, r.headers, r.body);
  }
  return { name, index, run: composeChain(handlers, action) };
}
