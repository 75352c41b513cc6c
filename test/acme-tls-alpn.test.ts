// tls-alpn-01 (RFC 8737) against Pebble: the HTTPS listener's SNI callback and ALPN selection
// consult the responder, Pebble validates over TLS with ALPN "acme-tls/1", and the issued
// certificate is then served on the same listener.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, connect as tlsConnect, type Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { AcmeManager } from '../src/tls/acme/manager.js';
import { AcmeSchema } from '../src/config/schema/acme.js';
import { CertificateStore } from '../src/tls/store.js';
import { freePort, startPebble, type Pebble } from './helpers-pebble.js';
import { cleanup, recordingLog } from './helpers-acme.js';

let pebble: Pebble;
let storage: string;
let manager: AcmeManager | undefined;
let server: TlsServer;
const alpnSeen: string[][] = [];

before(async () => {
  storage = await mkdtemp(join(tmpdir(), 'portico-acme-'));
  const store = new CertificateStore();
  server = createTlsServer({
    SNICallback: (name, cb) => (manager ? manager.tlsAlpn01.wrapSni(store.sniCallback)(name, cb) : store.sniCallback(name, cb)),
    ALPNCallback: ({ servername, protocols }) => {
      alpnSeen.push(protocols);
      return manager?.tlsAlpn01.selectAlpn(servername, protocols, ['http/1.1']) ?? (protocols.includes('http/1.1') ? 'http/1.1' : undefined);
    },
  }, (socket) => socket.end(`proto=${socket.alpnProtocol}\n`));
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  pebble = await startPebble({ httpPort: await freePort(), tlsPort: (server.address() as AddressInfo).port });
  (server as TlsServer & { store?: CertificateStore }).store = store;
});

after(async () => {
  await cleanup([() => manager?.stop(), () => new Promise<void>((resolve) => server.close(() => resolve())), () => pebble?.stop()]);
  await rm(storage, { recursive: true, force: true });
});

test('obtains a certificate via tls-alpn-01 on the HTTPS listener', { timeout: 90_000 }, async () => {
  const store = (server as TlsServer & { store: CertificateStore }).store;
  const log = recordingLog();
  const config = AcmeSchema.parse({ directory: pebble.directory, storage, ca_bundle: pebble.caBundle, challenges: ['tls-alpn-01'] });
  manager = new AcmeManager({ config, store, log });
  await manager.manage(['alpn.portico.test']);
  await manager.ready(60_000);
  assert.ok(log.lines.some((l) => l.msg === 'acme: challenge validated' && (l.obj as { challenge?: string }).challenge === 'tls-alpn-01'), log.text());
  assert.ok(alpnSeen.some((p) => p.length === 1 && p[0] === 'acme-tls/1'), 'Pebble offered only acme-tls/1');
  assert.equal(manager.tlsAlpn01.pending, 0, 'challenge certificate removed after validation');

  const socket = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'alpn.portico.test', ca: pebble.issuerRoot, ALPNProtocols: ['http/1.1'] });
  await once(socket, 'secureConnect');
  assert.equal(socket.authorized, true);
  assert.match(socket.getPeerCertificate().subjectaltname ?? '', /DNS:alpn\.portico\.test/);
  socket.setEncoding('utf8');
  const [line] = (await once(socket, 'data')) as [string];
  assert.equal(line, 'proto=http/1.1\n');
  socket.destroy();
});
