// HTTPS for Portico: TLS listeners that speak HTTP/2 and HTTP/1.1 (chosen by ALPN) into the same
// request handler as the plain listeners, optional h2c listeners, the certificate store they
// share, and the HTTP-to-HTTPS policy (308 redirect, HSTS, security headers).
//
// HTTP/1.1 over TLS is Node's own HTTP/1 server behind `allowHTTP1`, so upgrades (WebSockets),
// limits and timeouts work as on the plain listeners. HTTP/2 requests arrive as
// Http2ServerRequest/Response, which the handler path uses through the same methods
// (rawHeaders, url, writeHead with a flat header list, write/end, 'close').
import {
  createSecureServer, createServer as createH2cServer, Http2ServerResponse,
  type Http2SecureServer, type Http2Server, type ServerHttp2Session, type SecureServerOptions,
} from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ResponseHook } from '../handlers/types.js';
import type { RequestContext } from './context.js';
import { CertificateStore } from '../tls/store.js';
import { CertificateFiles } from '../tls/files.js';
import { secureContextOptions, TicketKeys } from '../tls/options.js';
import { boundAddress, listen, parseListen } from './listen.js';

/** Handshake hooks for ACME tls-alpn-01 (implemented by AutomaticCertificates). */
export interface TlsHandshakeHooks {
  wantsTlsHooks(config: Config): boolean;
  wrapSni(next: CertificateStore['sniCallback']): CertificateStore['sniCallback'];
  selectAlpn(servername: string | undefined, clientProtocols: readonly string[], serverProtocols: readonly string[]): string | undefined;
}

/** The core's listeners' callbacks; HTTPS listeners feed the same ones. */
export interface ListenerHandlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  /** A request with `Expect: 100-continue`: the 100 is sent only once its body is wanted. */
  checkContinue(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  clientError(err: NodeJS.ErrnoException, socket: Duplex): void;
  connect(req: IncomingMessage, socket: Duplex): void;
  /** Whether an HTTP/1.1 Upgrade request is handed to `upgrade` (false: served as a plain request). */
  shouldUpgrade(req: IncomingMessage): boolean;
}

type TlsListener = Http2SecureServer | HttpsServer;

interface Listener {
  kind: 'tls' | 'h2c';
  server: TlsListener | Http2Server;
  /** Every connection, for the forced close after the grace period. */
  sockets: Set<Socket>;
  sessions: Set<ServerHttp2Session>;
}

/**
 * Connection-specific headers are forbidden in HTTP/2 (RFC 9113 §8.2.2) and Node's compat layer
 * throws on them. Upstream responses and Portico's own error pages may carry them (they are
 * written for HTTP/1.1), so the h2 response drops them; HTTP/1.1 responses pay nothing.
 */
const H2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

export class PorticoH2Response extends Http2ServerResponse {
  /** ServerResponse.addTrailers takes [name, value] pairs too (the proxy passes those); the h2 one only an object. */
  override addTrailers(headers: OutgoingHttpHeaders | readonly (readonly [string, string])[]): void {
    if (!Array.isArray(headers)) { super.addTrailers(headers as OutgoingHttpHeaders); return; }
    const obj: OutgoingHttpHeaders = {};
    for (const [name, value] of headers as readonly (readonly [string, string])[]) obj[name.toLowerCase()] = value;
    super.addTrailers(obj);
  }

  override writeHead(statusCode: number, headers?: unknown, extra?: unknown): this {
    // Portico always calls writeHead(status, flatArray).
    if (Array.isArray(headers)) {
      const list = headers as string[];
      for (let i = 0; i < list.length; i += 2) {
        const name = list[i]!;
        if (name.length <= 17 && H2_FORBIDDEN.has(name.toLowerCase())) {
          const clean: string[] = [];
          for (let j = 0; j < list.length; j += 2) {
            if (!H2_FORBIDDEN.has(list[j]!.toLowerCase())) clean.push(list[j]!, list[j + 1]!);
          }
          return super.writeHead(statusCode, clean as never);
        }
      }
    }
    return extra === undefined ? super.writeHead(statusCode, headers as never) : super.writeHead(statusCode, headers as never, extra as never);
  }
}

/**
 * An HTTP/2 request has a body when its HEADERS frame did not end the stream; it may carry no
 * content-length (DATA frames delimit it), so the HTTP/1.1 test for a body does not apply.
 */
