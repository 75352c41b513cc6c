// The proxies under test. Each is started fresh for every scenario, pinned to the proxy core,
// and says which processes' CPU time counts. A proxy that cannot serve a scenario throws Skip
// with the reason, which ends up in the table.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startNginxProxy } from './nginx.js';
import { freePort, startPinned, type Started } from './proc.js';
import type { Scenario } from './scenarios.js';

export interface BenchContext {
  /** Repository root (where bin/portico.js is). */
  root: string;
  /** Compiled bench directory (dist/bench). */
  distBench: string;
  tmp: string;
  proxyCpu: number;
  nginxBin: string;
  /** Backend ports; scenarios with one target use the first. */
  backendPorts: readonly number[];
  /** Backend nginx's stub_status port. */
  statusPort: number;
  /** With --profile: where Portico writes a V8 CPU profile per row. */
  profileDir?: string;
  /** The ECDSA P-256 test certificate every HTTPS proxy serves. */
  tls?: { cert: string; key: string };
}

export interface RunningProxy {
  /** The process started (for nginx: the master). */
  process: Started;
  /** Processes whose utime+stime count as the proxy's CPU time. */
  pids(): number[];
  stop(): Promise<void>;
  logPath: string;
  /** Printed with the row (e.g. a fallback that was taken). */
  note?: string;
  /** The row does not measure what the scenario asks (e.g. balance policy not available). */
  fallback?: boolean;
  /** Called after the measured run; may add to the note (e.g. access log size). */
  after?(requests: number): string | undefined;
}

export interface ProxyDef {
  id: string;
  label: string;
  /** Measured unless --only names other proxies. */
  byDefault: boolean;
  start(ctx: BenchContext, sc: Scenario, port: number): Promise<RunningProxy>;
}

export class Skip extends Error {}

function targetAddrs(ctx: BenchContext, sc: Scenario): string[] {
  return ctx.backendPorts.slice(0, sc.targets).map((p) => `127.0.0.1:${p}`);
}

// --- Portico ---------------------------------------------------------------------------------

interface PorticoOptions { accessLog: boolean }

function porticoConfig(ctx: BenchContext, sc: Scenario, port: number, plainPort: number, o: PorticoOptions, withVariant: boolean, logPath: string): Record<string, unknown> {
  const upstream: Record<string, unknown> = { targets: targetAddrs(ctx, sc).map((a) => `http://${a}`) };
  if (sc.balance && withVariant) upstream.balance = sc.balance;
  const server: Record<string, unknown> = { listen: [`127.0.0.1:${port}`] };
  const config: Record<string, unknown> = {
    server,
    upstreams: { backend: upstream },
    routes: [{ name: 'all', match: {}, upstream: 'backend' }],
    log: {
      access: o.accessLog ? { enabled: true, format: 'json', path: logPath } : { enabled: false },
      error: { level: 'warn', path: 'stderr' },
    },
  };
  if (sc.tls) {
    // The shape issue 4 asks for (server.https.listen + tls.certificates). The plain listener is
    // required by the schema but unused: it goes on a port nobody calls.
    server.listen = [`127.0.0.1:${plainPort}`];
    server.https = { listen: [`127.0.0.1:${port}`], redirect_http: false };
    const tls: Record<string, unknown> = { certificates: [{ cert: ctx.tls!.cert, key: ctx.tls!.key }] };
    if (sc.newConnectionPerRequest && withVariant) tls.session_tickets = { enabled: false };
    config.tls = tls;
  }
  return config;
}

