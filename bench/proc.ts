// Processes the bench starts (pinned with taskset), their CPU time from /proc, free ports and
// readiness checks. Everything started here is stopped here, also on Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

/** Clock ticks per second for /proc/PID/stat (USER_HZ); 100 on every Linux we target. */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export interface Started {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  readonly proc: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  stop(timeoutMs?: number): Promise<void>;
}

const running = new Set<Started>();

/**
 * Starts `command args` pinned to `cpu` (taskset execs the command, so the pid is the command's).
 * stdout and stderr go to `logPath`.
 */
/** `cpu`: a core number or a taskset list such as "1-3". */
export function startPinned(name: string, cpu: number | string, command: string, args: string[], logPath: string, env?: NodeJS.ProcessEnv): Started {
  const fd = openSync(logPath, 'a');
  const proc = spawn('taskset', ['-c', String(cpu), command, ...args], { stdio: ['ignore', fd, fd], env: env ?? process.env });
  closeSync(fd);
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  let gone = false;
  void exited.then(() => { gone = true; running.delete(started); });
  const started: Started = {
    name, pid: proc.pid, logPath, proc, exited,
    async stop(timeoutMs = 5000) {
      if (gone) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => { if (!gone) proc.kill('SIGKILL'); }, timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(started);
  return started;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/** Short-lived helpers (wrk): killed on exit or signal, nothing else. */
const helpers = new Set<ChildProcess>();
export function track(proc: ChildProcess): void {
  helpers.add(proc);
  proc.once('exit', () => helpers.delete(proc));
}

/** Synchronous cleanups (the temp dir) run on exit, also after a signal. */
const cleanups: (() => void)[] = [];
export function onExit(fn: () => void): void {
  cleanups.push(fn);
}

function killAllNow(): void {
  for (const p of running) { try { p.proc.kill('SIGKILL'); } catch { /* already gone */ } }
  for (const h of helpers) { try { h.kill('SIGKILL'); } catch { /* already gone */ } }
  for (const fn of cleanups.splice(0)) { try { fn(); } catch { /* best effort */ } }
}
process.once('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    console.error(`\nbench: ${sig}, stopping everything it started`);
    for (const h of helpers) { try { h.kill('SIGTERM'); } catch { /* already gone */ } }
    void stopAll().finally(() => process.exit(130));
  });
}

/** Pins this process (all threads) to `cpu`, so the harness never runs on the proxy's core. */
export function pinSelf(cpu: number | string): void {
  spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

/** utime + stime (+ waited-for children) of one process in seconds; undefined when it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  // Fields after "(comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return ticks / CLK_TCK;
}

/** Direct children of `pid` (e.g. nginx workers of a master), by scanning /proc. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** Sum of CPU seconds of several processes. */
export function cpuSeconds(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) total += processCpuSeconds(pid) ?? 0;
  return total;
}

/** Busy and total jiffies of some CPUs from /proc/stat (busy excludes idle and iowait). */
export function coreTicks(cpus: readonly number[]): { busy: number; irq: number; total: number } {
  const out = { busy: 0, irq: 0, total: 0 };
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  for (const cpu of cpus) {
    const line = lines.find((l) => l.startsWith(`cpu${cpu} `));
    if (!line) continue;
    // user nice system idle iowait irq softirq steal
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    out.busy += total - (v[3] ?? 0) - (v[4] ?? 0);
    out.irq += (v[5] ?? 0) + (v[6] ?? 0);
    out.total += total;
  }
  return out;
}

/** "1", "1,3" or "1-3" -> [1] / [1, 3] / [1, 2, 3]. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`expected a core list such as "1" or "1-3", got "${list}"`);
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

export const ticksPerSecond = CLK_TCK;

/** A free TCP port on 127.0.0.1 (bound, then released: good enough on a quiet loopback). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Fetched { status: number; bytes: number; headers: http.IncomingHttpHeaders }

/** One GET without keep-alive; for readiness and sanity checks, never for measuring. */
export function get(url: string, ca?: string): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, { agent: false, ca, servername: 'localhost', timeout: 2000 }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => { bytes += c.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Polls `url` until it answers 200, the process exits, or `timeoutMs` passes. */
export async function waitReady(p: Pick<Started, 'name' | 'exited' | 'logPath'>, url: string, ca?: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | string | undefined;
  void p.exited.then((c) => { exitCode = c; });
  let last = '';
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`${p.name} exited (${exitCode}) before it was ready; see ${p.logPath}:\n${tail(p.logPath)}`);
    try {
      const r = await get(url, ca);
      if (r.status === 200) return;
      last = `status ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${p.name} not ready at ${url} after ${timeoutMs} ms (${last}); see ${p.logPath}:\n${tail(p.logPath)}`);
}

export function tail(path: string, lines = 15): string {
  try { return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Is `command` on PATH? */
export function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Does the TLS server at 127.0.0.1:port resume sessions? Two connections as wrk makes them
 * (TLS 1.2, the first session offered on the second). Also says what the first negotiated.
 */
export async function tlsProbe(port: number, ca: string): Promise<{ resumes: boolean; negotiated: string }> {
  const connect = (session?: Buffer): Promise<{ session: Buffer | undefined; reused: boolean; negotiated: string }> => new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', maxVersion: 'TLSv1.2', ...(session ? { session } : {}) }, () => {
      const out = { session: s.getSession(), reused: s.isSessionReused(), negotiated: `${s.getProtocol() ?? '?'} ${s.getCipher().standardName}` };
      s.end();
      resolve(out);
    });
    s.once('error', reject);
  });
  const first = await connect();
  if (!first.session) return { resumes: false, negotiated: first.negotiated };
  return { resumes: (await connect(first.session)).reused, negotiated: first.negotiated };
}

/**
 * One bench at a time per machine: two runs would pin their proxies to the same core and spoil
 * each other's figures. Waits for a running bench (a lock file holding its pid) up to `waitMs`;
 * a lock whose process is gone is taken over. Released on exit.
 */
export async function benchLock(path: string, waitMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      onExit(() => { try { if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path); } catch { /* gone */ } });
      return true;
    } catch {
      let holder = NaN;
      try { holder = Number(readFileSync(path, 'utf8')); } catch { continue; }
      if (!Number.isInteger(holder) || !alive(holder)) { try { unlinkSync(path); } catch { /* raced */ } continue; }
      if (Date.now() >= deadline) return false;
      if (!told) { console.error(`bench: another bench run (pid ${holder}) is in progress; waiting for it (up to ${Math.round(waitMs / 1000)} s)`); told = true; }
      await sleep(2000);
    }
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}
