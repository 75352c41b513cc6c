// ACME end to end through a running Portico: `tls.acme` with the names taken from the routes,
// http-01 answered on Portico's plain listener before routing (while every other plain request
// is redirected to HTTPS), the certificate served on Portico's HTTPS listener, proxied to a backend.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { createPortico, validateConfigObject, type ConfigInput, type Portico } from '../src/index.js';
import { freePort, startPebble, type Pebble } from './helpers-pebble.js';
import { cleanup } from './helpers-acme.js';
import { startBackend, type Backend } from './helpers.js';

let pebble: Pebble;
let storage: string;
let portico: Portico | undefined;
let backend: Backend;
let httpPort: number;

before(async () => {
  storage = await mkdtemp(join(tmpdir(), 'portico-acme-'));
  backend = await startBackend();
  httpPort = await freePort();
  pebble = await startPebble({ httpPort });
});

after(async () => {
  await cleanup([() => portico?.close(500), () => backend?.close(), () => pebble?.stop()]);
  await rm(storage, { recursive: true, force: true });
});

function firstConfig(hosts: string[] = ['www.portico.test']): ConfigInput {
  return {
    server: { listen: [`127.0.0.1:${httpPort}`], https: { listen: ['127.0.0.1:0'], redirect_http: true } },
    tls: { acme: { directory: pebble.directory, ca_bundle: pebble.caBundle, storage, challenges: ['http-01'], email: 'ops@portico.test' } },
    upstreams: { app: { targets: [backend.url] } },
    routes: [{ match: { host: hosts }, upstream: 'app' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  };
}

function plain(port: number, host: string, path: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location }));
    });
    req.on('error', reject);
    req.end();
  });
}

function get(port: number, host: string, ca: string, path = '/'): Promise<{ status: number; body: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername: host, headers: { host }, ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body, issuer: String((res.socket as import('node:tls').TLSSocket).getPeerCertificate().issuer?.CN ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('Portico obtains a certificate for a route host and serves it over HTTPS', { timeout: 90_000 }, async () => {
  portico = await createPortico(firstConfig());
  const httpsPort = Number(portico.addresses.find((a) => a.startsWith('https://'))!.split(':').pop());

  // Plain HTTP is redirected, but the challenge path is not: Portico answers it itself.
  const redirect = await plain(httpPort, 'www.portico.test', '/x?y=1');
  assert.equal(redirect.status, 308);
  assert.equal(redirect.location, `https://www.portico.test:${httpsPort}/x?y=1`);
  const challenge = await plain(httpPort, 'www.portico.test', '/.well-known/acme-challenge/not-a-pending-token');
  assert.equal(challenge.status, 404);
  assert.equal(backend.seen.length, 0);

  const deadline = Date.now() + 60_000;
  while (!portico.certificates.covers('www.portico.test')) {
    assert.ok(Date.now() < deadline, 'certificate obtained within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const res = await get(httpsPort, 'www.portico.test', pebble.issuerRoot, '/hello');
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(res.body).url, '/hello');
  assert.match(res.issuer, /Pebble/i);
  assert.equal(portico.certificates.list().find((c) => c.names.includes('www.portico.test'))?.source, 'acme');
});

test('a reload with the same tls.acme keeps the manager: new route hosts get certificates, existing ones are not re-ordered', { timeout: 90_000 }, async () => {
  assert.ok(portico, 'runs after the first test');
  const before = portico.certificates.list().find((c) => c.names.includes('www.portico.test'))!.fingerprint256;
  await portico.reload(validateConfigObject(firstConfig(['www.portico.test', 'api.portico.test'])));
  const deadline = Date.now() + 60_000;
  while (!portico.certificates.covers('api.portico.test')) {
    assert.ok(Date.now() < deadline, 'certificate for the new host within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(portico.certificates.list().find((c) => c.names.includes('www.portico.test'))!.fingerprint256, before);
  const httpsPort = Number(portico.addresses.find((a) => a.startsWith('https://'))!.split(':').pop());
  const res = await get(httpsPort, 'api.portico.test', pebble.issuerRoot, '/api');
  assert.equal(res.status, 200);
});

test('tls-alpn-01 on Portico\'s HTTPS listener, with h2 and http/1.1 still negotiated for clients', { timeout: 90_000 }, async () => {
  const httpsPort = await freePort();
  const pebble2 = await startPebble({ httpPort: await freePort(), tlsPort: httpsPort });
  const storage2 = await mkdtemp(join(tmpdir(), 'portico-acme-'));
  const p = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: [`127.0.0.1:${httpsPort}`] } },
    tls: { acme: { directory: pebble2.directory, ca_bundle: pebble2.caBundle, storage: storage2, challenges: ['tls-alpn-01'] } },
    upstreams: { app: { targets: [backend.url] } },
    routes: [{ match: { host: 'alpn.portico.test' }, upstream: 'app' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  });
  try {
    const deadline = Date.now() + 60_000;
    while (!p.certificates.covers('alpn.portico.test')) {
      assert.ok(Date.now() < deadline, 'certificate obtained within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const res = await get(httpsPort, 'alpn.portico.test', pebble2.issuerRoot, '/alpn');
    assert.equal(res.status, 200);
    assert.match(res.issuer, /Pebble/i);
    for (const [offer, want] of [[['h2', 'http/1.1'], 'h2'], [['http/1.1'], 'http/1.1'], [['acme-tls/1'], false]] as const) {
      const socket = tlsConnect({ host: '127.0.0.1', port: httpsPort, servername: 'alpn.portico.test', ca: pebble2.issuerRoot, ALPNProtocols: [...offer] });
      const got = await new Promise<string | false>((resolve) => {
        socket.once('secureConnect', () => resolve(socket.alpnProtocol ?? false));
        socket.once('error', () => resolve(false));
      });
      socket.destroy();
      // "acme-tls/1" with no challenge pending is refused like any unknown protocol.
      assert.equal(got, want, `ALPN ${offer.join(',')}`);
    }
  } finally {
    await p.close(500);
    await pebble2.stop();
    await rm(storage2, { recursive: true, force: true });
  }
});
