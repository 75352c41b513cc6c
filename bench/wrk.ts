// Runs wrk (pinned off the proxy's core) and parses its --latency report.
import { spawn, spawnSync } from 'node:child_process';
import { track } from './proc.js';

export interface WrkOptions {
  url: string;
  /** taskset core list. */
  cpu: string;
  threads: number;
  connections: number;
  durationSeconds: number;
  /** Extra request headers, e.g. "Connection: close" for one connection (and handshake) per request. */
  headers?: readonly string[];
}

export interface WrkResult {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  bytesRead: string;
  latencyMs: { p50: number; p75: number; p90: number; p99: number };
  /** Socket errors (connect, read, write, timeout) plus non-2xx/3xx responses. */
  errors: number;
  errorDetail: string;
  raw: string;
}

export function wrkVersion(): string {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  return ((r.stdout || r.stderr).split('\n')[0] ?? '').replace(/\s+Copyright.*$/, '').trim();
}

export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = ['-c', String(o.cpu), 'wrk', '-t', String(o.threads), '-c', String(o.connections), '-d', `${o.durationSeconds}s`, '--latency', '--timeout', '5s'];
  for (const h of o.headers ?? []) args.push('-H', h);
  args.push(o.url);
  return new Promise((resolve, reject) => {
    const p = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(p);
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
    p.stderr.setEncoding('utf8').on('data', (c: string) => { err += c; });
    const killer = setTimeout(() => p.kill('SIGKILL'), (o.durationSeconds + 30) * 1000);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(killer);
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${err || out}`));
      try { resolve(parseWrk(out)); } catch (e) { reject(e); }
    });
  });
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(value: string, unit: string): number {
  const f = UNIT_MS[unit];
  if (f === undefined) throw new Error(`wrk: unknown time unit "${unit}"`);
  return Number(value) * f;
}

export function parseWrk(out: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+\w+) read/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!total || !rps) throw new Error(`cannot parse wrk output:\n${out}`);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  let errors = 0;
  const details: string[] = [];
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock) {
    errors += Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]);
    details.push(sock[0]);
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) { errors += Number(non2xx[1]); details.push(non2xx[0]); }
  return {
    requests: Number(total[1]),
    seconds: toMs(total[2]!, total[3]!) / 1000,
    requestsPerSecond: Number(rps[1]),
    bytesRead: total[4]!,
    latencyMs: { p50: pct('50'), p75: pct('75'), p90: pct('90'), p99: pct('99') },
    errors,
    errorDetail: details.join('; '),
    raw: out,
  };
}
