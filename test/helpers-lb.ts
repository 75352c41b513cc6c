// Helpers for the load-balancing tests: backends that say who they are and can be told to fail,
// backends in child processes (so SIGKILL is real), and a bounded keep-alive load generator.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { startBackend, type Backend } from './helpers.js';

export interface NamedBackend extends Backend {
  name: string;
  /** Requests other than health checks. */
  hits: number;
  /** Health-check requests (path /healthz). */
  checks: number;
  /** Status for ordinary requests. */
  status: number;
  /** Status for /healthz. */
  health: number;
  /** Delay before answering ordinary requests. */
  delayMs: number;
  /** Requests being answered right now. */
  active: number;
}

/** A backend answering `name` (text) with `status`; /healthz answers `health`. */
export async function startNamed(name: string): Promise<NamedBackend> {
  const state = { hits: 0, checks: 0, status: 200, health: 200, delayMs: 0, active: 0 };
  const backend = await startBackend((req, res) => {
    if (req.url === '/healthz') {
      state.checks++;
      res.writeHead(state.health, { 'content-type': 'text/plain' });
      res.end(state.health < 400 ? 'ok' : 'sick');
      return;
    }
    state.hits++;
    state.active++;
    const answer = () => {
      state.active--;
      res.writeHead(state.status, { 'content-type': 'text/plain', 'x-backend': name });
      res.end(name);
    };
    if (state.delayMs > 0) setTimeout(answer, state.delayMs);
    else answer();
  });
  return Object.assign(state, backend, { name }) as NamedBackend;
}

/** Counts of each value. */
/** Starts `n` named backends b0…b(n-1); each is closed by the test file's `cleanup` list. */
export async function startNamedBackends(n: number, cleanup: (() => Promise<void>)[]): Promise<NamedBackend[]> {
  const list = await Promise.all(Array.from({ length: n }, (_, i) => startNamed(`b${i}`)));
  for (const b of list) cleanup.push(() => b.close());
  return list;
}

export function tally(values: Iterable<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

export interface ChildBackend {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  /** Makes ordinary requests answer `status` from now on. */
  setStatus(status: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** The backend program run in a child process: answers its name, status set over stdin. */
const CHILD = `
const http = require('node:http');
const name = process.argv[1];
let status = 200;
const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(status, { 'content-type': 'text/plain' }); res.end(name); });
});
server.listen(0, '127.0.0.1', () => process.stdout.write('port ' + server.address().port + '\\n'));
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  status = Number(line);
  process.stdout.write('status ' + status + '\\n');
});
`;

export async function startChildBackend(name: string): Promise<ChildBackend> {
  const child = spawn(process.execPath, ['-e', CHILD, name], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const waiters: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiters.shift()?.(line));
  const next = () => new Promise<string>((resolve) => waiters.push(resolve));
  const first = await Promise.race([next(), once(child, 'exit').then(() => 'exit')]);
  const m = /^port (\d+)$/.exec(first);
  if (!m) throw new Error(`child backend ${name} did not start: ${first}`);
  const port = Number(m[1]);
  const exited = once(child, 'exit');
  return {
    name, port, url: `http://127.0.0.1:${port}`, child,
    async setStatus(status) {
      const ack = next();
      child.stdin!.write(`${status}\n`);
      await ack;
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

export interface LoadResult {
  /** Status of each response, by request index (0: no response). */
  statuses: number[];
  /** Response body of each request (the backend name on success). */
  bodies: string[];
  /** Client-side errors (no response at all), by message. */
  errors: string[];
  ms: number;
}

/**
 * `total` requests over `concurrency` keep-alive connections; `onProgress(done)` runs after each
 * response (to kill a backend mid-run). Bounded by count; each request has a 10 s timeout.
 */
export async function runLoad(url: string, opts: {
  total: number;
  concurrency: number;
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  onProgress?: (done: number) => void | Promise<void>;
}): Promise<LoadResult> {
  const agent = new Agent({ connections: opts.concurrency, keepAliveTimeout: 10_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const statuses: number[] = new Array<number>(opts.total).fill(0);
  const bodies: string[] = new Array<string>(opts.total).fill('');
  const errors: string[] = [];
  let next = 0;
  let done = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < opts.total) {
      const i = next++;
      try {
        const res = await request(url, {
          method: opts.method ?? 'GET', dispatcher: agent, headers: opts.headers,
          ...(opts.body !== undefined ? { body: opts.body } : {}),
        });
        bodies[i] = await res.body.text();
        statuses[i] = res.statusCode;
      } catch (err) {
        errors.push((err as Error).message);
      }
      done++;
      await opts.onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const ms = performance.now() - start;
  await agent.close();
  return { statuses, bodies, errors, ms };
}