export function h2HasBody(req: IncomingMessage): boolean {
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  return stream !== undefined && stream.endAfterHeaders === false;
}

/**
 * ServerResponse has `destroyed`; Http2ServerResponse does not (its typings say it has). The
 * handler path reads it to learn that the client is gone (a reset stream) and cancel the
 * upstream request, which otherwise waits for a body that never comes.
 */
Object.defineProperty(PorticoH2Response.prototype, 'destroyed', {
  get(this: PorticoH2Response): boolean { return this.stream.destroyed; },
});

/**
 * The proxy relays upstream trailers only where the response can carry them: HTTP/1.1 chunked
 * encoding, which it learns from `chunkedEncoding`. An HTTP/2 response always can (a trailing
 * HEADERS frame), so gRPC-style trailers reach h2 clients.
 */
Object.defineProperty(PorticoH2Response.prototype, 'chunkedEncoding', {
  get(): boolean { return true; },
  set(_value: boolean) { /* fixed for HTTP/2 */ },
});

interface RedirectPolicy {
  /** ":8443" when the HTTPS port is not 443, else "". */
  port: string;
  /** Host names the routes name. */
  hosts: HostSet;
}

/** Exact names and one-label wildcards ("*.example.com"), looked up like the certificate store. */
class HostSet {
  readonly #exact = new Set<string>();
  readonly #wild = new Set<string>();

  constructor(names: Iterable<string>) {
    for (const raw of names) {
      const n = raw.toLowerCase().replace(/\.$/, '');
      if (n.startsWith('*.')) this.#wild.add(n.slice(1));
      else this.#exact.add(n);
    }
  }

  covers(host: string): boolean {
    if (this.#exact.has(host)) return true;
    const dot = host.indexOf('.');
    return dot > 0 && this.#wild.has(host.slice(dot));
  }
}

const ACME_CHALLENGE = '/.well-known/acme-challenge/';
const REDIRECT_HOST = /^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])$/;

/** The HTTPS side of a running Portico. One per Portico; reconfigured on reload. */
export class HttpsService {
  /** Every certificate served, by name. ACME and the local CA add theirs here. */
  readonly certificates: CertificateStore;
  readonly #files: CertificateFiles;
  readonly #tickets = new TicketKeys();
  readonly #listeners = new Map<string, Listener>();
  #base: SecureContextOptions | undefined;
  #baseKey = '';
  #redirect: RedirectPolicy | undefined;
  #hook: ResponseHook | undefined;
  #log: Logger | undefined;
  #config: Config | undefined;
  /** tls-alpn-01 (ACME) hooks, set by Portico: src/tls/acme/automatic.ts. */
  tlsHooks: TlsHandshakeHooks | undefined;

