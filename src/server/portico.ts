// The running server: listeners, the current plan, reloads and graceful shutdown.
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Plan } from '../config/plan.js';
import type { UpstreamStatus } from '../upstream/upstream.js';
import { compilePlan } from '../config/compile.js';
import { Logs } from '../observe/logs.js';
import { normalizePath } from '../router/path.js';
import { normalizeHost } from '../router/host.js';
import { IncomingHeads, RequestContext } from './context.js';
import { scanHeaders } from './incoming.js';
import { clientFromChain, peerOf } from './client-ip.js';
import { boundAddress, listen, parseListen } from './listen.js';
import { errorBody } from './error-page.js';
import { HttpsService, type ListenerHandlers } from './https.js';
import { AutomaticCertificates } from '../tls/acme/automatic.js';
import type { CertificateStore } from '../tls/store.js';
import { METHODS, STATUS_CODES } from 'node:http';

const kCtx = Symbol('portico.ctx');
type ResponseWithCtx = ServerResponse & { [kCtx]?: RequestContext };

/** A request id we pass on from a trusted peer must look like one. */
const SAFE_ID = /^[A-Za-z0-9._:@\/+=-]{1,200}$/;

/** Methods Node knows as HTTP; its parser also accepts RTSP-only ones, which are refused. */
const HTTP_METHODS = new Set(METHODS);

export interface StartOptions {
  /** Shown in config errors. */
  file?: string | undefined;
}

export class Portico {
  #plan: Plan;
  #logs: Logs;
  #generation = 1;
  readonly #servers = new Map<string, Server>();
  readonly #tunnels = new Set<Duplex>();
  #closing: Promise<void> | undefined;
  /** HTTPS/h2c listeners, the certificate store, redirect and HSTS (src/server/https.ts). */
  readonly #https = new HttpsService();
  #handlers: ListenerHandlers | undefined;
  /** ACME and local-CA certificates into the store; answers http-01 before routing (src/tls/acme/automatic.ts). */
  readonly #automatic = new AutomaticCertificates();

  private constructor(plan: Plan, logs: Logs) {
    this.#plan = plan;
    this.#logs = logs;
  }

  /** Compiles `config`, binds every listener, and starts serving. */
  static async start(config: Config, options: StartOptions = {}): Promise<Portico> {
    const logs = new Logs(config.log);
    await logs.ready();
    const plan = compilePlan({ config, generation: 1, logs, file: options.file });
    const portico = new Portico(plan, logs);
    try {
      await portico.#syncListeners(config);
    } catch (err) {
      await portico.close(0);
      throw err;
    }
    logs.log.info({ listen: portico.addresses }, 'portico started');
    return portico;
  }

