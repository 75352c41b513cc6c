// Upgrade requests (WebSocket and others): the handshake is proxied like a request, and after
// a 101 the two sockets are joined byte for byte, with an idle timeout, until either side closes.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import type { RequestContext } from '../server/context.js';
import type { Upstream } from './upstream.js';
import { buildRequestHeaders, filterResponseHeaders } from './headers.js';
import { errorCode, isNotConnected, statusForError } from './errors.js';
import { recordFailure } from './health-passive.js';

export interface UpgradeInfo {
  /** The client's Upgrade header value, e.g. "websocket". */
  protocol: string;
  socket: Duplex;
  /** Bytes the client sent after the request head. */
  head: Buffer;
}

/** Headers a 101 must keep (they carry the handshake), unlike an ordinary response. */
const HANDSHAKE = new Set(['connection', 'upgrade']);

export function tunnel(ctx: RequestContext, upstream: Upstream, upgrade: UpgradeInfo): void {
  // Same choice as an ordinary request: rotation (health, draining), policy, stickiness, limits.
  const cookie = upstream.sticky?.read(ctx.req.rawHeaders);
  const target = upstream.pick(ctx, undefined, cookie);
  if (target === undefined) {
    upstream.unavailable(ctx);
    return;
  }
  const addr = target.address;
  ctx.target = target.label;
  const sentAt = performance.now();
  const send = addr.protocol === 'https:' ? httpsRequest : httpRequest;
  const upReq = send({
    ...(addr.socketPath ? { socketPath: addr.socketPath } : { hostname: addr.hostname, port: addr.port }),
    method: ctx.req.method,
    path: ctx.path + ctx.query,
    headers: buildRequestHeaders(ctx, upstream, target, upgrade.protocol),
    agent: false,
    ...(addr.protocol === 'https:' ? target.tls?.connect : undefined),
    timeout: upstream.timeouts.connect,
    setHost: false,
  });
  // A handshake with a Content-Length body (RFC 9110 §7.8 allows it) sends the body with the
  // request, as a direct connection would, so a target that declines the upgrade can read it and
  // answer instead of waiting for it; bytes after the body follow the 101. Node's parser stops
  // at the head of an upgrade request, so the body is the start of `head`.
  const bodyLength = Number(ctx.incoming.contentLength ?? 0);
  let early = upgrade.head;
  let body: Buffer | undefined;
  if (bodyLength > 0 && early.length >= bodyLength) {
    body = early.subarray(0, bodyLength);
    early = early.subarray(bodyLength);
  }
  // Counted apart from `inflight`: a tunnel holds its own socket, not one of the pool's
  // connections, so thousands of open WebSockets must not use up max_connections/max_pending.
  target.tunnels++;
  target.requests++;
  let settled = false;
  const settle = () => { if (!settled) { settled = true; target.tunnels--; } };
  const client = upgrade.socket;
  const onClientGone = () => upReq.destroy();
  client.once('close', onClientGone);

  upReq.once('socket', (s) => {
    s.once('connect', () => upReq.setTimeout(upstream.timeouts.response));
  });
  upReq.on('timeout', () => upReq.destroy(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' })));

  upReq.once('upgrade', (upRes: IncomingMessage, upSocket: Duplex, upHead: Buffer) => {
    client.off('close', onClientGone);
    ctx.upstreamMs = performance.now() - sentAt;
    const raw = upRes.rawHeaders;
    const headers: string[] = [];
    // Keep the handshake headers; filter the rest like any response.
    for (let i = 0; i < raw.length; i += 2) if (HANDSHAKE.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
    const rest = filterResponseHeaders(raw, ctx.plan.settings.hideResponseHeaders);
    for (const h of rest) headers.push(h);
    const setCookie = upstream.sticky?.setCookieFor(target, cookie, ctx.scheme === 'https');
    if (setCookie !== undefined) headers.push('set-cookie', setCookie);
    // The response object only carried the head so far; from here the socket is ours.
    ctx.res.detachSocket(client as never);
    let head = `HTTP/1.1 101 ${upRes.statusMessage || 'Switching Protocols'}\r\n`;
    const idHeader = ctx.plan.settings.requestIdHeader;
    if (idHeader !== undefined) headers.push(idHeader, ctx.requestId);
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    ctx.status = 101;
    client.write(head + '\r\n');
    if (upHead.length > 0) client.write(upHead);
    if (early.length > 0) upSocket.write(early);
    join(client, upSocket, upstream.timeouts.websocketIdle, () => {
      settle();
      ctx.finishTunnel();
    });
  });

  upReq.once('response', (upRes: IncomingMessage) => {
    // The target declined the upgrade: relay its answer as an ordinary response.
    client.off('close', onClientGone);
    ctx.upstreamMs = performance.now() - sentAt;
    ctx.sendHead(upRes.statusCode ?? 502, filterResponseHeaders(upRes.rawHeaders, ctx.plan.settings.hideResponseHeaders));
    upRes.on('data', (chunk: Buffer) => { ctx.bytesSent += chunk.length; });
    upRes.pipe(ctx.res);
    upRes.once('end', settle);
    upRes.once('error', () => { settle(); ctx.res.destroy(); });
  });

  upReq.once('error', (err) => {
    settle();
    client.off('close', onClientGone);
    const code = errorCode(err);
    if (client.destroyed) return;
    const status = statusForError(code);
    // A refused connection says the same about a target whichever request saw it.
    recordFailure(target, upstream.passive, code, upstream.passive?.onConnect === true && isNotConnected(code));
    ctx.plan.log.warn({ upstream: upstream.name, target: target.label, code, status }, 'upstream upgrade request failed');
    ctx.fail(status, true);
  });

  upReq.end(body);
}

function join(a: Duplex, b: Duplex, idleMs: number, onClose: () => void): void {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    a.destroy();
    b.destroy();
    onClose();
  };
  // A half-close is passed on (end of one direction); the tunnel ends when both sockets close.
  a.pipe(b);
  b.pipe(a);
  a.once('close', close);
  b.once('close', close);
  a.on('error', close);
  b.on('error', close);
  if (idleMs > 0) {
    // A socket's timer restarts on every read and write, so traffic either way keeps both alive.
    const onIdle = () => close();
    setIdle(a, idleMs, onIdle);
    setIdle(b, idleMs, onIdle);
  }
}

function setIdle(s: Duplex, ms: number, onIdle: () => void): void {
  const withTimeout = s as Duplex & { setTimeout?: (ms: number, cb: () => void) => unknown };
  if (typeof withTimeout.setTimeout === 'function') withTimeout.setTimeout(ms, onIdle);
}
