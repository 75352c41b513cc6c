// Upstream TLS: https:// targets verified by default, a private CA, an SNI/servername override,
// and an explicit, logged option to skip verification; WebSocket tunnels use the same settings.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import { join } from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, WebSocket } from 'ws';
import { http, sleep } from './helpers.js';
import { createTestPki, type TestPki } from './helpers-tls.js';
import { createPortico, validateConfig, type ConfigInput } from '../src/index.js';

let pki: TestPki;
let byIp: Server;
let byName: Server;
let ipPort: number;
let namePort: number;
const sni: (string | false | null)[] = [];

async function startTlsBackend(names: string[], file: string): Promise<[Server, number]> {
  const c = pki.issue(file, names);
  const server = createHttpsServer({ cert: c.cert, key: c.key }, (req, res) => {
    sni.push((req.socket as TLSSocket).servername);
    res.end(`secure ${req.url}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return [server, (server.address() as AddressInfo).port];
}

before(async () => {
  pki = createTestPki();
  [byIp, ipPort] = await startTlsBackend(['127.0.0.1'], 'up-ip');
  [byName, namePort] = await startTlsBackend(['backend.internal'], 'up-name');
});

after(async () => {
  byIp?.closeAllConnections(); byIp?.close();
  byName?.closeAllConnections(); byName?.close();
  pki?.cleanup();
});

async function through(upstream: Record<string, unknown>, extra: Partial<ConfigInput> = {}): Promise<{ status: number; body: string; log: string }> {
  const logFile = join(pki.dir, `log-${Date.now()}-${Math.random()}.log`);
  const portico = await createPortico({
    server: { listen: ['127.0.0.1:0'] },
    upstreams: { app: upstream },
    routes: [{ name: 'app', match: {}, upstream: 'app' }],
    log: { access: { enabled: false }, error: { level: 'warn', path: logFile } },
    ...extra,
  } as ConfigInput);
  try {
    const res = await http(`http://${portico.addresses[0]}/path`);
    return { ...res, log: '' };
  } finally {
    await portico.close(200);
    await sleep(50);
    let log = '';
    try { log = readFileSync(logFile, 'utf8'); } catch { /* no warnings written */ }
    through.lastLog = log;
  }
}
through.lastLog = '';

test('https:// targets are verified by default: an unknown CA is a 502', async () => {
  const res = await through({ targets: [`https://127.0.0.1:${ipPort}`] });
  assert.equal(res.status, 502);
});

test('a private CA makes the target trusted', async () => {
  const res = await through({ targets: [`https://127.0.0.1:${ipPort}`], tls: { ca: pki.caPath } });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'secure /path');
});

test('servername sets the SNI and the name checked against the certificate', async () => {
  const wrong = await through({ targets: [`https://127.0.0.1:${namePort}`], tls: { ca: pki.caPath } });
  assert.equal(wrong.status, 502, 'the certificate does not cover 127.0.0.1');
  const right = await through({ targets: [`https://127.0.0.1:${namePort}`], tls: { ca: pki.caPath, servername: 'backend.internal' } });
  assert.equal(right.status, 200);
  assert.equal(sni.at(-1), 'backend.internal');
});

test('active health checks to an https:// target verify with the upstream\'s CA and servername', async () => {
  const portico = await createPortico({
    server: { listen: ['127.0.0.1:0'] },
    upstreams: { app: {
      targets: [`https://127.0.0.1:${namePort}`],
      tls: { ca: pki.caPath, servername: 'backend.internal' },
      health: { active: { path: '/health', interval: '100ms', timeout: '1s', rise: 1, fall: 1 } },
    } },
    routes: [{ name: 'app', match: {}, upstream: 'app' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput);
  try {
    await sleep(600);
    const status = portico.upstreams().find((u) => u.name === 'app')!;
    assert.equal(status.targets[0]!.state, 'healthy', `health check passed (${JSON.stringify(status.targets[0])})`);
    assert.equal((await http(`http://${portico.addresses[0]}/x`)).status, 200);
  } finally {
    await portico.close(200);
  }
});

test('insecure_skip_verify accepts any certificate and says so in the log', async () => {
  const res = await through({ targets: [`https://127.0.0.1:${namePort}`], tls: { insecure_skip_verify: true } });
  assert.equal(res.status, 200);
  assert.match(through.lastLog, /verification is OFF for upstream \\?"app\\?"/);
});

test('WebSocket upgrades to an https:// target use the same TLS settings', async () => {
  const c = pki.issue('ws-up', ['127.0.0.1']);
  const tlsServer = createHttpsServer({ cert: c.cert, key: c.key });
  const wss = new WebSocketServer({ server: tlsServer });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`tls:${String(m)}`)));
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');
  const port = (tlsServer.address() as AddressInfo).port;
  for (const [tls, ok] of [[{ ca: pki.caPath }, true], [undefined, false]] as const) {
    const portico = await createPortico({
      server: { listen: ['127.0.0.1:0'] },
      upstreams: { ws: { targets: [`https://127.0.0.1:${port}`], ...(tls ? { tls } : {}) } },
      routes: [{ name: 'ws', match: {}, upstream: 'ws' }],
      log: { access: { enabled: false }, error: { level: 'silent' } },
    } as ConfigInput);
    try {
      const client = new WebSocket(`ws://${portico.addresses[0]}/`);
      client.on('error', () => undefined);
      if (ok) {
        await once(client, 'open');
        client.send('x');
        const [m] = await once(client, 'message') as [Buffer];
        assert.equal(String(m), 'tls:x');
        client.close();
      } else {
        const [, res] = await once(client, 'unexpected-response') as [unknown, { statusCode: number }];
        assert.equal(res.statusCode, 502);
      }
    } finally {
      await portico.close(200);
    }
  }
  wss.close();
  tlsServer.closeAllConnections();
  tlsServer.close();
});

test('tls.http2 speaks HTTP/2 to an https:// target that offers it (requests and bodies relayed)', async () => {
  const c = pki.issue('h2-up', ['127.0.0.1']);
  const versions: string[] = [];
  const h2server = createSecureServer({ cert: c.cert, key: c.key }, (req, res) => {
    versions.push(req.httpVersion);
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'h2' });
      res.end(`h2 ${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`);
    });
  });
  h2server.listen(0, '127.0.0.1');
  await once(h2server, 'listening');
  const port = (h2server.address() as AddressInfo).port;
  const portico = await createPortico({
    server: { listen: ['127.0.0.1:0'] },
    upstreams: { app: { targets: [`https://127.0.0.1:${port}`], tls: { ca: pki.caPath, http2: true } } },
    routes: [{ name: 'app', match: {}, upstream: 'app' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput);
  try {
    const get = await http(`http://${portico.addresses[0]}/a?b=1`);
    assert.equal(get.status, 200);
    assert.equal(get.body, 'h2 GET /a?b=1 ');
    assert.equal(get.headers['x-upstream'], 'h2');
    const post = await http(`http://${portico.addresses[0]}/p`, { method: 'POST', body: 'payload' });
    assert.equal(post.body, 'h2 POST /p payload');
    assert.deepEqual([...new Set(versions)], ['2.0']);
  } finally {
    await portico.close(200);
    h2server.close();
  }
});

test('an unreadable CA file is refused with its key path', () => {
  assert.throws(() => validateConfig({ upstreams: { app: { targets: ['https://x:1'], tls: { ca: '/nonexistent/ca.pem' } } } } as ConfigInput),
    /upstreams\.app\.tls\.ca: cannot read/);
});