  /** Bound addresses, e.g. ["127.0.0.1:8080"] (ephemeral ports resolved). */
  get addresses(): string[] {
    return [...[...this.#servers.values()].map(boundAddress), ...this.#https.addresses];
  }

  /** The certificates HTTPS listeners serve; ACME and the local CA add theirs with `set()`. */
  get certificates(): CertificateStore {
    return this.#https.certificates;
  }

  get plan(): Plan {
    return this.#plan;
  }

  get log(): Plan['log'] {
    return this.#plan.log;
  }

  /** Per-upstream health state and counters of the running plan (src/upstream/upstream.ts). */
  upstreams(): UpstreamStatus[] {
    return [...this.#plan.upstreams.values()].map((u) => u.status());
  }

  /**
   * Swaps in a new config. An invalid config throws and the running one keeps serving.
   * Requests in flight finish on the plan they started with; open WebSockets are untouched.
   */
  async reload(config: Config, options: StartOptions = {}): Promise<void> {
    if (this.#closing) throw new Error('portico is shutting down');
    const oldLogs = this.#logs;
    const logs = oldLogs.update(config.log);
    await logs.ready();
    const old = this.#plan;
    let plan: Plan;
    try {
      plan = compilePlan({ config, generation: this.#generation + 1, logs, previousTargets: old.targets, file: options.file });
      this.#plan = plan;
      await this.#syncListeners(config);
    } catch (err) {
      // Targets (pools, health checks) made for the refused plan are used by nobody.
      if (this.#plan !== old) for (const [key, t] of this.#plan.targets) if (!old.targets.has(key)) void t.close();
      this.#plan = old;
      if (logs !== oldLogs) void logs.close();
      throw err;
    }
    this.#generation++;
    this.#logs = logs;
    // Pools no longer used finish their in-flight requests, then close.
    for (const [key, target] of old.targets) if (!plan.targets.has(key)) void target.close();
    if (logs !== oldLogs) setTimeout(() => void oldLogs.close(), 5_000).unref();
    plan.log.info({ generation: plan.generation, routes: config.routes.length, upstreams: plan.upstreams.size }, 'config reloaded');
  }

  reopenLogs(): void {
    this.#logs.reopen();
  }

  /**
   * Stops accepting, lets in-flight requests finish within `graceMs` (default
   * server.timeouts.shutdown), then closes what is left.
   */
  close(graceMs = this.#plan.config.server.timeouts.shutdown): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    const servers = [...this.#servers.values()];
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    // Connections that finish their response become idle: close them as they do.
    const sweep = setInterval(() => { for (const s of servers) s.closeIdleConnections(); }, 50);
    for (const s of servers) s.closeIdleConnections();
    const force = setTimeout(() => {
      for (const s of servers) s.closeAllConnections();
      for (const t of this.#tunnels) t.destroy();
    }, graceMs);
    const httpsClosed = this.#https.close(graceMs);
    void this.#automatic.stop();
    // Tunnels (WebSockets) are asked to end when the grace period is over; until then they run.
    await Promise.all(closed);
    await httpsClosed;
    clearInterval(sweep);
    clearTimeout(force);
    this.#servers.clear();
    await Promise.all([...this.#plan.targets.values()].map((t) => t.close().catch(() => undefined)));
    this.#plan.log.info('portico stopped');
    await this.#logs.close();
  }

  async #syncListeners(config: Config): Promise<void> {
    this.#https.configure(config, this.#plan.log);
    this.#https.tlsHooks = this.#automatic;
    await this.#automatic.configure(config, this.#https.certificates, this.#plan.log);
    const wanted = new Set(config.server.listen);
    const added: string[] = [];
    try {
      for (const addr of wanted) {
        if (this.#servers.has(addr)) continue;
        const server = this.#createServer(config);
        await listen(server, parseListen(addr));
        this.#servers.set(addr, server);
        added.push(addr);
      }
    } catch (err) {
      for (const addr of added) { this.#servers.get(addr)?.close(); this.#servers.delete(addr); }
      throw Object.assign(new Error(`cannot listen on ${describeListenError(err)}`), { code: (err as NodeJS.ErrnoException).code });
    }
    for (const [addr, server] of this.#servers) {
      if (!wanted.has(addr)) { server.close(); server.closeIdleConnections(); this.#servers.delete(addr); }
      else applyServerSettings(server, config);
    }
    this.#handlers ??= {
      request: this.#onRequest, checkContinue: this.#onCheckContinue, upgrade: this.#onUpgrade, clientError: this.#onClientError,
      connect: refuseConnect,
      shouldUpgrade: (req) => !isH2cUpgrade(req),
    };
    await this.#https.sync(config, this.#handlers);
  }

  #createServer(config: Config): Server {
    const server = createServer({
      maxHeaderSize: config.server.limits.max_header_size,
      requireHostHeader: true,
      requestTimeout: 0,
      headersTimeout: config.server.timeouts.header,
      keepAliveTimeout: config.server.timeouts.keepalive,
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(config.server.timeouts.header / 4))),
      joinDuplicateHeaders: false,
      insecureHTTPParser: false,
      // Node >= 24.9: an h2c upgrade (a known way around proxies) is served as a plain request.
      shouldUpgradeCallback: (req: IncomingMessage) => !isH2cUpgrade(req),
      optimizeEmptyRequests: true,
    } as Parameters<typeof createServer>[0], this.#onRequest);
    applyServerSettings(server, config);
    server.on('upgrade', this.#onUpgrade);
    server.on('clientError', this.#onClientError);
    server.on('checkContinue', this.#onCheckContinue);
    server.on('connect', refuseConnect);
    return server;
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.#automatic.answerHttp01(req, res)) return;
    const ctx = this.#context(req, res);
    if (ctx !== undefined) this.#run(ctx);
  };

  readonly #onCheckContinue = (req: IncomingMessage, res: ServerResponse): void => {
    // Node would send "100 Continue" at once; instead the route decides, and a body that is too
    // large is refused before the client sends it (forward() sends the 100 when it reads the body).
    if (this.#automatic.answerHttp01(req, res)) return;
    const ctx = this.#context(req, res);
    if (ctx === undefined) return;
    ctx.expectContinue = true;
    this.#run(ctx);
  };

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', ignore);
    // A response object over the raw socket lets routes answer an upgrade request like any other
    // (redirect, fixed response, error page); the tunnel takes the socket back after a 101.
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    res.once('finish', () => socket.end());
    const ctx = this.#context(req, res);
    if (ctx === undefined) return;
    const protocol = req.headers.upgrade ?? '';
    if (isH2cUpgrade(req)) {
      // Only on Node < 24.9, where the server cannot be told to treat it as a plain request.
      ctx.fail(400, true);
      return;
    }
    ctx.upgrade = { protocol, socket, head };
    ctx.onTunnelEnd = logTunnel;
    this.#tunnels.add(socket);
    socket.once('close', () => this.#tunnels.delete(socket));
    this.#run(ctx);
  };

  readonly #onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408
        : err.code === 'HPE_URI_TOO_LONG' ? 414 : 400;
    const peer = (socket as Duplex & { remoteAddress?: string }).remoteAddress ?? 'unix';
    this.#plan.access?.writeRejected(peer, status);
    this.#plan.log.debug({ code: err.code, client: peer, status }, 'malformed request');
    // A complete pipelined request before the bad bytes may still be in flight: the backend has
    // acted on it, so its response goes out first; then the error (nothing for data after
    // "Connection: close", which is simply ignored), then the close. (An error inside the body of
    // the request in flight is answered at once.) Node's own handler reads _httpMessage too.
    const pending = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (pending && !pending.writableFinished && pending.req.complete) {
      pending.once('finish', () => { if (socket.writable) socket.end(err.code === 'HPE_CLOSED_CONNECTION' ? undefined : rawResponse(status)); });
      return;
    }
    socket.end(rawResponse(status));
  };

  #context(req: IncomingMessage, res: ServerResponse): RequestContext | undefined {
    const start = performance.now();
    const plan = this.#plan;
    const settings = plan.settings;
    const inc = new IncomingHeads();
    const headersOk = scanHeaders(req.rawHeaders, inc, settings.requestIdHeader);
    let rawHost = inc.host ?? '';
    const url = req.url ?? '';
    let path: string | undefined;
    let query = '';
    if (url.charCodeAt(0) === 0x2f) {
      const q = url.indexOf('?');
      path = q === -1 ? url : url.slice(0, q);
      if (q !== -1) query = url.slice(q);
    } else if (/^https?:\/\//i.test(url)) {
      // Absolute form (RFC 9112 §3.2.2): the authority replaces Host.
      try {
        const u = new URL(url);
        rawHost = u.host;
        path = u.pathname;
        query = u.search;
      } catch { path = undefined; }
    }
    const normalized = path === undefined ? undefined : normalizePath(path, settings.paths);
    const ctx = new RequestContext(req, res, plan, inc, normalized ?? '', query, normalizeHost(rawHost), rawHost, isTls(req) ? 'https' : 'http', start);
    const peer = peerOf(req.socket, settings);
    ctx.peerIp = peer.ip;
    ctx.trustedPeer = peer.trusted;
    ctx.clientIp = peer.trusted && inc.xff !== undefined ? clientFromChain(inc.xff, peer.ip, settings) : peer.ip;
    if (settings.requestIdHeader !== undefined) {
      ctx.requestId = peer.trusted && inc.requestId !== undefined && SAFE_ID.test(inc.requestId) ? inc.requestId : randomUUID();
    }
    (res as ResponseWithCtx)[kCtx] = ctx;
    res.once('close', onResponseClose);
    // HTTP/1.1 without Host is a 400 (RFC 9112 §3.2; Node checks it for plain requests, not for
    // upgrades). A method Node's parser took only as RTSP/ICE (e.g. ANNOUNCE) is not HTTP.
    if (!headersOk || normalized === undefined || (inc.host === undefined && req.httpVersionMinor === 1) || !HTTP_METHODS.has(req.method!)) {
      ctx.fail(400, true);
      return undefined;
    }
    // Node removes only "chunked"; a body still under another coding (e.g. "deflate, chunked")
    // would reach the upstream without its Transfer-Encoding, i.e. as different content.
    // RFC 9112 §6.1: 501 for transfer codings the server does not understand (as nginx does).
    if (inc.transferEncoding !== undefined && inc.transferEncoding.trim().toLowerCase() !== 'chunked') {
      ctx.fail(501, true);
      return undefined;
    }
    return ctx;
  }

  #run(ctx: RequestContext): void {
    if (this.#https.intercept(ctx)) return;
    const m = ctx.plan.router.match(ctx.host, ctx.path, ctx.req);
    if (m === undefined) {
      ctx.fail(404);
      return;
    }
    ctx.route = m.route;
    ctx.prefix = m.prefix;
    try {
      const done = m.route.run(ctx);
      if (done !== undefined) done.catch((err: unknown) => internalError(ctx, err));
    } catch (err) {
      internalError(ctx, err);
    }
  }
}


function onResponseClose(this: ServerResponse): void {
  const ctx = (this as ResponseWithCtx)[kCtx]!;
  const finished = this.writableFinished;
  if (!finished) ctx.inflight?.cancel();
  // 499: the client closed the connection before the response was complete (nginx's convention).
  ctx.plan.access?.write(ctx, finished ? this.statusCode : 499);
}

function logTunnel(ctx: RequestContext): void {
  ctx.plan.access?.write(ctx, ctx.status || 101);
}

function internalError(ctx: RequestContext, err: unknown): void {
  ctx.plan.log.error({ err, route: ctx.route?.name }, 'handler failed');
  ctx.fail(500);
}

function applyServerSettings(server: Server, config: Config): void {
  const s = config.server;
  server.headersTimeout = s.timeouts.header;
  server.keepAliveTimeout = s.timeouts.keepalive;
  server.timeout = s.timeouts.client_idle;
  // Read per connection, so a reload applies it to new connections.
  (server as Server & { maxHeaderSize: number }).maxHeaderSize = s.limits.max_header_size;
  server.maxConnections = s.limits.max_connections === 0 ? Infinity : s.limits.max_connections;
  server.maxRequestsPerSocket = s.limits.max_requests_per_connection === 0 ? null : s.limits.max_requests_per_connection;
}

function isTls(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

function isH2cUpgrade(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return typeof u === 'string' && u.trim().toLowerCase() === 'h2c';
}

function ignore(): void {}

function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
  socket.end(rawResponse(405, 'CONNECT is not supported by this server.'));
}

/** A complete response written straight to a socket (the request never became a request object). */
function rawResponse(status: number, detail?: string): string {
  const body = detail ? `${detail}\n` : errorBody(status).html;
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: ${detail ? 'text/plain' : 'text/html'}; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

function describeListenError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = e.address ? `${e.address}${e.port ? `:${e.port}` : ''}` : 'the configured address';
  switch (e.code) {
    case 'EADDRINUSE': return `${where}: the address is already in use`;
    case 'EACCES': return `${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    case 'EADDRNOTAVAIL': return `${where}: no such local address`;
    default: return `${where}: ${e.message}`;
  }
}
