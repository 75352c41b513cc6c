// Listen addresses: "host:port", ":port", "[::1]:port", "unix:/path".
import { existsSync, unlinkSync, chmodSync } from 'node:fs';
import type { Server } from 'node:net';

export type ListenAddress = { kind: 'tcp'; host: string | undefined; port: number } | { kind: 'unix'; path: string };

export function parseListen(addr: string): ListenAddress {
  if (addr.startsWith('unix:')) return { kind: 'unix', path: addr.slice(5) };
  const colon = addr.lastIndexOf(':');
  let host = addr.slice(0, colon);
  const port = Number(addr.slice(colon + 1));
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { kind: 'tcp', host: host === '' ? undefined : host, port };
}

/** Starts listening; resolves once bound. A stale Unix socket file is replaced. */
export function listen(server: Server, addr: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      if (addr.kind === 'unix') { try { chmodSync(addr.path, 0o660); } catch { /* best effort */ } }
      resolve();
    };
    if (addr.kind === 'unix') {
      if (existsSync(addr.path)) { try { unlinkSync(addr.path); } catch { /* listen reports it */ } }
      server.listen({ path: addr.path }, done);
    } else {
      server.listen({ host: addr.host, port: addr.port, ipv6Only: false }, done);
    }
  });
}

/** "127.0.0.1:8080", "[::1]:8080" or "unix:/path" for a bound server. */
export function boundAddress(server: Server): string {
  const a = server.address();
  if (a === null) return '';
  if (typeof a === 'string') return `unix:${a}`;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
