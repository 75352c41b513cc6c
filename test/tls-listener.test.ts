// HTTPS listeners over real TLS: SNI picks the certificate (exact, wildcard, default), RSA and
// ECDSA, the TLS policy (versions, ciphers), session resumption, ALPN, routing on Host.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { Agent } from 'undici';
import { startBackend, type Backend } from './helpers.js';
import { createTestPki, handshake, httpsAgent, httpsGet, httpsPort, type IssuedCert, type TestPki } from './helpers-tls.js';
import { createPortico, parseConfigText, validateConfig, type ConfigInput, type Portico } from '../src/index.js';

let pki: TestPki;
let backendA: Backend;
let backendB: Backend;
let ecA: IssuedCert;
let rsaA: IssuedCert;
let wild: IssuedCert;
let fallback: IssuedCert;
let dualEc: IssuedCert;
let dualRsa: IssuedCert;
let portico: Portico;
let port: number;

const quiet = { access: { enabled: false }, error: { level: 'silent' } } as const;

before(async () => {
  pki = createTestPki();
  ecA = pki.issue('a-ec', ['a.test']);
  rsaA = pki.issue('a-rsa', ['a.test'], { key: 'rsa' });
  wild = pki.issue('wild', ['*.b.test']);
  fallback = pki.issue('fallback', ['default.test']);
  dualEc = pki.issue('dual-ec', ['dual.test']);
  dualRsa = pki.issue('dual-rsa', ['dual.test'], { key: 'rsa' });
  backendA = await startBackend((_req, res) => { res.end('A'); });
  backendB = await startBackend((_req, res) => { res.end('B'); });
  portico = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } },
    tls: {
      certificates: [
        { cert: ecA.certPath, key: ecA.keyPath },
        { cert: rsaA.certPath, key: rsaA.keyPath, names: ['rsa.test'] },
        { cert: wild.certPath, key: wild.keyPath },
        { cert: fallback.certPath, key: fallback.keyPath, default: true },
        { cert: dualRsa.certPath, key: dualRsa.keyPath },
        { cert: dualEc.certPath, key: dualEc.keyPath },
      ],
    },
    upstreams: { a: { targets: [backendA.url] }, b: { targets: [backendB.url] } },
    routes: [
      { name: 'a', match: { host: ['a.test'] }, upstream: 'a' },
      { name: 'b', match: { host: ['*.b.test'] }, upstream: 'b' },
    ],
    log: quiet,
  } as ConfigInput);
  port = httpsPort(portico.addresses);
});

after(async () => {
  await portico?.close(500);
  await backendA?.close();
  await backendB?.close();
  pki?.cleanup();
});

test('SNI selects the certificate: exact name, wildcard, default for no SNI or unknown names', async () => {
  const exact = await handshake(port, { servername: 'a.test', ca: pki.ca });
  assert.equal(exact.cert.fingerprint256, ecA.fingerprint256);
  assert.equal(exact.authorized, true);
  const w = await handshake(port, { servername: 'x.b.test', ca: pki.ca });
  assert.equal(w.cert.fingerprint256, wild.fingerprint256);
  assert.equal(w.authorized, true);
  // A wildcard covers one label only.
  const deep = await handshake(port, { servername: 'y.x.b.test', ca: pki.ca });
  assert.equal(deep.cert.fingerprint256, fallback.fingerprint256);
  const none = await handshake(port, { servername: undefined, ca: pki.ca });
  assert.equal(none.cert.fingerprint256, fallback.fingerprint256);
  const unknown = await handshake(port, { servername: 'nothing.test', ca: pki.ca });
  assert.equal(unknown.cert.fingerprint256, fallback.fingerprint256);
  // SNI is case-insensitive.
  const upper = await handshake(port, { servername: 'A.TEST', ca: pki.ca });
  assert.equal(upper.cert.fingerprint256, ecA.fingerprint256);
});

test('RSA certificates are served (names given explicitly in the config)', async () => {
  const h = await handshake(port, { servername: 'rsa.test', ca: pki.ca });
  assert.equal(h.cert.fingerprint256, rsaA.fingerprint256);
  assert.ok(h.cert.modulus, 'an RSA key');
});

