// HTTPS listeners under reload and shutdown: HTTP/2 stream limits are advertised, a reload that
// moves the HTTPS address opens the new one and closes the old one, and close() lets requests in
// flight on HTTP/2 and HTTP/1.1-over-TLS finish while refusing new connections.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { startBackend, type Backend } from './helpers.js';
import { createTestPki, h2Request, h2Session, handshake, httpsAgent, httpsGet, httpsPort, type TestPki } from './helpers-tls.js';
import { createPortico, type ConfigInput } from '../src/index.js';

let pki: TestPki;
let slow: Backend;
let certPath: string;
let keyPath: string;

before(async () => {
  pki = createTestPki();
  const c = pki.issue('site', ['a.test']);
  certPath = c.certPath;
  keyPath = c.keyPath;
  slow = await startBackend((req, res) => { setTimeout(() => res.end(`done ${req.url}`), 400); });
});

after(async () => {
  await slow?.close();
  pki?.cleanup();
});

function config(httpsListen: string): ConfigInput {
  return {
    server: { listen: ['127.0.0.1:0'], https: { listen: [httpsListen] } },
    tls: { certificates: [{ cert: certPath, key: keyPath }] },
    upstreams: { app: { targets: [slow.url] } },
    routes: [{ name: 'app', match: {}, upstream: 'app' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput;
}

test('HTTP/2 advertises a bounded number of concurrent streams', async () => {
  const portico = await createPortico(config('127.0.0.1:0'));
  try {
    const session = await h2Session(httpsPort(portico.addresses), pki.ca, 'a.test');
    // The server's SETTINGS may arrive just after 'connect'.
    for (let i = 0; i < 20 && session.remoteSettings.maxConcurrentStreams !== 128; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(session.remoteSettings.maxConcurrentStreams, 128);
    session.close();
  } finally {
    await portico.close(200);
  }
});

test('a reload that changes server.https.listen moves the listener', async () => {
  const portico = await createPortico(config('127.0.0.1:0'));
  try {
    const first = httpsPort(portico.addresses);
    const probe = (await import('node:net')).createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const next = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const cfg = portico.plan.config;
    await portico.reload({ ...cfg, server: { ...cfg.server, https: { ...cfg.server.https, listen: [`127.0.0.1:${next}`] } } });
    assert.equal(httpsPort(portico.addresses), next);
    assert.equal((await handshake(next, { servername: 'a.test', ca: pki.ca })).authorized, true);
    await assert.rejects(handshake(first, { servername: 'a.test', ca: pki.ca }));
  } finally {
    await portico.close(200);
  }
});

test('close() finishes requests in flight over h2 and HTTP/1.1 over TLS, and refuses new connections', async () => {
  const portico = await createPortico(config('127.0.0.1:0'));
  const port = httpsPort(portico.addresses);
  const session = await h2Session(port, pki.ca, 'a.test');
  const agent = httpsAgent(pki.ca, 'a.test');
  const h2 = h2Request(session, { ':method': 'GET', ':path': '/h2', ':authority': 'a.test' });
  const h1 = httpsGet(`https://127.0.0.1:${port}/h1`, agent, { host: 'a.test' });
  await new Promise((r) => setTimeout(r, 100));
  const closing = portico.close(5_000);
  await new Promise((r) => setTimeout(r, 50));
  const refused = tlsConnect({ host: '127.0.0.1', port, servername: 'a.test', ca: pki.ca });
  const outcome = await new Promise<string>((resolve) => {
    refused.once('secureConnect', () => resolve('connected'));
    refused.once('error', () => resolve('refused'));
  });
  refused.destroy();
  assert.equal(outcome, 'refused');
  const [r2, r1] = await Promise.all([h2, h1]);
  assert.equal(r2.status, 200);
  assert.equal(r2.body, 'done /h2');
  assert.equal(r1.status, 200);
  assert.equal(r1.body, 'done /h1');
  const started = Date.now();
  await closing;
  assert.ok(Date.now() - started < 3_000, 'idle connections did not hold the shutdown to the grace period');
  session.close();
  await agent.close();
});
