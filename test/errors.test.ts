// Errors stay Portico's: upstream failures give clean 502/504 pages (HTML, or JSON on request)
// that never carry the target's address or the backend's words; bad requests get 400 and the
// server keeps serving; Unix-socket targets work.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, startPortico, http, statusOf, type Backend, type RunningPortico } from './helpers.js';
import { closedPort, rawExchange, startSilentServer, statusesOf } from './helpers-core.js';

const LEAK = 'BACKEND-INTERNAL-DETAIL';
let backend: Backend;
let refusedPort: number;
let silent: Awaited<ReturnType<typeof startSilentServer>>;
/** Accepts, reads the request, then resets the connection. */
let resetting: NetServer;
let resettingPort: number;
/** Answers with bytes that are not HTTP, carrying text that must not reach the client. */
let garbage: NetServer;
let garbagePort: number;
/** Sends half a response head, then resets. */
let halfHead: NetServer;
let halfHeadPort: number;
const sockets = new Set<Socket>();
let unixServer: Server;
const socketPath = join(tmpdir(), `portico-errors-${process.pid}.sock`);
let portico: RunningPortico;

async function netServer(onData: (socket: Socket) => void): Promise<[NetServer, number]> {
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => onData(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return [server, (server.address() as AddressInfo).port];
}

before(async () => {
  backend = await startBackend();
  refusedPort = await closedPort();
  silent = await startSilentServer();
  [resetting, resettingPort] = await netServer((s) => s.resetAndDestroy());
  [garbage, garbagePort] = await netServer((s) => s.end(`${LEAK} at /srv/app.py line 12\r\n\r\n`));
  [halfHead, halfHeadPort] = await netServer((s) => s.write(`HTTP/1.1 200 OK\r\nX-Detail: ${LEAK}\r\nContent-Le`, () => s.resetAndDestroy()));
  rmSync(socketPath, { force: true });
  unixServer = createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(`unix says hi to ${req.url}`); });
  unixServer.listen(socketPath);
  await once(unixServer, 'listening');
  portico = await startPortico({
    upstreams: {
      app: { targets: [backend.url] },
      refused: { targets: [`http://127.0.0.1:${refusedPort}`] },
      reset: { targets: [`http://127.0.0.1:${resettingPort}`] },
      garbage: { targets: [`http://127.0.0.1:${garbagePort}`] },
      half: { targets: [`http://127.0.0.1:${halfHeadPort}`] },
      silent: { targets: [`http://127.0.0.1:${silent.port}`], timeouts: { response: '300ms' } },
      unix: { targets: [`unix:${socketPath}`] },
    },
    routes: [
      { match: { path: '/refused' }, upstream: 'refused' },
      { match: { path: '/reset' }, upstream: 'reset' },
      { match: { path: '/garbage' }, upstream: 'garbage' },
      { match: { path: '/half' }, upstream: 'half' },
      { match: { path: '/silent' }, upstream: 'silent' },
      { match: { path: '/unix' }, upstream: 'unix' },
      { match: { path: '/app' }, upstream: 'app' },
    ],
  });
});

after(async () => {
  await portico.close();
  await backend.close();
  await silent.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => resetting.close(() => r()));
  await new Promise<void>((r) => garbage.close(() => r()));
  await new Promise<void>((r) => halfHead.close(() => r()));
  unixServer.closeAllConnections();
  await new Promise<void>((r) => unixServer.close(() => r()));
  rmSync(socketPath, { force: true });
});

/** Nothing of the target (address, port, socket path) or of the backend's text in a reply. */
function assertNoLeak(text: string, port: number): void {
  assert.ok(!text.includes(String(port)), 'no target port');
  assert.ok(!text.includes('127.0.0.1'), 'no target address');
  assert.ok(!text.includes(LEAK), 'no backend text');
  assert.ok(!text.includes(socketPath), 'no socket path');
  assert.doesNotMatch(text, /ECONN|UND_ERR|at .*\.js:\d+/, 'no error codes or stack traces');
}

test('refused target: 502 HTML page, nothing of the target in it', async () => {
  const r = await http(`${portico.url}/refused/x`);
  assert.equal(r.status, 502);
  assert.match(String(r.headers['content-type']), /^text\/html/);
  assert.match(r.body, /502/);
  assertNoLeak(JSON.stringify(r.headers) + r.body, refusedPort);
});

test('target resets the connection mid-request: 502', async () => {
  const r = await http(`${portico.url}/reset`, { method: 'POST', body: 'payload' });
  assert.equal(r.status, 502);
  assertNoLeak(JSON.stringify(r.headers) + r.body, resettingPort);
  const g = await http(`${portico.url}/reset`);
  assert.equal(g.status, 502, 'also for a GET (after its one retry)');
});

test('target resets in the middle of its response head: 502, nothing of the partial head', async () => {
  const r = await http(`${portico.url}/half`, { method: 'POST', body: 'x' });
  assert.equal(r.status, 502);
  assertNoLeak(JSON.stringify(r.headers) + r.body, halfHeadPort);
});

