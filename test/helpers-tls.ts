// TLS test helpers: a throwaway CA and certificates made with the `openssl` CLI in a temp dir,
// and clients that report what the handshake gave them (certificate, ALPN, resumption).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket, type PeerCertificate } from 'node:tls';
import { connect as h2Connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { once } from 'node:events';
import { Agent, request as undiciRequest } from 'undici';

export interface IssuedCert {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
  /** SHA-256 fingerprint as Node reports it (AA:BB:…). */
  fingerprint256: string;
}

export interface TestPki {
  dir: string;
  caPath: string;
  ca: string;
  /** Issues a leaf for `names` (first is the CN); `key`: "ec" (P-256, default) or "rsa" (2048). */
  issue(name: string, names: string[], opts?: { key?: 'ec' | 'rsa'; days?: number }): IssuedCert;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA (EC P-256) in a fresh temp dir. Call cleanup() when done. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'portico-tls-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=Portico Test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
  let serial = 1;
  return {
    dir, ca, caPath: join(dir, 'ca.pem'),
    issue(name, names, opts = {}) {
      const keyArgs = opts.key === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      const ext = join(dir, `${name}.ext`);
      writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
      openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${names[0] ?? name}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++ + Date.now()),
        '-days', String(opts.days ?? 2), '-extfile', ext, '-out', `${name}.crt`], dir);
      const leaf = readFileSync(join(dir, `${name}.crt`), 'utf8');
      // A full chain as servers are given it: leaf, then the CA.
      writeFileSync(join(dir, `${name}.pem`), leaf + ca);
      const certPath = join(dir, `${name}.pem`);
      const keyPath = join(dir, `${name}.key`);
      const fp = execFileSync('openssl', ['x509', '-in', `${name}.crt`, '-noout', '-fingerprint', '-sha256'], { cwd: dir, encoding: 'utf8' });
      return { certPath, keyPath, cert: leaf + ca, key: readFileSync(keyPath, 'utf8'), fingerprint256: fp.trim().split('=')[1]! };
    },
    cleanup() { rmSync(dir, { recursive: true, force: true }); },
  };
}

export interface Handshake {
  cert: PeerCertificate;
  alpn: string | false | null;
  protocol: string | null;
  cipher: string;
  reused: boolean;
  authorized: boolean;
  /** The session to resume with (TLS 1.3 tickets arrive after the handshake). */
  session: Buffer | undefined;
}

/**
 * Opens a TLS connection, reads what was negotiated, waits briefly for a session ticket, closes.
 * `servername: undefined` sends no SNI.
 */
export async function handshake(port: number, opts: { servername?: string | undefined; ca: string; alpn?: string[]; session?: Buffer; minVersion?: 'TLSv1.2' | 'TLSv1.3'; maxVersion?: 'TLSv1.2' | 'TLSv1.3'; ciphers?: string }): Promise<Handshake> {
  const socket: TLSSocket = tlsConnect({
    host: '127.0.0.1', port, ca: opts.ca,
    ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
    ALPNProtocols: opts.alpn ?? ['http/1.1'],
    ...(opts.session ? { session: opts.session } : {}),
    ...(opts.minVersion ? { minVersion: opts.minVersion } : {}),
    ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
    ...(opts.ciphers ? { ciphers: opts.ciphers } : {}),
    // Verification is checked by the test (authorized), so a name mismatch still reports the cert.
    rejectUnauthorized: false,
  });
  let session: Buffer | undefined;
  socket.on('session', (s: Buffer) => { session = s; });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  const result = {
    cert: socket.getPeerCertificate(), alpn: socket.alpnProtocol, protocol: socket.getProtocol(),
    cipher: socket.getCipher().name, reused: socket.isSessionReused(), authorized: socket.authorized,
  };
  // TLS 1.3 sends tickets after the handshake; an HTTP/1.1 exchange makes sure they were read.
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  socket.resume();
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 1_000))]);
  socket.destroy();
  return { ...result, session };
}

/** An undici agent for HTTPS to 127.0.0.1 with the test CA, sending `servername` as SNI. */
export function httpsAgent(ca: string, servername?: string): Agent {
  return new Agent({ connect: { ca, ...(servername ? { servername } : {}) }, keepAliveTimeout: 1_000 });
}

export interface HttpsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS/1.1 request through undici. */
export async function httpsGet(url: string, agent: Agent, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<HttpsReply> {
  const res = await undiciRequest(url, { method: method as 'GET', headers, dispatcher: agent, ...(body !== undefined ? { body } : {}) });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** An HTTP/2 session over TLS (ALPN h2) to 127.0.0.1:port with `servername` as SNI. */
export async function h2Session(port: number, ca: string, servername: string): Promise<ClientHttp2Session> {
  const session = h2Connect(`https://${servername}:${port}`, {
    ca, servername, createConnection: () => tlsConnect({ host: '127.0.0.1', port, ca, servername, ALPNProtocols: ['h2'] }),
  });
  session.on('error', () => undefined);
  await once(session, 'connect');
  return session;
}

export interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on an HTTP/2 session. */
export async function h2Request(session: ClientHttp2Session, headers: Record<string, string>, body?: string | Buffer): Promise<H2Reply> {
  const stream = session.request(headers, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  const [resHeaders] = await once(stream, 'response') as [IncomingHttpHeaders];
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await once(stream, 'end');
  return { status: Number(resHeaders[':status']), headers: resHeaders, body: Buffer.concat(chunks).toString('utf8') };
}

/** "https://127.0.0.1:port" address from Portico's addresses list. */
export function httpsPort(addresses: string[]): number {
  const a = addresses.find((x) => x.startsWith('https://'));
  if (a === undefined) throw new Error(`no https listener in ${addresses.join(', ')}`);
  return Number(a.slice(a.lastIndexOf(':') + 1));
}
