// Expect: 100-continue: the route decides before the client sends its body. An oversized body is
// refused with 413 and no "100 Continue" (so the client never sends it); an accepted one gets the
// 100, then the body is proxied.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { startBackend, startPortico, statusOf, type Backend, type RunningPortico } from './helpers.js';

let backend: Backend;
let portico: RunningPortico;

before(async () => {
  backend = await startBackend();
  portico = await startPortico({
    server: { listen: ['127.0.0.1:0'], limits: { max_body_size: '1kb' } },
    upstreams: { app: { targets: [backend.url] } },
    routes: [
      { match: { path: '/fixed' }, respond: { status: 200, body: 'fixed' } },
      { match: {}, upstream: 'app' },
    ],
  });
});
after(async () => { await portico.close(); await backend.close(); });

/** Sends the head, then waits `waitMs` and returns what arrived before any body was sent. */
async function headOnly(head: string, waitMs = 400): Promise<{ text: string; socket: ReturnType<typeof connect> }> {
  const socket = connect(portico.port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  socket.on('data', (c: Buffer) => { text += c.toString('latin1'); });
  socket.on('error', () => undefined);
  socket.write(head);
  await new Promise((r) => setTimeout(r, waitMs));
  return { text, socket };
}

test('oversized body: 413 at once, no 100 Continue, backend untouched', async () => {
  const before = backend.seen.length;
  const { text, socket } = await headOnly('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
  socket.destroy();
  assert.equal(statusOf(text), 413, text);
  assert.ok(!text.includes('100 Continue'), 'no 100 Continue before a refusal');
  assert.equal(backend.seen.length, before);
});

test('accepted body: 100 Continue first, then the body is proxied', async () => {
  const { text, socket } = await headOnly('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
  assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
  let rest = '';
  socket.on('data', (c: Buffer) => { rest += c.toString('latin1'); });
  socket.write('hello');
  await once(socket, 'close');
  assert.equal(statusOf(rest), 200, rest);
  assert.ok(rest.includes('"body":"hello"'), 'the backend got the body');
  assert.equal(backend.seen.at(-1)!.headers.expect, undefined, 'Expect is not forwarded');
});

test('a route that does not read the body answers without asking for it', async () => {
  const { text, socket } = await headOnly('POST /fixed HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  socket.destroy();
  assert.equal(statusOf(text), 200, text);
  assert.ok(text.endsWith('fixed'));
});
