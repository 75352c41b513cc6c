// Config -> Plan. Everything a request needs is decided here: matchers, handler chains, header
// sets, upstream objects. Long-lived resources (target connection pools) are looked up in the
// previous generation by key and carried over when unchanged.
import { BlockList, isIP } from 'node:net';
import type { Config, RouteConfig } from './schema.js';
import type { CompiledRoute, Plan, ServerSettings } from './plan.js';
import { ConfigError } from './errors.js';
import { Router } from '../router/router.js';
import { composeChain } from '../handlers/chain.js';
import type { Action, Handler } from '../handlers/types.js';
import { compileHeaderOps, headersHandler } from '../handlers/headers/index.js';
import { redirectAction, compileTemplate } from '../handlers/redirect/index.js';
import { respondAction } from '../handlers/respond/index.js';
import { proxyAction } from '../handlers/proxy/index.js';
import { parseTarget, Target, targetKey } from '../upstream/target.js';
import { Upstream } from '../upstream/upstream.js';
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
  for (const [name, up] of Object.entries(config.upstreams)) {
    const list: Target[] = [];
    const poolOptions = { connections: up.keepalive.connections, idleTimeout: up.keepalive.idle_timeout, connectTimeout: up.timeouts.connect };
    up.targets.forEach((t, i) => {
      const url = typeof t === 'string' ? t : t.url;
      let address;
      try { address = parseTarget(url); } catch (err) {
        problems.push({ file, key: `upstreams.${name}.targets[${i}]`, message: (err as Error).message });
        return;
      }
      const key = targetKey(address, poolOptions);
      let target = targets.get(key) ?? input.previousTargets?.get(key);
      if (!target) target = new Target(address, poolOptions);
      targets.set(key, target);
      list.push(target);
    });
    upstreams.set(name, new Upstream(name, list, {
      connect: up.timeouts.connect,
      response: up.timeouts.response,
      read: up.timeouts.read,
      websocketIdle: up.timeouts.websocket_idle,
    }, up.host));
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
