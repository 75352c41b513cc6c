// Client-side limits and timeouts, and upstream timeouts, over real sockets with short settings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { startPortico, statusOf, sleep, type RunningPortico } from './helpers.js';
import { openSocket, rawExchange, startRecordingBackend, startSilentServer, statusesOf, waitFor, type RecordingBackend } from './helpers-core.js';

let backend: RecordingBackend;
let silent: Awaited<ReturnType<typeof startSilentServer>>;
let stalling: NetServer;
let stallingPort: number;
const stallingSockets = new Set<Socket>();
let portico: RunningPortico;

before(async () => {
  backend = await startRecordingBackend();
  silent = await startSilentServer();
  // Sends a response head and part of the body, then goes quiet.
  stalling = createNetServer((socket) => {
    stallingSockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\nfirst-part'));
    socket.on('close', () => stallingSockets.delete(socket));
  });
  stalling.listen(0, '127.0.0.1');
  await once(stalling, 'listening');
  stallingPort = (stalling.address() as AddressInfo).port;
  portico = await startPortico({
    server: {
      timeouts: { header: '600ms', keepalive: '400ms' },
      limits: { max_body_size: '1kb', max_header_size: '2kb' },
    },
    upstreams: {
      app: { targets: [backend.url] },
      silent: { targets: [`http://127.0.0.1:${silent.port}`], timeouts: { response: '300ms' } },
      stalling: { targets: [`http://127.0.0.1:${stallingPort}`], timeouts: { read: '300ms' } },
    },
    routes: [
      { match: { path: '/silent' }, upstream: 'silent' },
      { match: { path: '/stalling' }, upstream: 'stalling' },
      { match: { path: '/big-route' }, upstream: 'app', max_body_size: '8kb' },
      { match: {}, upstream: 'app' },
    ],
  });
});

after(async () => {
  await portico.close();
  await backend.close();
  await silent.close();
  for (const s of stallingSockets) s.destroy();
  await new Promise<void>((r) => stalling.close(() => r()));
});

test('slowloris: a request head dribbled in is cut off near the header timeout (408 or close)', async () => {
  backend.reset();
  const parts = ['GET / HTTP/1.1\r\nHost: a\r\n'];
  for (let i = 0; i < 30; i++) parts.push(`X-Slow-${i}: y\r\n`);
  const r = await rawExchange(portico.port, parts, { gapMs: 100, idleMs: 5_000, maxMs: 5_000 });
  assert.ok(r.closedByServer, 'the server closed the connection');
  assert.ok(r.elapsed < 2_500, `closed after ${Math.round(r.elapsed)} ms; header timeout is 600 ms`);
  const status = statusOf(r.data);
  assert.ok(status === 408 || status === 0, `got ${status}`);
  assert.equal(backend.heads, 0, 'nothing reached the backend');
});

test('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
  const r = await rawExchange(portico.port, 'GET /ka HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 5_000, maxMs: 5_000 });
  assert.deepEqual(statusesOf(r.data), [200]);
  assert.ok(r.closedByServer, 'the server closed the idle connection');
  assert.ok(r.elapsed >= 300 && r.elapsed < 3_000, `closed after ${Math.round(r.elapsed)} ms; keep-alive timeout is 400 ms`);
});

test('a Content-Length body over the limit gets 413 and never reaches the backend', async () => {
  backend.reset();
  const body = 'x'.repeat(2_048);
  const r = await rawExchange(portico.port, `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  assert.equal(statusOf(r.data), 413);
  await sleep(50);
  assert.equal(backend.heads, 0);
});

test('a body at the limit passes', async () => {
  backend.reset();
  const body = 'x'.repeat(1_024);
  const r = await rawExchange(portico.port, `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  assert.equal(statusOf(r.data), 200);
  assert.equal(backend.completed[0]?.body.length, 1_024);
});

test('a chunked body over the limit gets 413 or a close, and the backend never gets it whole', async () => {
  backend.reset();
  const chunk = 'y'.repeat(512);
  const parts = ['POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'];
  for (let i = 0; i < 8; i++) parts.push(`200\r\n${chunk}\r\n`);
  parts.push('0\r\n\r\n');
  const r = await rawExchange(portico.port, parts, { gapMs: 20, idleMs: 1_000 });
  const status = statusOf(r.data);
  assert.ok(status === 413 || (status === 0 && r.closedByServer), `got ${status}${r.closedByServer ? ' + close' : ''}`);
  await sleep(100);
  assert.ok(backend.completed.every((q) => q.body.length <= 1_024), 'no complete oversized body at the backend');
});

test('a route can raise the body limit', async () => {
  backend.reset();
  const body = 'z'.repeat(4_096);
  const r = await rawExchange(portico.port, `POST /big-route HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  assert.equal(statusOf(r.data), 200);
  assert.equal(backend.completed[0]?.body.length, 4_096);
});

test('a request head over max_header_size gets 431', async () => {
  backend.reset();
  const r = await rawExchange(portico.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(4_096)}\r\n\r\n`);
  assert.equal(statusOf(r.data), 431);
  assert.equal(backend.heads, 0);
});

test('an upstream that never answers gets 504 after the response timeout', async () => {
  const r = await rawExchange(portico.port, 'GET /silent HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { idleMs: 4_000, maxMs: 5_000 });
  assert.equal(statusOf(r.data), 504);
  // undici runs its parser timeouts on ~1 s "fast timers", hence the slack.
  assert.ok(r.elapsed < 3_000, `504 after ${Math.round(r.elapsed)} ms; response timeout is 300 ms`);
});

test('an upstream that stalls mid-body: the client connection is cut after the read timeout', async () => {
  const r = await rawExchange(portico.port, 'GET /stalling HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 4_000, maxMs: 5_000 });
  assert.equal(statusOf(r.data), 200);
  assert.ok(r.data.endsWith('first-part'), 'the part sent was relayed');
  assert.ok(r.closedByServer, 'the client connection was cut (the body cannot complete)');
  assert.ok(r.elapsed < 3_000, `cut after ${Math.round(r.elapsed)} ms; read timeout is 300 ms`);
});

test('max_connections: connections over the limit are closed; those under it are served', async () => {
  const limited = await startPortico({
    server: { limits: { max_connections: 2 } },
    upstreams: { app: { targets: [backend.url] } },
    routes: [{ match: {}, upstream: 'app' }],
  });
  try {
    const a = await openSocket(limited.port);
    const b = await openSocket(limited.port);
    await sleep(50);
    const c = await openSocket(limited.port);
    c.socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const closed = await Promise.race([c.closed.then(() => true), sleep(2_000).then(() => false)]);
    assert.ok(closed, 'the third connection was closed');
    assert.equal(c.data(), '', 'and got no response');
    a.socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.ok(await waitFor(() => statusOf(a.data()) === 200, 2_000), 'a connection under the limit is served');
    a.socket.destroy();
    b.socket.destroy();
    await Promise.all([a.closed, b.closed]);
    await sleep(50);
    const d = await rawExchange(limited.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(d.data), 200, 'after others closed, a new connection is served');
  } finally {
    await limited.close();
  }
});