test('an RSA and an ECDSA certificate for the same names: ECDSA is served by SNI, both to no-SNI clients', async () => {
  // Listed RSA first: the order in the config does not decide.
  const ec = await handshake(port, { servername: 'dual.test', ca: pki.ca });
  assert.equal(ec.cert.fingerprint256, dualEc.fingerprint256);
  const only = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } },
    tls: { certificates: [{ cert: dualRsa.certPath, key: dualRsa.keyPath }, { cert: dualEc.certPath, key: dualEc.keyPath }] },
    log: quiet,
  } as ConfigInput);
  try {
    const p = httpsPort(only.addresses);
    const rsa = await handshake(p, { servername: undefined, ca: pki.ca, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    assert.equal(rsa.cert.fingerprint256, dualRsa.fingerprint256);
    const ecd = await handshake(p, { servername: undefined, ca: pki.ca, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    assert.equal(ecd.cert.fingerprint256, dualEc.fingerprint256);
  } finally {
    await only.close(200);
  }
});

test('routes match on Host over HTTPS, and the request reaches the backend as plain HTTP', async () => {
  const agentA = httpsAgent(pki.ca, 'a.test');
  const agentB = httpsAgent(pki.ca, 'x.b.test');
  try {
    const a = await httpsGet(`https://127.0.0.1:${port}/`, agentA, { host: 'a.test' });
    assert.equal(a.status, 200);
    assert.equal(a.body, 'A');
    const b = await httpsGet(`https://127.0.0.1:${port}/`, agentB, { host: 'x.b.test' });
    assert.equal(b.body, 'B');
    assert.equal(backendB.seen.at(-1)?.headers['x-forwarded-proto'], 'https');
    // undici sends the Host as SNI: the default certificate answers, which the client cannot verify.
    const lax = new Agent({ connect: { rejectUnauthorized: false } });
    const miss = await httpsGet(`https://127.0.0.1:${port}/`, lax, { host: 'other.test' });
    assert.equal(miss.status, 404);
    await lax.close();
  } finally {
    await agentA.close();
    await agentB.close();
  }
});

test('TLS 1.2 and 1.3 only; TLS 1.2 offers only ECDHE + AEAD suites', async () => {
  const t13 = await handshake(port, { servername: 'a.test', ca: pki.ca });
  assert.equal(t13.protocol, 'TLSv1.3');
  const t12 = await handshake(port, { servername: 'a.test', ca: pki.ca, maxVersion: 'TLSv1.2' });
  assert.equal(t12.protocol, 'TLSv1.2');
  assert.match(t12.cipher, /^ECDHE-(ECDSA|RSA)-(AES\d+-GCM|CHACHA20-POLY1305)/);
  // A client that only speaks CBC suites (or old protocols) gets no handshake.
  await assert.rejects(handshake(port, { servername: 'a.test', ca: pki.ca, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:AES128-SHA' }));
  await assert.rejects(rawHello(port, 'TLSv1.1'));
});

test('session resumption with tickets (TLS 1.3 and 1.2), also with an SNI-selected certificate', async () => {
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    const first = await handshake(port, { servername: 'x.b.test', ca: pki.ca, maxVersion });
    assert.equal(first.reused, false);
    assert.ok(first.session, `a ticket was sent (${maxVersion})`);
    const second = await handshake(port, { servername: 'x.b.test', ca: pki.ca, maxVersion, session: first.session! });
    assert.equal(second.reused, true, `resumed (${maxVersion})`);
  }
});

test('ticket keys rotate: a session resumes before the rotation, not after; tickets can be turned off', async () => {
  const rotating = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } },
    tls: { session_tickets: { rotate: '2s' }, certificates: [{ cert: ecA.certPath, key: ecA.keyPath }] },
    log: quiet,
  } as ConfigInput);
  const off = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } },
    tls: { session_tickets: { enabled: false }, certificates: [{ cert: ecA.certPath, key: ecA.keyPath }] },
    log: quiet,
  } as ConfigInput);
  try {
    const p = httpsPort(rotating.addresses);
    // Just after the first rotation, so the next one is ~2 s away (room for a loaded machine).
    await new Promise((r) => setTimeout(r, 2_050));
    const first = await handshake(p, { servername: 'a.test', ca: pki.ca, maxVersion: 'TLSv1.2' });
    assert.equal((await handshake(p, { servername: 'a.test', ca: pki.ca, maxVersion: 'TLSv1.2', session: first.session! })).reused, true);
    await new Promise((r) => setTimeout(r, 2_100));
    assert.equal((await handshake(p, { servername: 'a.test', ca: pki.ca, maxVersion: 'TLSv1.2', session: first.session! })).reused, false, 'the old key is gone');
    const q = httpsPort(off.addresses);
    const noTicket = await handshake(q, { servername: 'a.test', ca: pki.ca, maxVersion: 'TLSv1.2' });
    const again = await handshake(q, { servername: 'a.test', ca: pki.ca, maxVersion: 'TLSv1.2', ...(noTicket.session ? { session: noTicket.session } : {}) });
    assert.equal(again.reused, false, 'no resumption without tickets (and no server-side session cache)');
  } finally {
    await rotating.close(200);
    await off.close(200);
  }
});

