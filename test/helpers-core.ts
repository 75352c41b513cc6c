// Helpers for the core correctness tests (corpus, limits, routing, headers, errors, paths):
// a backend that records every byte and every request it completes, and raw-socket clients
// that report whether and when the server closed the connection.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: Buffer;
  upgrade: boolean;
}

export interface RecordingBackend {
  server: Server;
  port: number;
  url: string;
  /** Requests whose head and whole body arrived (upgrades count once their head arrived). */
  completed: RecordedRequest[];
  /** Request heads seen, complete or not. */
  heads: number;
  /** Bytes the backend could not parse (Node's strict llhttp): must stay empty behind Portico. */
  parseErrors: string[];
  /** Every byte received, per connection, in arrival order. */
  bytes: Buffer[][];
  reset(): void;
  close(): Promise<void>;
}

/**
 * A node:http backend (strict llhttp, like a typical origin) that records everything and answers
 * each complete request with a small 200. Upgrade requests are accepted with a 101 and their
 * tunnel bytes swallowed: after a 101 the bytes are not HTTP any more.
 */
export async function startRecordingBackend(): Promise<RecordingBackend> {
  const tunnels = new Set<Duplex>();
  const state = { completed: [] as RecordedRequest[], heads: 0, parseErrors: [] as string[], bytes: [] as Buffer[][] };
  const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    state.heads++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.completed.push(record(req, Buffer.concat(chunks), false));
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
    });
    req.on('error', () => undefined);
  });
  server.on('connection', (socket: Socket) => {
    const list: Buffer[] = [];
    state.bytes.push(list);
    socket.on('data', (c: Buffer) => list.push(c));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    state.heads++;
    state.completed.push(record(req, Buffer.alloc(0), true));
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ${String(req.headers.upgrade ?? 'x')}\r\n\r\n`);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A reset or a close mid-request (EOF inside a body) is how an aborted proxy request looks,
    // not a parse error.
    if (err.code !== 'ECONNRESET' && err.code !== 'ERR_HTTP_REQUEST_TIMEOUT' && err.code !== 'HPE_INVALID_EOF_STATE') state.parseErrors.push(err.code ?? err.message);
    socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server, port, url: `http://127.0.0.1:${port}`,
    get completed() { return state.completed; },
    get heads() { return state.heads; },
    get parseErrors() { return state.parseErrors; },
    get bytes() { return state.bytes; },
    reset() { state.completed = []; state.heads = 0; state.parseErrors = []; state.bytes = []; },
    close: () => new Promise((resolve) => {
      for (const t of tunnels) t.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function record(req: IncomingMessage, body: Buffer, upgrade: boolean): RecordedRequest {
  return { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body, upgrade };
}

export interface RawResult {
  /** Everything received, latin1. */
  data: string;
  /** True when the server closed (or reset) the connection; false when we gave up waiting. */
  closedByServer: boolean;
  /** Milliseconds from the first byte sent to the close (or to giving up). */
  elapsed: number;
}

/**
 * Sends `parts` on a fresh connection (with `gapMs` between parts), then reads until the server
 * closes, `idleMs` passes without data (and `settled` holds), or `maxMs` passes in all.
 */
export async function rawExchange(port: number, parts: (string | Buffer)[] | string | Buffer, opts: {
  idleMs?: number; maxMs?: number; gapMs?: number; host?: string;
  /** When given, an idle period only ends the exchange once this holds for what was received. */
  settled?: (data: string) => boolean;
} = {}): Promise<RawResult> {
  const idleMs = opts.idleMs ?? 300;
  const maxMs = opts.maxMs ?? 10_000;
  const list = Array.isArray(parts) ? parts : [parts];
  const socket = connect(port, opts.host ?? '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const start = performance.now();
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    let done = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      clearTimeout(hard);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks).toString('latin1'), closedByServer, elapsed: performance.now() - start });
    };
    const hard = setTimeout(() => finish(false), maxMs);
    const onIdle = () => {
      if (opts.settled && !opts.settled(Buffer.concat(chunks).toString('latin1'))) { armIdle(); return; }
      finish(false);
    };
    const armIdle = () => { clearTimeout(idle); idle = setTimeout(onIdle, idleMs); };
    socket.on('data', (c: Buffer) => { chunks.push(c); armIdle(); });
    socket.on('close', () => finish(true));
    void (async () => {
      for (let i = 0; i < list.length; i++) {
        if (done || socket.destroyed) return;
        socket.write(list[i]!);
        if (opts.gapMs && i < list.length - 1) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (!done) armIdle();
    })();
  });
}

/**
 * Status codes of every response in a raw reply, in order (pipelined responses follow each
 * other's bodies directly; the bodies used in these tests never contain a status line).
 */
export function statusesOf(data: string): number[] {
  const out: number[] = [];
  for (const m of data.matchAll(/HTTP\/1\.[01] (\d{3}) /g)) out.push(Number(m[1]));
  return out;
}

/** Polls `cond` every 10 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(cond: () => boolean, timeoutMs = 2_000): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** A TCP server that accepts connections and never answers (for upstream timeouts). */
export async function startSilentServer(onConnection?: (socket: Socket) => void): Promise<{ server: NetServer; port: number; sockets: Set<Socket>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onConnection?.(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server, port, sockets,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/** A port nothing listens on: bound, then released. */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A raw socket that stays open, for connection-limit tests. */
export async function openSocket(port: number): Promise<{ socket: Socket; data: () => string; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = once(socket, 'close').then(() => undefined);
  await once(socket, 'connect');
  return { socket, data: () => Buffer.concat(chunks).toString('latin1'), closed };
}
