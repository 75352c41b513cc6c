// Certificate hot reload: Portico.reload (what SIGHUP calls) and the file watch swap the served
// certificate; established connections keep working; a broken file never replaces a good one.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { startBackend, sleep, type Backend } from './helpers.js';
import { createTestPki, handshake, httpsPort, type TestPki } from './helpers-tls.js';
import { startCliPortico } from './helpers-process.js';
import { createPortico, type ConfigInput } from '../src/index.js';

let pki: TestPki;
let backend: Backend;

before(async () => {
  pki = createTestPki();
  backend = await startBackend((_req, res) => { res.end('ok'); });
});

after(async () => {
  await backend?.close();
  pki?.cleanup();
});

/** Puts `name`'s cert and key at the live paths (as a renewal tool would). */
function install(name: string, live: string): void {
  copyFileSync(join(pki.dir, `${name}.pem`), `${live}.pem`);
  copyFileSync(join(pki.dir, `${name}.key`), `${live}.key`);
}

/** An HTTP/1.1 keep-alive connection over TLS; `get()` sends one request on it and returns the status line. */
async function keepAlive(port: number): Promise<{ socket: TLSSocket; get(): Promise<string> }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'a.test', ca: pki.ca, ALPNProtocols: ['http/1.1'] });
  await once(socket, 'secureConnect');
  return {
    socket,
    async get() {
      socket.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
      const [chunk] = await once(socket, 'data') as [Buffer];
      return chunk.toString('latin1').split('\r\n')[0]!;
    },
  };
}

test('reload picks up changed certificate files without dropping connections', async () => {
  const v1 = pki.issue('r1', ['a.test']);
  const v2 = pki.issue('r2', ['a.test']);
  const live = join(pki.dir, 'live-reload');
  install('r1', live);
  const config = {
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } },
    tls: { certificates: [{ cert: `${live}.pem`, key: `${live}.key` }] },
    upstreams: { app: { targets: [backend.url] } },
    routes: [{ name: 'app', match: {}, upstream: 'app' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput;
  const portico = await createPortico(config);
  try {
    const port = httpsPort(portico.addresses);
    assert.equal((await handshake(port, { servername: 'a.test', ca: pki.ca })).cert.fingerprint256, v1.fingerprint256);
    const conn = await keepAlive(port);
    assert.equal(await conn.get(), 'HTTP/1.1 200 OK');
    install('r2', live);
    // Files changed but nothing reloaded yet: still v1 (no watch configured).
    assert.equal((await handshake(port, { servername: 'a.test', ca: pki.ca })).cert.fingerprint256, v1.fingerprint256);
    await portico.reload(portico.plan.config);
    assert.equal((await handshake(port, { servername: 'a.test', ca: pki.ca })).cert.fingerprint256, v2.fingerprint256);
    // Clients without SNI get the listener's own context: it follows the default certificate.
    assert.equal((await handshake(port, { servername: undefined, ca: pki.ca })).cert.fingerprint256, v2.fingerprint256);
    // The connection made before the swap is still served.
    assert.equal(await conn.get(), 'HTTP/1.1 200 OK');
    conn.socket.destroy();
    // A broken file refuses the reload and v2 stays.
    writeFileSync(`${live}.pem`, 'not a certificate');
    await assert.rejects(portico.reload(portico.plan.config));
    assert.equal((await handshake(port, { servername: 'a.test', ca: pki.ca })).cert.fingerprint256, v2.fingerprint256);
  } finally {
    await portico.close(500);
  }
});

test('tls.watch: a renewed certificate is served without any signal; a half-written one is not', async () => {
  const v1 = pki.issue('w1', ['a.test']);
  const v2 = pki.issue('w2', ['a.test']);
  const live = join(pki.dir, 'live-watch');
  install('w1', live);
  const portico = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } },
    tls: { watch: true, certificates: [{ cert: `${live}.pem`, key: `${live}.key` }] },
    routes: [{ name: 'r', match: {}, respond: { status: 204 } }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput);
  try {
    const port = httpsPort(portico.addresses);
    const served = async () => (await handshake(port, { servername: 'a.test', ca: pki.ca })).cert.fingerprint256;
    assert.equal(await served(), v1.fingerprint256);
    // A cert that does not match the key on disk (mid-renewal) is not taken.
    copyFileSync(join(pki.dir, 'w2.pem'), `${live}.pem`);
    await sleep(600);
    assert.equal(await served(), v1.fingerprint256);
    copyFileSync(join(pki.dir, 'w2.key'), `${live}.key`);
    let now = '';
    for (let i = 0; i < 40 && now !== v2.fingerprint256; i++) { await sleep(100); now = await served(); }
    assert.equal(now, v2.fingerprint256);
  } finally {
    await portico.close(500);
  }
});

test('SIGHUP to the portico process reloads certificate files', async () => {
  const v1 = pki.issue('h1', ['a.test']);
  const v2 = pki.issue('h2', ['a.test']);
  const live = join(pki.dir, 'live-hup');
  install('h1', live);
  const cli = await startCliPortico([
    'server:',
    '  listen: ["127.0.0.1:0"]',
    '  https:',
    '    listen: ["127.0.0.1:0"]',
    'tls:',
    '  certificates:',
    `    - { cert: "${live}.pem", key: "${live}.key" }`,
    'routes:',
    '  - { name: r, match: {}, respond: { status: 204 } }',
  ].join('\n') + '\n');
  try {
    const line = await cli.waitForLine(/portico started/);
    const m = /"https:\/\/[^"]*:(\d+)"/.exec(line);
    assert.ok(m, `https address in the start line: ${line}`);
    const port = Number(m[1]);
    assert.equal((await handshake(port, { servername: 'a.test', ca: pki.ca })).cert.fingerprint256, v1.fingerprint256);
    install('h2', live);
    await cli.reload();
    assert.equal((await handshake(port, { servername: 'a.test', ca: pki.ca })).cert.fingerprint256, v2.fingerprint256);
    // The test certificates live 2 days: the log warns, naming the certificate.
    assert.match(await cli.waitForLine(/certificate expires soon/), /"names":\["a\.test"\].*"days_left":[01]/);
    // Key material never reaches the logs.
    assert.doesNotMatch(cli.stdout() + cli.stderr(), /PRIVATE KEY/);
  } finally {
    await cli.stop();
  }
});
