// One access log line per request, in JSON or the nginx/Apache "combined" format.
// Lines are built by hand: JSON.stringify only for the fields a client controls.
import type { RequestContext } from '../server/context.js';
import { BatchWriter } from './batch-writer.js';

export class AccessLog {
  readonly format: 'json' | 'combined';
  readonly path: string;
  readonly dest: BatchWriter;

  constructor(format: 'json' | 'combined', path: string) {
    this.format = format;
    this.path = path;
    this.dest = new BatchWriter(path);
  }

  /** `status` 499 means the client closed the connection before the response was complete. */
  write(ctx: RequestContext, status: number): void {
    const duration = performance.now() - ctx.start;
    const req = ctx.req;
    this.dest.write(this.format === 'json' ? jsonLine(ctx, req.method ?? '-', req.url ?? '-', status, duration) : combinedLine(ctx, status));
  }

  /** A request that never got as far as a context (malformed, timed out): only what is known. */
  writeRejected(client: string, status: number): void {
    if (this.format === 'json') {
      this.dest.write(`{"time":"${isoNow()}","client":${JSON.stringify(client)},"method":"-","uri":"-","status":${status},"bytes":0,"duration_ms":0,"route":null}\n`);
    } else {
      this.dest.write(`${client} - - [${localTime()}] "-" ${status} 0 "-" "-"\n`);
    }
  }

  reopen(): Promise<void> {
    return this.dest.reopen();
  }

  close(): Promise<void> {
    return this.dest.close();
  }
}

let isoMs = 0;
let isoText = '';
/** ISO time, formatted at most once per millisecond (many lines share one at load). */
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) { isoMs = now; isoText = new Date(now).toISOString(); }
  return isoText;
}

function jsonLine(ctx: RequestContext, method: string, uri: string, status: number, duration: number): string {
  const h = ctx.incoming;
  return `{"time":"${isoNow()}","client":"${ctx.clientIp}","method":${JSON.stringify(method)},` +
    `"uri":${JSON.stringify(uri)},"host":${JSON.stringify(ctx.rawHost)},"status":${status},"bytes":${ctx.bytesSent},` +
    `"duration_ms":${duration.toFixed(3)},"route":${ctx.route ? JSON.stringify(ctx.route.name) : 'null'},` +
    `"target":${ctx.target ? JSON.stringify(ctx.target) : 'null'},` +
    `"upstream_ms":${ctx.upstreamMs >= 0 ? ctx.upstreamMs.toFixed(3) : 'null'},` +
    `"request_id":${ctx.requestId ? JSON.stringify(ctx.requestId) : 'null'},` +
    `"user_agent":${h.userAgent === undefined ? 'null' : JSON.stringify(h.userAgent)},` +
    `"referer":${h.referer === undefined ? 'null' : JSON.stringify(h.referer)}}\n`;
}

/** Apache/nginx combined, plus request time, route, target and upstream time at the end. */
function combinedLine(ctx: RequestContext, status: number): string {
  const req = ctx.req;
  const h = ctx.incoming;
  const duration = (performance.now() - ctx.start) / 1000;
  return `${ctx.clientIp} - - [${localTime()}] "${escapeCombined(`${req.method} ${req.url} HTTP/${req.httpVersion}`)}" ` +
    `${status} ${ctx.bytesSent} "${escapeCombined(h.referer ?? '-')}" "${escapeCombined(h.userAgent ?? '-')}" ` +
    `rt=${duration.toFixed(3)} route=${ctx.route?.name ?? '-'} target=${ctx.target || '-'} ` +
    `urt=${ctx.upstreamMs >= 0 ? (ctx.upstreamMs / 1000).toFixed(3) : '-'}\n`;
}

function escapeCombined(s: string): string {
  // As nginx does: quotes, backslashes and control bytes become \xHH.
  return /["\\\x00-\x1f\x7f]/.test(s) ? s.replace(/["\\\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`) : s;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let cachedSecond = 0;
let cachedTime = '';

/** "25/Nov/2026:20:51:39 +0000", computed at most once a second. */
function localTime(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    const d = new Date(now);
    const offset = -d.getTimezoneOffset();
    const sign = offset >= 0 ? '+' : '-';
    const abs = Math.abs(offset);
    cachedTime = `${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ` +
      `${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
    cachedSecond = second;
  }
  return cachedTime;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