  constructor() {
    this.certificates = new CertificateStore();
    this.#files = new CertificateFiles(this.certificates);
    this.certificates.onChange(() => this.#refreshDefaultContexts());
  }

  /**
   * Applies the `tls` section: TLS options, certificate files, ticket rotation. Throws when a
   * certificate cannot be used (the certificates served stay as they were). The redirect and
   * HSTS policy follow in `sync()`.
   */
  configure(config: Config, log: Logger): void {
    this.#log = log;
    const tls = config.tls;
    const base = secureContextOptions(tls);
    const key = JSON.stringify(base);
    if (key !== this.#baseKey) {
      this.certificates.configure(base);
      this.#base = base;
      this.#baseKey = key;
    }
    this.#files.apply(tls, log);
    this.#tickets.configure(tls.session_tickets.enabled ? tls.session_tickets.rotate : 0);
    this.#config = config;
  }

  /** Opens and closes HTTPS and h2c listeners to match the config. */
  async sync(config: Config, handlers: ListenerHandlers): Promise<void> {
    const https = config.server.https;
    const wanted = new Map<string, 'tls' | 'h2c'>();
    for (const a of https.listen) wanted.set(`https://${a}`, 'tls');
    for (const a of https.h2c_listen) wanted.set(`h2c://${a}`, 'h2c');
    if (https.listen.length > 0 && this.certificates.size === 0 && !hasOtherCertificateSource(config)) {
      throw new Error('server.https.listen needs a certificate: add tls.certificates (or enable tls.acme / tls.internal)');
    }
    const added: string[] = [];
    try {
      for (const [id, kind] of wanted) {
        const existing = this.#listeners.get(id);
        if (existing !== undefined && existing.kind === kind && sameShape(existing, config)) continue;
        if (existing !== undefined) { this.#stop(existing); this.#listeners.delete(id); }
        const listener = kind === 'tls' ? this.#createTls(config, handlers) : this.#createH2c(config, handlers);
        await listen(listener.server as NetServer, parseListen(id.slice(id.indexOf('://') + 3)));
        this.#listeners.set(id, listener);
        added.push(id);
      }
    } catch (err) {
      for (const id of added) { const l = this.#listeners.get(id); if (l) this.#stop(l); this.#listeners.delete(id); }
      throw err;
    }
    for (const [id, l] of this.#listeners) {
      if (!wanted.has(id)) { this.#stop(l); this.#listeners.delete(id); }
      else applySettings(l, config);
    }
    // The redirect goes to the configured port, else the first TCP HTTPS listener's (its bound
    // port, for ":0" in tests).
    const first = [...this.#listeners.entries()]
      .find(([id, l]) => id.startsWith('https://') && !boundAddress(l.server as NetServer).startsWith('unix:'))?.[1];
    let port: string | undefined;
    if (typeof https.redirect_http === 'number') port = String(https.redirect_http);
    else if (https.redirect_http && first !== undefined) {
      const addr = boundAddress(first.server as NetServer);
      port = addr.slice(addr.lastIndexOf(':') + 1);
    }
    // The request-path policy changes last, once every listener is in place: a reload refused
    // on the way keeps the previous redirect and headers.
    this.#hook = compileResponseHeaders(config);
    this.#redirect = port === undefined ? undefined : {
      port: port === '443' ? '' : `:${port}`,
      hosts: new HostSet(config.routes.flatMap((r) => r.match.host ?? [])),
    };
  }

  /** Bound addresses, "https://127.0.0.1:8443" and "h2c://127.0.0.1:8081". */
  get addresses(): string[] {
    return [...this.#listeners.entries()].map(([id, l]) => `${id.slice(0, id.indexOf('://') + 3)}${boundAddress(l.server as NetServer)}`);
  }

  /**
   * Called for every request before routing. Over HTTPS it registers the HSTS/security-header
   * hook; over plain HTTP with redirect_http it answers with the 308 and returns true.
   */
  intercept(ctx: RequestContext): boolean {
    if (ctx.scheme === 'https') {
      if (this.#hook !== undefined) ctx.addResponseHook(this.#hook);
      return false;
    }
    const redirect = this.#redirect;
    if (redirect === undefined) return false;
    // ACME http-01 must be answered over plain HTTP; a TLS-terminating balancer in front
    // (trusted, X-Forwarded-Proto: https) already is HTTPS.
    if (ctx.path.startsWith(ACME_CHALLENGE)) return false;
    if (ctx.trustedPeer && ctx.incoming.xfp !== undefined && ctx.incoming.xfp.toLowerCase() === 'https') return false;
    // The Host is echoed into Location: only a plain host name or IP literal, never "evil/x" or "a@b".
    if (!REDIRECT_HOST.test(ctx.host)) { ctx.fail(400); return true; }
    // Only hosts served over HTTPS: named by a route (ACME obtains their certificates) or with
    // a certificate of their own. An IP address or a name only the default certificate would
    // answer for stays on HTTP rather than being sent to a certificate error.
    if (!redirect.hosts.covers(ctx.host) && !this.certificates.covers(ctx.host)) return false;
    const url = ctx.req.url ?? '/';
    const target = url.charCodeAt(0) === 0x2f ? url : ctx.path + ctx.query;
    ctx.respond(308, ['location', `https://${ctx.host}${redirect.port}${target}`, 'content-type', 'text/plain; charset=utf-8'], '');
    return true;
  }

  /** Stops accepting; in-flight requests get `graceMs`, then connections are closed. */
  async close(graceMs: number): Promise<void> {
    this.#files.close();
    this.#tickets.stop();
    const all = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(all.map((l) => this.#drain(l, graceMs)));
  }

  #createTls(config: Config, handlers: ListenerHandlers): Listener {
    const s = config.server;
    const defaults = this.certificates.defaultPems;
    const hooks = this.tlsHooks?.wantsTlsHooks(config) ? this.tlsHooks : undefined;
    const alpn = s.https.http2 ? ['h2', 'http/1.1'] : ['http/1.1'];
    const options: SecureServerOptions & Record<string, unknown> = {
      ...this.#base,
      ...(defaults ? { cert: defaults.map((p) => p.cert), key: defaults.map((p) => p.key) } : {}),
      SNICallback: hooks ? hooks.wrapSni(this.certificates.sniCallback) : this.certificates.sniCallback,
      ...(hooks ? { ALPNCallback: (h: { servername: string; protocols: string[] }) => hooks.selectAlpn(h.servername, h.protocols, alpn) } : {}),
      allowHTTP1: true,
      Http2ServerResponse: PorticoH2Response as never,
      settings: {
        maxConcurrentStreams: 128,
        maxHeaderListSize: s.limits.max_header_size,
        // RFC 8441 (WebSockets over h2) is not supported: upgrades use HTTP/1.1.
        enableConnectProtocol: false,
      },
      maxSessionMemory: 16,
      // A peer that keeps opening streams beyond the limit, or sends invalid frames, is abusive
      // (rapid-reset style floods): its session is closed after this many.
      maxSessionRejectedStreams: 100,
      maxSessionInvalidFrames: 100,
      unknownProtocolTimeout: 10_000,
      // HTTP/1.1 side: as the plain listeners (src/server/portico.ts).
      maxHeaderSize: s.limits.max_header_size,
      requireHostHeader: true,
      requestTimeout: 0,
      headersTimeout: s.timeouts.header,
      keepAliveTimeout: s.timeouts.keepalive,
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(s.timeouts.header / 4))),
      joinDuplicateHeaders: false,
      insecureHTTPParser: false,
    };
    const server: TlsListener = s.https.http2
      ? createSecureServer(options, handlers.request as never)
      : createHttpsServer(options as never, handlers.request);
    const listener: Listener = { kind: 'tls', server, sockets: new Set(), sessions: new Set() };
    (server as unknown as { shouldUpgradeCallback: (req: IncomingMessage) => boolean }).shouldUpgradeCallback = handlers.shouldUpgrade;
    this.#wire(listener, handlers, 'secureConnection');
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Scanners and clients with no shared cipher: not worth more than a debug line.
      this.#log?.debug({ code: err.code, client: socket.remoteAddress }, 'TLS handshake failed');
    });
    this.#tickets.add(server as TlsServer);
    applySettings(listener, config);
    return listener;
  }

  #createH2c(config: Config, handlers: ListenerHandlers): Listener {
    const s = config.server;
    const server = createH2cServer({
      Http2ServerResponse: PorticoH2Response as never,
      settings: { maxConcurrentStreams: 128, maxHeaderListSize: s.limits.max_header_size, enableConnectProtocol: false },
      maxSessionMemory: 16,
      maxSessionRejectedStreams: 100,
      maxSessionInvalidFrames: 100,
    } as never, handlers.request as never);
    const listener: Listener = { kind: 'h2c', server, sockets: new Set(), sessions: new Set() };
    this.#wire(listener, handlers, 'connection');
    applySettings(listener, config);
    return listener;
  }

  #wire(l: Listener, handlers: ListenerHandlers, connectionEvent: 'secureConnection' | 'connection'): void {
    const server = l.server;
    server.on(connectionEvent, (socket: Socket) => {
      l.sockets.add(socket);
      socket.once('close', () => l.sockets.delete(socket));
    });
    server.on('session', (session: ServerHttp2Session) => {
      l.sessions.add(session);
      session.once('close', () => l.sessions.delete(session));
      // A broken session is the client's problem; it must never reach the process.
      session.on('error', () => undefined);
    });
    server.on('sessionError', () => undefined);
    server.on('checkContinue', handlers.checkContinue);
    server.on('upgrade', handlers.upgrade);
    server.on('clientError', handlers.clientError);
    server.on('connect', handlers.connect);
  }

  /** No-SNI clients get the listener's own context: keep it on the current default certificate. */
  #refreshDefaultContexts(): void {
    const defaults = this.certificates.defaultPems;
    if (defaults === undefined || this.#base === undefined) return;
    for (const l of this.#listeners.values()) {
      if (l.kind !== 'tls') continue;
      const server = l.server as TlsServer;
      server.setSecureContext({ ...this.#base, cert: defaults.map((p) => p.cert), key: defaults.map((p) => p.key) });
      this.#tickets.apply(server);
    }
  }

  #stop(l: Listener): void {
    void this.#drain(l, this.#config?.server.timeouts.shutdown ?? 30_000);
  }

  async #drain(l: Listener, graceMs: number): Promise<void> {
    if (l.kind === 'tls') this.#tickets.delete(l.server as TlsServer);
    const closed = new Promise<void>((resolve) => l.server.close(() => resolve()));
    // HTTP/2: GOAWAY, streams in flight finish. HTTP/1.1: idle keep-alive connections close now,
    // busy ones when their response is done.
    for (const session of l.sessions) session.close();
    const idle = (l.server as { closeIdleConnections?: () => void }).closeIdleConnections;
    const sweep = setInterval(() => idle?.call(l.server), 50);
    idle?.call(l.server);
    const force = setTimeout(() => {
      for (const session of l.sessions) session.destroy();
      for (const socket of l.sockets) socket.destroy();
    }, graceMs);
    await closed;
    clearInterval(sweep);
    clearTimeout(force);
  }
}

function hasOtherCertificateSource(config: Config): boolean {
  // ACME and the local CA fill the store after start; their config keys live in the tls section.
  return config.tls.acme !== undefined || config.tls.internal.enabled;
}

/** Options fixed at creation; a reload that changes them replaces the listener. */
function sameShape(l: Listener, config: Config): boolean {
  if (l.kind === 'h2c') return true;
  const isH2 = (l.server as { constructor: { name: string } }).constructor.name === 'Http2SecureServer';
  return isH2 === config.server.https.http2;
}

function applySettings(l: Listener, config: Config): void {
  const s = config.server;
  const server = l.server as NetServer & { timeout?: number; keepAliveTimeout?: number; headersTimeout?: number; maxHeaderSize?: number };
  server.maxConnections = s.limits.max_connections === 0 ? Infinity : s.limits.max_connections;
  // For connections accepted from now on (the HTTP/1.1 parser and new HTTP/2 sessions read them then).
  const h2 = l.server as Partial<Http2SecureServer>;
  if (typeof h2.updateSettings === 'function') h2.updateSettings({ maxHeaderListSize: s.limits.max_header_size });
  if (l.kind === 'tls') {
    server.timeout = s.timeouts.client_idle;
    server.keepAliveTimeout = s.timeouts.keepalive;
    server.headersTimeout = s.timeouts.header;
    server.maxHeaderSize = s.limits.max_header_size;
  } else {
    (l.server as Http2Server).setTimeout(s.timeouts.keepalive);
  }
}

/** HSTS and security headers as one hook with precomputed values, or undefined when none are set. */
function compileResponseHeaders(config: Config): ResponseHook | undefined {
  const https = config.server.https;
  const pairs: string[] = [];
  if (https.hsts !== false) {
    let v = `max-age=${https.hsts.max_age}`;
    if (https.hsts.include_subdomains) v += '; includeSubDomains';
    if (https.hsts.preload) v += '; preload';
    pairs.push('strict-transport-security', v);
  }
  const sec = https.security_headers === true
    ? { content_type_options: true, frame_options: 'SAMEORIGIN' as const, referrer_policy: 'strict-origin-when-cross-origin' }
    : https.security_headers;
  if (sec !== false) {
    if (sec.content_type_options) pairs.push('x-content-type-options', 'nosniff');
    if (sec.frame_options !== false) pairs.push('x-frame-options', sec.frame_options);
    if (sec.referrer_policy !== false) pairs.push('referrer-policy', sec.referrer_policy);
  }
  if (pairs.length === 0) return undefined;
  const names = new Set<string>();
  for (let i = 0; i < pairs.length; i += 2) names.add(pairs[i]!);
  return (head) => {
    // Ours replace an upstream's: the proxy's policy is the site's policy.
    const h = head.headers;
    let clash = false;
    for (let i = 0; i < h.length; i += 2) if (h[i]!.length >= 15 && names.has(h[i]!.toLowerCase())) { clash = true; break; }
    if (clash) {
      const kept: string[] = [];
      for (let i = 0; i < h.length; i += 2) if (!names.has(h[i]!.toLowerCase())) kept.push(h[i]!, h[i + 1]!);
      head.headers = kept;
    }
    for (let i = 0; i < pairs.length; i++) head.headers.push(pairs[i]!);
  };
}