test('ALPN offers h2 and http/1.1', async () => {
  assert.equal((await handshake(port, { servername: 'a.test', ca: pki.ca, alpn: ['h2', 'http/1.1'] })).alpn, 'h2');
  assert.equal((await handshake(port, { servername: 'a.test', ca: pki.ca, alpn: ['http/1.1'] })).alpn, 'http/1.1');
});

test('min_version "1.3" refuses TLS 1.2; http2: false offers only http/1.1', async () => {
  const strict = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'], http2: false } },
    tls: { min_version: '1.3', certificates: [{ cert: ecA.certPath, key: ecA.keyPath }] },
    routes: [{ name: 'r', match: {}, respond: { status: 204 } }],
    log: quiet,
  } as ConfigInput);
  try {
    const p = httpsPort(strict.addresses);
    await assert.rejects(handshake(p, { servername: 'a.test', ca: pki.ca, maxVersion: 'TLSv1.2' }));
    const h = await handshake(p, { servername: 'a.test', ca: pki.ca, alpn: ['h2', 'http/1.1'] });
    assert.equal(h.protocol, 'TLSv1.3');
    assert.equal(h.alpn, 'http/1.1');
  } finally {
    await strict.close(200);
  }
});

test('an unusable certificate config is refused with the key path', () => {
  const bad = (tls: unknown) => () => validateConfig({ tls } as ConfigInput);
  assert.throws(bad({ certificates: [{ cert: '/nonexistent/c.pem', key: ecA.keyPath }] }), /tls\.certificates\[0\]\.cert: cannot read "\/nonexistent\/c\.pem": ENOENT/);
  assert.throws(bad({ certificates: [{ cert: ecA.certPath, key: rsaA.keyPath }] }), /tls\.certificates\[0\]\.key: .* does not match the certificate/);
  assert.throws(bad({ certificates: [{ cert: ecA.keyPath, key: ecA.keyPath }] }), /tls\.certificates\[0\]\.cert: .* holds no PEM certificate/);
  assert.throws(bad({ min_version: '1.1' }), /tls\.min_version/);
  assert.throws(bad({ certificates: [{ cert: ecA.certPath, key: ecA.keyPath, names: ['*.*.example.com'] }] }), /tls\.certificates\[0\]\.names\[0\]: expected a host name/);
  // Key material never appears in the error.
  try { bad({ certificates: [{ cert: ecA.certPath, key: ecA.certPath }] })(); assert.fail('accepted'); } catch (err) {
    assert.doesNotMatch((err as Error).message, /BEGIN/);
  }
  assert.throws(() => validateConfig({ server: { https: { listen: ['127.0.0.1:0'], hsts: { max_age: -1 } } } } as ConfigInput), /server\.https\.hsts/);
});

test('certificate problems in a YAML file are reported with file, line and key', () => {
  const yaml = ['server:', '  https:', '    listen: ["127.0.0.1:0"]', 'tls:', '  certificates:', `    - cert: ${ecA.certPath}`, `      key: ${rsaA.keyPath}`, ''].join('\n');
  assert.throws(() => parseConfigText(yaml, 'portico.yaml'), /portico\.yaml:7:\d+: tls\.certificates\[0\]\.key: .*does not match/m);
});

test('an HTTPS listener without any certificate is refused at start', async () => {
  await assert.rejects(createPortico({ server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } }, log: quiet } as ConfigInput), /needs a certificate/);
});

/** A handshake limited to one old protocol version; rejects when the server refuses it. */
async function rawHello(p: number, version: 'TLSv1.1'): Promise<void> {
  const s = tlsConnect({ host: '127.0.0.1', port: p, servername: 'a.test', minVersion: version, maxVersion: version, rejectUnauthorized: false, ciphers: 'DEFAULT@SECLEVEL=0' });
  s.on('error', () => undefined);
  const [ev] = await Promise.race([once(s, 'secureConnect').then(() => ['ok']), once(s, 'error').then(() => ['err'])]);
  s.destroy();
  if (ev !== 'ok') throw new Error('refused');
}
