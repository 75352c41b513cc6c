// Test helpers: real servers on 127.0.0.1 with ephemeral ports, and clients that talk to
// Portico the way a real client would (undici, raw sockets).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Agent, request as undiciRequest } from 'undici';
import { createPortico, type ConfigInput, type Portico } from '../src/index.js';

export interface SeenRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
  httpVersion: string;
}

export interface Backend {
  server: Server;
  port: number;
  url: string;
  /** Every request the backend received, in order. */
  seen: SeenRequest[];
  close(): Promise<void>;
}

export type BackendHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** An echo backend by default: answers 200 with JSON describing the request it received. */
export async function startBackend(handler?: BackendHandler, opts: { streaming?: boolean } = {}): Promise<Backend> {
  const seen: SeenRequest[] = [];
  const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    if (opts.streaming && handler) {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: '', httpVersion: req.httpVersion });
      handler(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: body.toString('latin1'), httpVersion: req.httpVersion });
      if (handler) return handler(req, res, body);
      const payload = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json', server: 'uvicorn', 'x-powered-by': 'FastAPI' });
      res.end(payload);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server, port, url: `http://127.0.0.1:${port}`, seen,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export interface RunningPortico {
  portico: Portico;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Starts Portico on an ephemeral port; logs are off unless the config asks for them. */
export async function startPortico(config: ConfigInput): Promise<RunningPortico> {
  const input = {
    ...config,
    server: { listen: ['127.0.0.1:0'], ...config.server },
    log: config.log ?? { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput;
  const portico = await createPortico(input);
  const addr = portico.addresses[0]!;
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return { portico, port, url: `http://127.0.0.1:${port}`, close: () => portico.close(1_000) };
}

/** A simple proxy config: everything to `targets`. */
export function proxyAll(targets: string[], extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    upstreams: { app: { targets } },
    routes: [{ name: 'app', match: {}, upstream: 'app' }],
    ...extra,
  } as ConfigInput;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const agent = new Agent({ keepAliveTimeout: 1_000, connections: 16 });

/** An HTTP request through undici (keep-alive). */
export async function http(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Reply> {
  const res = await undiciRequest(url, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers,
    body: opts.body,
    dispatcher: agent,
  });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

/**
 * Sends raw bytes on a fresh connection and collects everything until the server closes or
 * `idleMs` passes without data.
 */
export async function raw(port: number, bytes: string | Buffer, idleMs = 300): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(bytes);
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    let timer = setTimeout(finish, idleMs);
    function finish() { socket.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); }
    socket.on('data', (c: Buffer) => { chunks.push(c); clearTimeout(timer); timer = setTimeout(finish, idleMs); });
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('latin1')); });
    socket.on('error', () => undefined);
  });
}

/** Status code of the first response in a raw reply (0 when none). */
export function statusOf(reply: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(reply);
  return m ? Number(m[1]) : 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
