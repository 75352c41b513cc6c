// HTTP -> HTTPS redirect (308, path and query kept, ACME challenge path exempt), HSTS and
// security headers on HTTPS responses only, over HTTP/1.1 and HTTP/2.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, http, raw, statusOf, type Backend } from './helpers.js';
import { createTestPki, h2Request, h2Session, httpsAgent, httpsGet, httpsPort, type TestPki } from './helpers-tls.js';
import { createPortico, type ConfigInput, type Portico } from '../src/index.js';

let pki: TestPki;
let backend: Backend;
let portico: Portico;
let httpPort: number;
let tlsPort: number;

before(async () => {
  pki = createTestPki();
  const cert = pki.issue('site', ['a.test']);
  // The app sets its own, weaker HSTS: the proxy's policy replaces it.
  backend = await startBackend((_req, res) => { res.writeHead(200, { 'strict-transport-security': 'max-age=60', 'content-type': 'text/plain' }); res.end('ok'); });
  portico = await createPortico({
    server: {
      listen: ['127.0.0.1:0'],
      https: { listen: ['127.0.0.1:0'], redirect_http: true, hsts: { max_age: 31536000, include_subdomains: true }, security_headers: true },
    },
    tls: { certificates: [{ cert: cert.certPath, key: cert.keyPath }] },
    upstreams: { app: { targets: [backend.url] } },
    routes: [{ name: 'named', match: { host: ['*.named.test'] }, upstream: 'app' }, { name: 'app', match: {}, upstream: 'app' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput);
  const plain = portico.addresses.find((a) => !a.includes('://'))!;
  httpPort = Number(plain.slice(plain.lastIndexOf(':') + 1));
  tlsPort = httpsPort(portico.addresses);
});

after(async () => {
  await portico?.close(500);
  await backend?.close();
  pki?.cleanup();
});

test('plain HTTP gets a 308 to the same URL over HTTPS, path and query kept', async () => {
  const before = backend.seen.length;
  const res = await http(`http://127.0.0.1:${httpPort}/a/b%20c?x=1&y=%2F`, { headers: { host: 'A.test:80' } });
  assert.equal(res.status, 308);
  assert.equal(res.headers['location'], `https://a.test:${tlsPort}/a/b%20c?x=1&y=%2F`);
  assert.equal(res.headers['strict-transport-security'], undefined, 'no HSTS over plain HTTP');
  const post = await http(`http://127.0.0.1:${httpPort}/form`, { method: 'POST', headers: { host: 'a.test' }, body: 'x' });
  assert.equal(post.status, 308, '308 keeps the method, unlike 301');
  assert.equal(backend.seen.length, before, 'nothing was proxied over plain HTTP');
});

test('redirect_http: a port number redirects there (a port mapping in front)', async () => {
  const cfg = portico.plan.config;
  await portico.reload({ ...cfg, server: { ...cfg.server, https: { ...cfg.server.https, redirect_http: 443 } } });
  try {
    const res = await http(`http://127.0.0.1:${httpPort}/p?q`, { headers: { host: 'a.test:8080' } });
    assert.equal(res.status, 308);
    assert.equal(res.headers['location'], 'https://a.test/p?q');
  } finally {
    await portico.reload(cfg);
  }
});

test('hosts neither named by a route nor with a certificate of their own are not redirected (IP address, other name)', async () => {
  for (const host of ['127.0.0.1', 'other.test']) {
    const res = await http(`http://127.0.0.1:${httpPort}/x`, { headers: { host } });
    assert.equal(res.status, 200, host);
    assert.equal(res.body, 'ok');
  }
  // A host a route names is redirected even before it has a certificate (ACME is getting one).
  const named = await http(`http://127.0.0.1:${httpPort}/x`, { headers: { host: 'www.named.test' } });
  assert.equal(named.status, 308);
});

test('the ACME http-01 path is not redirected', async () => {
  const res = await http(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/token123`, { headers: { host: 'a.test' } });
  assert.equal(res.status, 200);
  assert.equal(backend.seen.at(-1)?.url, '/.well-known/acme-challenge/token123');
  assert.equal(res.headers['strict-transport-security'], 'max-age=60', 'HTTP responses are left alone');
});

test('a Host that is not a plain host name is refused, not echoed into Location', async () => {
  const reply = await raw(httpPort, 'GET / HTTP/1.1\r\nHost: evil.test/x@a.test\r\n\r\n');
  assert.equal(statusOf(reply), 400);
  assert.doesNotMatch(reply, /location:/i);
});

test('HTTPS responses carry HSTS and security headers (HTTP/1.1 and HTTP/2), replacing the app\'s', async () => {
  const agent = httpsAgent(pki.ca, 'a.test');
  try {
    const res = await httpsGet(`https://127.0.0.1:${tlsPort}/`, agent, { host: 'a.test' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN');
    assert.equal(res.headers['referrer-policy'], 'strict-origin-when-cross-origin');
  } finally {
    await agent.close();
  }
  const session = await h2Session(tlsPort, pki.ca, 'a.test');
  try {
    const res = await h2Request(session, { ':method': 'GET', ':path': '/', ':authority': 'a.test' });
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN');
  } finally {
    session.close();
  }
});

test('a reload can turn HSTS off and the redirect with it', async () => {
  const cfg = portico.plan.config;
  await portico.reload({ ...cfg, server: { ...cfg.server, https: { ...cfg.server.https, redirect_http: false, hsts: false, security_headers: false } } });
  try {
    const res = await http(`http://127.0.0.1:${httpPort}/x`, { headers: { host: 'a.test' } });
    assert.equal(res.status, 200);
    const agent = httpsAgent(pki.ca, 'a.test');
    const s = await httpsGet(`https://127.0.0.1:${tlsPort}/`, agent, { host: 'a.test' });
    assert.equal(s.headers['strict-transport-security'], 'max-age=60');
    assert.equal(s.headers['x-frame-options'], undefined);
    await agent.close();
  } finally {
    await portico.reload(cfg);
  }
});
