// The per-request context handed to every handler. One object per request, with a fixed shape
// (a class, so V8 keeps it monomorphic); optional parts are allocated only when used.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CompiledHeaderOps } from '../handlers/headers/index.js';
import type { ResponseHead, ResponseHook } from '../handlers/types.js';
import type { CompiledRoute, Plan } from '../config/plan.js';
import { errorBody, wantsJson } from './error-page.js';
import type { UpgradeInfo } from '../upstream/tunnel.js';

/** Request headers the server reads once, in its single pass over the raw headers. */
export class IncomingHeads {
  host: string | undefined = undefined;
  xff: string | undefined = undefined;
  xfp: string | undefined = undefined;
  xfh: string | undefined = undefined;
  forwarded: string | undefined = undefined;
  via: string | undefined = undefined;
  connection: string | undefined = undefined;
  requestId: string | undefined = undefined;
  contentLength: string | undefined = undefined;
  transferEncoding: string | undefined = undefined;
  accept: string | undefined = undefined;
  userAgent: string | undefined = undefined;
  referer: string | undefined = undefined;
}

export class RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly plan: Plan;
  readonly incoming: IncomingHeads;
  route: CompiledRoute | undefined = undefined;
  /** The prefix the route matched on ("" if none). */
  prefix = '';
  /** Normalised path; actions may rewrite it before proxying. */
  path: string;
  /** "" or "?…", as received. */
  query: string;
  /** Normalised host (lower case, no port). */
  host: string;
  /** The Host header value as received (with port). */
  rawHost: string;
  readonly scheme: 'http' | 'https';
  /** The TCP peer ("unix" for Unix-socket clients). */
  peerIp = '';
  /** Whether the peer is in server.trusted_proxies. */
  trustedPeer = false;
  /** The client address after trusted-proxy resolution. */
  clientIp = '';
  requestId = '';
  readonly start: number;
  requestHeaderOps: CompiledHeaderOps | undefined = undefined;
  responseHooks: ResponseHook[] | undefined = undefined;
  /** The upstream request in flight, cancelled if the client leaves first. */
  inflight: { cancel(): void } | undefined = undefined;
  /** Set for Upgrade requests (WebSocket): the route's action tunnels instead of forwarding. */
  upgrade: UpgradeInfo | undefined = undefined;
  /** The client sent `Expect: 100-continue` and waits for a 100 before sending the body. */
  expectContinue = false;
  /** Status for the access log when the response object does not carry it (101 tunnels). */
  status = 0;
  /** Called when an upgraded connection ends. */
  onTunnelEnd: ((ctx: RequestContext) => void) | undefined = undefined;
  /** What the access log reports. */
  target = '';
  upstreamMs = -1;
  bytesSent = 0;
  /** Free-form per-request storage for handlers. */
  #bag: Map<string, unknown> | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, plan: Plan, incoming: IncomingHeads, path: string, query: string, host: string, rawHost: string, scheme: 'http' | 'https', start: number) {
    this.req = req;
    this.incoming = incoming;
    this.res = res;
    this.plan = plan;
    this.path = path;
    this.query = query;
    this.host = host;
    this.rawHost = rawHost;
    this.scheme = scheme;
    this.start = start;
  }

  finishTunnel(): void {
    this.onTunnelEnd?.(this);
  }

  get bag(): Map<string, unknown> {
    return (this.#bag ??= new Map());
  }

  addResponseHook(hook: ResponseHook): void {
    (this.responseHooks ??= []).push(hook);
  }

  /** Writes the response head, after response hooks had their say. */
  sendHead(status: number, headers: string[]): void {
    if (this.responseHooks !== undefined) {
      const head: ResponseHead = { status, headers };
      for (const hook of this.responseHooks) hook(head, this);
      status = head.status;
      headers = head.headers;
    }
    const idHeader = this.plan.settings.requestIdHeader;
    if (idHeader !== undefined) headers.push(idHeader, this.requestId);
    if (this.plan.settings.via) headers.push('via', '1.1 portico');
    this.res.writeHead(status, headers);
  }

  /** Answers with a complete small body. */
  respond(status: number, headers: string[], body: string | Buffer): void {
    headers.push('content-length', String(Buffer.byteLength(body)));
    this.sendHead(status, headers);
    this.bytesSent += Buffer.byteLength(body);
    this.res.end(this.req.method === 'HEAD' ? undefined : body);
  }

  /** Portico's error page; safe to call at any point (destroys the connection if the head went out). */
  fail(status: number, closeConnection = false): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const page = errorBody(status);
    const json = wantsJson(this.incoming.accept);
    const headers = ['content-type', json ? 'application/json' : 'text/html; charset=utf-8', 'cache-control', 'no-store'];
    if (closeConnection) headers.push('connection', 'close');
    // Overload and all-targets-down are short-lived by design: ask clients to come back in a second.
    if (status === 503) headers.push('retry-after', '1');
    this.respond(status, headers, json ? page.json : page.html);
  }
}