function porticoValidate(ctx: BenchContext, file: string): string | undefined {
  const r = spawnSync(process.execPath, [join(ctx.root, 'bin/portico.js'), 'validate', '-c', file], { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr || r.stdout).trim() || `exit ${r.status}`;
}

function portico(id: string, label: string, o: PorticoOptions): ProxyDef {
  return {
    id, label, byDefault: true,
    async start(ctx, sc, port) {
      const dir = join(ctx.tmp, `${id}-${sc.id}`);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'portico.yaml');
      const accessLog = join(dir, 'access.log');
      let note: string | undefined;
      let fallback = false;
      const plainPort = sc.tls ? await freePort() : 0;
      if (sc.tls) {
        // First the plain HTTPS config: does this build have an HTTPS listener at all?
        writeFileSync(file, stringify(porticoConfig(ctx, sc, port, plainPort, o, false, accessLog)));
        const noHttps = porticoValidate(ctx, file);
        if (noHttps && /https|tls/i.test(noHttps)) throw new Skip(`this Portico build has no HTTPS listener (server.https) yet: ${firstLine(noHttps)}`);
        if (noHttps) throw new Error(`Portico config rejected (${file}):\n${noHttps}`);
      }
      writeFileSync(file, stringify(porticoConfig(ctx, sc, port, plainPort, o, true, accessLog)));
      let problem = porticoValidate(ctx, file);
      if (problem && sc.tls && sc.newConnectionPerRequest) {
        throw new Skip(`cannot turn off TLS session resumption (tls.session_tickets.enabled: false): ${firstLine(problem)}`);
      }
      if (problem && sc.balance && /balance/.test(problem)) {
        writeFileSync(file, stringify(porticoConfig(ctx, sc, port, plainPort, o, false, accessLog)));
        problem = porticoValidate(ctx, file);
        note = `"balance: ${sc.balance}" not accepted by this build; measured with the default policy`;
        fallback = true;
      }
      if (problem) throw new Error(`Portico config rejected (${file}):\n${problem}`);
      const profile = ctx.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`, `--cpu-prof-name=${id}-${sc.id}-${Date.now()}.cpuprofile`] : [];
      if (ctx.profileDir) note = [note, `profiled (CPU figures include the profiler): ${ctx.profileDir}`].filter(Boolean).join('; ');
      const p = startPinned(label, ctx.proxyCpu, process.execPath, [...profile, join(ctx.root, 'bin/portico.js'), 'run', '-c', file], join(dir, 'stdout.log'));
      const running: RunningProxy = { process: p, pids: () => [p.pid], stop: () => p.stop(), logPath: p.logPath };
      if (note !== undefined) running.note = note;
      if (fallback) running.fallback = true;
      if (o.accessLog) {
        running.after = () => {
          const r = spawnSync('wc', ['-lc', accessLog], { encoding: 'utf8' });
          const [lines, bytes] = r.stdout.trim().split(/\s+/).map(Number);
          return `access log: ${lines ?? 0} lines, ${((bytes ?? 0) / 1e6).toFixed(0)} MB`;
        };
      }
      return running;
    },
  };
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim() !== '')?.trim() ?? s;
}

// --- nginx -----------------------------------------------------------------------------------

function nginx(id: string, label: string, forwardingHeaders: boolean, byDefault: boolean): ProxyDef {
  return {
    id, label, byDefault,
    async start(ctx, sc, port) {
      const prefix = join(ctx.tmp, `${id}-${sc.id}`);
      const n = startNginxProxy(ctx.nginxBin, prefix, ctx.proxyCpu, {
        port,
        targets: targetAddrs(ctx, sc),
        ...(sc.balance === 'least_requests' ? { balance: 'least_conn' } : {}),
        forwardingHeaders,
        ...(sc.tls ? { tls: ctx.tls!, noResumption: sc.newConnectionPerRequest === true } : {}),
      });
      return { process: n.process, pids: () => n.pids(), stop: () => n.stop(), logPath: join(prefix, 'error.log') };
    },
  };
}

// --- Node peers ------------------------------------------------------------------------------

function nodePeer(id: string, label: string, script: string): ProxyDef {
  return {
    id, label, byDefault: true,
    async start(ctx, sc, port) {
      if (sc.targets !== 1 || sc.balance) throw new Skip(`${label} has no load balancing`);
      if (sc.tls) throw new Skip('HTTPS rows compare Portico with nginx only');
      const p = startPinned(label, ctx.proxyCpu, process.execPath, ['--no-deprecation', join(ctx.distBench, 'peers', script), String(port), `http://${targetAddrs(ctx, sc)[0]}`],
        join(ctx.tmp, `${id}-${sc.id}.log`));
      return { process: p, pids: () => [p.pid], stop: () => p.stop(), logPath: p.logPath };
    },
  };
}

export const PROXIES: readonly ProxyDef[] = [
  portico('portico', 'Portico', { accessLog: false }),
  portico('portico-log', 'Portico, access log to file', { accessLog: true }),
  nginx('nginx', 'nginx', true, true),
  nginx('nginx-bare', 'nginx, no forwarding headers', false, false),
  nodePeer('http-proxy', 'http-proxy', 'http-proxy.js'),
  nodePeer('fastify-http-proxy', '@fastify/http-proxy', 'fastify-http-proxy.js'),
];