test('target answers with something that is not HTTP: 502 without the backend\'s text', async () => {
  const r = await http(`${portico.url}/garbage`);
  assert.equal(r.status, 502);
  assertNoLeak(JSON.stringify(r.headers) + r.body, garbagePort);
});

test('target never answers: 504', async () => {
  const r = await http(`${portico.url}/silent`);
  assert.equal(r.status, 504);
  assert.match(r.body, /504/);
  assertNoLeak(JSON.stringify(r.headers) + r.body, silent.port);
});

test('JSON error bodies when the client asks for JSON', async () => {
  const r = await http(`${portico.url}/refused`, { headers: { accept: 'application/json' } });
  assert.equal(r.status, 502);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const body = JSON.parse(r.body) as { error: { status: number; message: string } };
  assert.equal(body.error.status, 502);
  assert.equal(typeof body.error.message, 'string');
  assertNoLeak(r.body, refusedPort);
  const notFound = await http(`${portico.url}/no-route`, { headers: { accept: 'application/problem+json, text/html;q=0.5' } });
  assert.equal(notFound.status, 404);
  assert.equal((JSON.parse(notFound.body) as { error: { status: number } }).error.status, 404);
  const html = await http(`${portico.url}/no-route`, { headers: { accept: 'text/html,application/xhtml+xml,application/json;q=0.9' } });
  assert.match(String(html.headers['content-type']), /^text\/html/, 'a browser gets HTML');
});

test('a Unix-socket target works', async () => {
  const r = await http(`${portico.url}/unix/path?q=1`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'unix says hi to /unix/path?q=1');
});

test('malformed requests get 400 and the server keeps serving', async () => {
  const bad = [
    'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n',
    'GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET / HTTP/9.9\r\nHost: a\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc',
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n',
    '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
    'GET\r\n\r\n',
  ];
  for (const bytes of bad) {
    const r = await rawExchange(portico.port, bytes);
    assert.equal(statusOf(r.data), 400, `${JSON.stringify(bytes)} -> ${JSON.stringify(r.data.slice(0, 40))}`);
  }
  assert.equal(backend.seen.length, 0, 'none of them reached a backend');
  const ok = await http(`${portico.url}/app/still-alive`);
  assert.equal(ok.status, 200);
});

test('pipelined: a good request followed by garbage gets its response first, then 400 and a close', async () => {
  const before = backend.seen.length;
  const r = await rawExchange(portico.port, 'GET /app/first HTTP/1.1\r\nHost: a\r\n\r\nGET /app/second HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n', { idleMs: 2_000 });
  assert.deepEqual(statusesOf(r.data), [200, 400]);
  assert.ok(r.closedByServer);
  assert.deepEqual(backend.seen.slice(before).map((s) => s.url), ['/app/first']);
});

test('data after "Connection: close" is ignored: the response arrives, then the close', async () => {
  const before = backend.seen.length;
  const r = await rawExchange(portico.port, 'GET /app/only HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /app/smuggled HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 2_000 });
  assert.deepEqual(statusesOf(r.data), [200]);
  assert.ok(r.closedByServer);
  assert.deepEqual(backend.seen.slice(before).map((s) => s.url), ['/app/only']);
});

test('an HTTP/1.1 upgrade request without Host gets 400, like any other request', async () => {
  const before = backend.seen.length;
  const r = await rawExchange(portico.port, 'GET /app/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  assert.equal(statusOf(r.data), 400);
  assert.equal(backend.seen.length, before);
});

test('a transfer coding other than chunked gets 501 and nothing reaches the backend', async () => {
  const before = backend.seen.length;
  for (const te of ['gzip, chunked', 'deflate\r\nTransfer-Encoding: chunked']) {
    const r = await rawExchange(portico.port, `POST /app/coded HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ${te}\r\n\r\n5\r\nWorld\r\n0\r\n\r\n`);
    assert.equal(statusOf(r.data), 501, te);
  }
  const ok = await rawExchange(portico.port, 'POST /app/plain HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nWorld\r\n0\r\n\r\n');
  assert.equal(statusOf(ok.data), 200, 'plain chunked (any case) passes');
  assert.deepEqual(backend.seen.slice(before).map((s) => [s.url, s.body]), [['/app/plain', 'World']]);
});

test('an Upgrade request with a body, to a target that does not upgrade, gets the target\'s answer', async () => {
  const before = backend.seen.length;
  const r = await rawExchange(portico.port, 'POST /app/up HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 4\r\n\r\nabcd', { idleMs: 3_000 });
  assert.equal(statusOf(r.data), 200, 'not a 504 while the target waits for a body that never comes');
  assert.deepEqual(backend.seen.slice(before).map((s) => [s.url, s.body]), [['/app/up', 'abcd']]);
});
