// One backend address and its keep-alive connection pool.
import { Pool } from 'undici';

export interface TargetAddress {
  /** As written in the config, normalised ("http://127.0.0.1:8000", "unix:/run/api.sock"). */
  url: string;
  protocol: 'http:' | 'https:';
  /** host:port for TCP targets; "localhost" for Unix sockets. */
  host: string;
  socketPath: string | undefined;
  /** The origin undici is given. */
  origin: string;
}

/** Parses "http://host:port", "https://host:port", "host:port" or "unix:/path". Throws with a readable message. */
export function parseTarget(input: string): TargetAddress {
  if (input.startsWith('unix:')) {
    const socketPath = input.slice(5);
    if (!socketPath.startsWith('/')) throw new Error('a unix target is "unix:/absolute/path.sock"');
    return { url: input, protocol: 'http:', host: 'localhost', socketPath, origin: 'http://localhost' };
  }
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `http://${input}`;
  let url: URL;
  try { url = new URL(withScheme); } catch { throw new Error(`expected "http://host:port", "https://host:port" or "unix:/path", got "${input}"`); }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported scheme "${url.protocol}" (http, https or unix)`);
  if (url.pathname !== '/' || url.search || url.hash || url.username) throw new Error(`a target is an origin only, without path, query or credentials: "${input}"`);
  return { url: url.origin, protocol: url.protocol, host: url.host, socketPath: undefined, origin: url.origin };
}

export interface PoolOptions {
  connections: number;
  idleTimeout: number;
  connectTimeout: number;
}

export class Target {
  readonly address: TargetAddress;
  readonly pool: Pool;
  /** Requests in flight to this target (for balancing and draining). */
  inflight = 0;
  /** Requests sent since start (for the programmatic API and logs). */
  requests = 0;
  failures = 0;

  constructor(address: TargetAddress, options: PoolOptions) {
    this.address = address;
    this.pool = new Pool(address.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: options.idleTimeout,
      keepAliveMaxTimeout: options.idleTimeout,
      // undici's own defaults are 300s; per-request values are passed at dispatch.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: { timeout: options.connectTimeout },
      ...(address.socketPath ? { socketPath: address.socketPath } : {}),
    });
  }

  get label(): string {
    return this.address.url;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Pools are keyed by address and pool options, so a reload that keeps them keeps the connections. */
export function targetKey(address: TargetAddress, options: PoolOptions): string {
  return `${address.url}|${options.connections}|${options.idleTimeout}|${options.connectTimeout}`;
}
