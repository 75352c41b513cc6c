// Shared pieces of the ACME tests: a recording log, listeners wired to an AcmeManager the way
// Portico wires them (http-01 before routing on the plain listener, the certificate store's SNI
// callback on the TLS listener), and a TLS client that reports what it was served.
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer, connect as tlsConnect, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { AcmeLog, AcmeManager } from '../src/tls/acme/manager.js';
import type { CertificateStore } from '../src/tls/store.js';

export interface LogLine { level: string; msg: string; obj: object }

export function recordingLog(): AcmeLog & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: object, msg: string) => { lines.push({ level, msg, obj }); };
  return {
    lines,
    debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'),
    text: () => lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.obj)}`).join('\n'),
  };
}

/** A plain HTTP listener that answers ACME challenges first and 404 otherwise. */
export async function startChallengeListener(manager: () => AcmeManager | undefined, port = 0): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (manager()?.http01.handle(req, res)) return;
    res.writeHead(404).end('not found\n');
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** A TLS listener serving from `store`; each connection gets "hello <servername>\n" per line it sends. */
export async function startTlsListener(store: CertificateStore, port = 0, noSni?: { cert: string; key: string }): Promise<{ server: TlsServer; port: number; close(): Promise<void> }> {
  // Clients without SNI get the server's own context (OpenSSL skips the SNI callback for them).
  const server = createTlsServer({ SNICallback: store.sniCallback, ...noSni }, (socket) => {
    socket.setEncoding('utf8');
    socket.on('data', (line: string) => socket.write(`hello ${socket.servername || '-'} ${line}`));
    socket.on('error', () => undefined);
  });
  server.on('tlsClientError', () => undefined);
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface Served { socket: TLSSocket; fingerprint256: string; subjectaltname: string; issuer: string; authorized: boolean }

/** Opens TLS to 127.0.0.1:port with SNI `servername`, trusting only `ca`. The socket stays open. */
export async function connectTls(port: number, servername: string, ca: string): Promise<Served> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca });
  await once(socket, 'secureConnect');
  const peer = socket.getPeerCertificate(true);
  return { socket, fingerprint256: peer.fingerprint256, subjectaltname: peer.subjectaltname ?? '', issuer: String(peer.issuer?.CN ?? ''), authorized: socket.authorized };
}

/** Sends one line over an open TLS socket and returns the answer. */
export async function echo(socket: TLSSocket, line: string): Promise<string> {
  socket.setEncoding('utf8');
  socket.write(`${line}\n`);
  const [data] = (await once(socket, 'data')) as [string];
  return data;
}

/**
 * Runs cleanup steps side by side, each bounded by `ms`: one that hangs (a server that will not
 * close after a failed test) must not keep Pebble running and the test process alive.
 */
export async function cleanup(steps: ReadonlyArray<() => Promise<unknown> | undefined>, ms = 15_000): Promise<void> {
  await Promise.allSettled(steps.map(async (step) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([step(), new Promise((resolve) => { timer = setTimeout(resolve, ms); timer.unref(); })]);
    } finally {
      clearTimeout(timer);
    }
  }));
}
