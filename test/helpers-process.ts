// Helpers for tests that run Portico as a separate process through its CLI, the way an operator
// does: a temp YAML file, `portico run --config`, signals, and the process's own RSS from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/test/). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'portico.js');

export interface CliProcess {
  child: ChildProcess;
  pid: number;
  /** Everything written so far, as text. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first line of stdout/stderr matching `re` (searching what came already, too). */
  waitForLine(re: RegExp, timeoutMs?: number, stream?: 'stdout' | 'stderr' | 'any'): Promise<string>;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  signal(sig: NodeJS.Signals): void;
  /** Sends SIGKILL if still running, and waits for the exit. */
  kill(): Promise<void>;
}

/** Runs `portico ARGS…` with the pinned Node (process.execPath). */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; stream: 'stdout' | 'stderr' | 'any'; resolve: (line: string) => void }[] = [];
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      const line = findLine(w.stream === 'stdout' ? out : w.stream === 'stderr' ? err : `${out}\n${err}`, w.re);
      if (line !== undefined) { waiters.splice(i, 1); w.resolve(line); }
    }
  };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; check(); });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; check(); });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLine(re, timeoutMs = 10_000, stream = 'any') {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms\nstdout:\n${out.slice(-2000)}\nstderr:\n${err.slice(-2000)}`)), timeoutMs);
        const w = { re, stream, resolve: (line: string) => { clearTimeout(timer); resolve(line); } };
        waiters.push(w);
        check();
        void exited.then((code) => {
          if (waiters.includes(w)) { clearTimeout(timer); reject(new Error(`process exited (${code}) before a line matching ${re}\nstdout:\n${out.slice(-2000)}\nstderr:\n${err.slice(-2000)}`)); }
        });
      });
    },
    signal: (sig) => { if (child.exitCode === null && child.signalCode === null) child.kill(sig); },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs the CLI to completion: exit code and output. */
export async function runCliToEnd(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const p = runCli(args, opts);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

function findLine(text: string, re: RegExp): string | undefined {
  for (const line of text.split('\n')) if (re.test(line)) return line;
  return undefined;
}

/** A temporary directory, removed by `cleanup()`. */
export function tempDir(prefix = 'portico-test-'): { dir: string; file(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, file: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeText(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}

export interface CliPortico extends CliProcess {
  port: number;
  url: string;
  configFile: string;
  /** Rewrites the config file (the caller sends SIGHUP when ready). */
  writeConfig(yaml: string): void;
  /** Sends SIGHUP and waits for the next "config reloaded" (or "reload refused") log line. */
  reload(): Promise<string>;
  /** VmRSS of the process in bytes. */
  rss(): number;
  stop(): Promise<void>;
}

/**
 * Starts `portico run --config FILE` with `yaml` (which should listen on "127.0.0.1:0") and
 * waits for its "portico started" line; the bound port is read from that line.
 */
export async function startCliPortico(yaml: string, opts: { dir?: string; extraArgs?: string[] } = {}): Promise<CliPortico> {
  const tmp = opts.dir === undefined ? tempDir() : undefined;
  const dir = opts.dir ?? tmp!.dir;
  const configFile = join(dir, 'portico.yaml');
  writeFileSync(configFile, yaml);
  const p = runCli(['run', '--config', configFile, ...(opts.extraArgs ?? [])]);
  const line = await p.waitForLine(/portico started/, 15_000);
  const m = /"listen":\["[^"]*:(\d+)"/.exec(line);
  if (!m) { await p.kill(); throw new Error(`cannot find the port in: ${line}`); }
  const port = Number(m[1]);
  let reloads = 0;
  return {
    ...p,
    port,
    url: `http://127.0.0.1:${port}`,
    configFile,
    writeConfig: (text) => writeFileSync(configFile, text),
    async reload() {
      // Count outcome lines so each reload waits for its own.
      const before = countMatches(p.stderr(), /config reloaded|reload refused/g);
      p.signal('SIGHUP');
      reloads++;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const lines = p.stderr().split('\n').filter((l) => /config reloaded|reload refused/.test(l));
        if (lines.length > before) return lines[before]!;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no reload outcome after SIGHUP #${reloads}\n${p.stderr().slice(-2000)}`);
    },
    rss: () => rssOf(p.pid),
    async stop() {
      p.signal('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 5_000);
      await p.exited;
      clearTimeout(timer);
      tmp?.cleanup();
    },
  };
}

function countMatches(text: string, re: RegExp): number {
  return text.match(re)?.length ?? 0;
}

/** Resident set size of `pid`, in bytes (Linux). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Samples `pid`'s RSS every `everyMs` until stopped; returns the peak. */
export function sampleRss(pid: number, everyMs = 100): { stop(): { peak: number; samples: number[] } } {
  const samples: number[] = [];
  const take = () => { try { samples.push(rssOf(pid)); } catch { /* process gone */ } };
  take();
  // Unref'd: a test that fails before stop() must not keep its process alive.
  const timer = setInterval(take, everyMs).unref();
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peak: Math.max(...samples), samples };
    },
  };
}

/** A YAML config proxying everything to `targets`, listening on an ephemeral port. */
export function proxyYaml(targets: string[], extra = ''): string {
  return `server:
  listen: ["127.0.0.1:0"]
upstreams:
  app:
    targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]
routes:
  - name: app
    match: {}
    upstream: app
${extra}`;
}
