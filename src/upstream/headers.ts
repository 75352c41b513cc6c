// RFC 9110 §7.6 header handling for the proxy hop: what is removed, what is passed, what is added.
import type { RequestContext } from '../server/context.js';
import type { Target } from './target.js';
import type { Upstream } from './upstream.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy-only ones; never forwarded either way. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization'];

/**
 * Request headers that are never copied as sent: hop-by-hop ones, `expect` (Portico answers
 * 100-continue itself), `host` (set explicitly), and the forwarding family, which Portico always
 * writes itself (extending the client's chain only when the peer is trusted).
 */
const REQUEST_DROP = new Set([...HOP_BY_HOP, 'expect', 'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded', 'via']);
const RESPONSE_DROP = new Set(HOP_BY_HOP);

/** Connection options that are not header names. */
const CONNECTION_KEYWORDS = new Set(['close', 'keep-alive', 'upgrade']);

/** Header names listed in a Connection header (they are hop-by-hop too), or undefined if none. */
export function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  // The usual values name no headers; skip the split.
  if (value.length <= 10 && CONNECTION_KEYWORDS.has(value.toLowerCase())) return undefined;
  let set: Set<string> | undefined;
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token !== '' && !CONNECTION_KEYWORDS.has(token)) (set ??= new Set()).add(token);
  }
  return set;
}

/** Builds the flat header list for the upstream request. `upgrade` keeps the Upgrade handshake. */
export function buildRequestHeaders(ctx: RequestContext, upstream: Upstream, target: Target, upgrade?: string): string[] {
  const raw = ctx.req.rawHeaders;
  const ops = ctx.requestHeaderOps;
  const drop = ops?.drop;
  const listed = connectionTokens(ctx.incoming.connection);
  // The request id goes upstream once, as ctx.requestId (the client's only from a trusted peer).
  const idHeader = ctx.plan.settings.requestIdHeader;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are not headers upstream.
    if (name.charCodeAt(0) === 0x3a) continue;
    const lower = name.toLowerCase();
    if (REQUEST_DROP.has(lower)) {
      // gRPC and others need "te: trailers"; it is the one TE value a proxy may pass on.
      if (lower === 'te' && raw[i + 1]!.trim().toLowerCase() === 'trailers') out.push('te', 'trailers');
      continue;
    }
    if (drop !== undefined && drop.has(lower)) continue;
    if (listed !== undefined && listed.has(lower)) continue;
    if (lower === idHeader) continue;
    out.push(name, raw[i + 1]!);
  }
  const s = ctx.plan.settings;
  const inc = ctx.incoming;
  const trusted = ctx.trustedPeer;
  if (drop === undefined || !drop.has('host')) out.push('host', upstream.hostFor(target, ctx.rawHost));
  if (drop === undefined || !drop.has('x-forwarded-for')) {
    out.push('x-forwarded-for', trusted && inc.xff !== undefined ? `${inc.xff}, ${ctx.peerIp}` : ctx.peerIp);
  }
  if (drop === undefined || !drop.has('x-forwarded-proto')) out.push('x-forwarded-proto', trusted && inc.xfp !== undefined ? inc.xfp : ctx.scheme);
  if (drop === undefined || !drop.has('x-forwarded-host')) {
    const xfh = trusted && inc.xfh !== undefined ? inc.xfh : ctx.rawHost;
    if (xfh !== '') out.push('x-forwarded-host', xfh);
  }
  if (drop === undefined || !drop.has('x-real-ip')) out.push('x-real-ip', ctx.clientIp);
  if (s.forwarded && (drop === undefined || !drop.has('forwarded'))) {
    const hop = `for=${forwardedNode(ctx.peerIp)};proto=${ctx.scheme}${ctx.rawHost ? `;host=${quoteIfNeeded(ctx.rawHost)}` : ''}`;
    out.push('forwarded', trusted && inc.forwarded !== undefined ? `${inc.forwarded}, ${hop}` : hop);
  }
  if (s.via) out.push('via', trusted && inc.via !== undefined ? `${inc.via}, 1.1 portico` : '1.1 portico');
  if (s.requestIdHeader !== undefined && ctx.requestId !== '') out.push(s.requestIdHeader, ctx.requestId);
  if (upgrade !== undefined) out.push('connection', 'upgrade', 'upgrade', upgrade);
  if (ops !== undefined) for (let i = 0; i < ops.append.length; i++) out.push(ops.append[i]!);
  return out;
}

/** RFC 7239 node: IPv6 in brackets and quotes; "unknown" for Unix-socket peers. */
function forwardedNode(ip: string): string {
  if (ip === 'unix' || ip === '') return 'unknown';
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

function quoteIfNeeded(v: string): string {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}

/** Buffers from undici are decoded as latin1, which keeps the bytes exactly as they came. */
function text(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/**
 * Converts raw response headers — undici's Buffers, or Node's strings for upgrade handshakes —
 * into the flat list Node's writeHead takes, dropping hop-by-hop headers, the ones Connection
 * lists, and the ones the config hides.
 */
export function filterResponseHeaders(raw: readonly (Buffer | string)[], hide: Set<string>, length?: { contentLength: number }): string[] {
  const out: string[] = [];
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = text(raw[i]!);
    const lower = name.toLowerCase();
    if (RESPONSE_DROP.has(lower)) {
      if (lower === 'connection') listed = connectionTokens(text(raw[i + 1]!));
      continue;
    }
    if (hide.has(lower)) continue;
    const value = text(raw[i + 1]!);
    if (length !== undefined && lower === 'content-length') length.contentLength = Number(value);
    out.push(name, value);
  }
  if (listed !== undefined) {
    const kept: string[] = [];
    for (let i = 0; i < out.length; i += 2) if (!listed.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
    return kept;
  }
  return out;
}
