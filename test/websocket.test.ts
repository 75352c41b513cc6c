// WebSocket tunnelling through Portico with the `ws` package on both ends: messages both ways,
// subprotocols and permessage-deflate intact, clean closes from either side, the idle timeout,
// and handshakes the backend refuses or cannot take.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { startPortico, proxyAll, sleep, type RunningPortico } from './helpers.js';

interface WsBackend {
  wss: WebSocketServer;
  url: string;
  /** The handshake requests the backend received. */
  handshakes: IncomingMessage[];
  /** Close events seen by the backend: [url, code, reason]. */
  closes: [string, number, string][];
  close(): Promise<void>;
}

/** An echo WebSocket backend; `ws://…/close-me` is closed by the server after its first message. */
async function startWsBackend(opts: { refuse?: number } = {}): Promise<WsBackend> {
  const server = createServer((_req, res) => { res.writeHead(426).end(); });
  const handshakes: IncomingMessage[] = [];
  const closes: [string, number, string][] = [];
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: true,
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false),
    verifyClient: opts.refuse ? (_info, cb) => cb(false, opts.refuse, 'Forbidden') : undefined,
  } as ConstructorParameters<typeof WebSocketServer>[0]);
  wss.on('headers', (_headers, req) => handshakes.push(req));
  wss.on('connection', (ws, req) => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (req.url === '/close-me') { ws.close(4002, 'server says bye'); return; }
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => closes.push([req.url!, code, reason.toString()]));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    wss, handshakes, closes,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function open(url: string, protocols?: string[], opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, { perMessageDeflate: true, maxPayload: 64 * 1024 * 1024, ...opts });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`unexpected response ${res.statusCode}`), { statusCode: res.statusCode })));
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: RawData, isBinary: boolean) => resolve({ data: Buffer.from(data as Buffer), isBinary })));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

/** Unexpected-response status of a handshake that must fail. */
async function refusedStatus(url: string): Promise<number> {
  try {
    const ws = await open(url);
    ws.terminate();
    return 101;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode ?? 0;
  }
}

let backend: WsBackend;
let portico: RunningPortico;
let wsUrl: string;

before(async () => {
  backend = await startWsBackend();
  portico = await startPortico(proxyAll([backend.url]));
  wsUrl = portico.url.replace('http:', 'ws:');
});
after(async () => { await portico?.close(); await backend?.close(); });

test('text and binary messages, small and large, pass both ways', async () => {
  const ws = await open(`${wsUrl}/echo`);
  try {
    ws.send('hello');
    let m = await nextMessage(ws);
    assert.equal(m.isBinary, false);
    assert.equal(m.data.toString(), 'hello');

    const text = 'ü€'.repeat(400_000); // ~2 MiB of multi-byte UTF-8
    ws.send(text);
    m = await nextMessage(ws);
    assert.equal(m.isBinary, false);
    assert.equal(m.data.toString('utf8'), text);

    const bin = randomBytes(8 * 1024 * 1024); // incompressible, so it crosses as 8 MiB
    ws.send(bin);
    m = await nextMessage(ws);
    assert.equal(m.isBinary, true);
    assert.ok(m.data.equals(bin));

    // Many small messages in a burst arrive complete and in order.
    const replies: string[] = [];
    const all = new Promise<void>((resolve) => ws.on('message', (d: RawData) => { replies.push(d.toString()); if (replies.length === 200) resolve(); }));
    for (let i = 0; i < 200; i++) ws.send(`m${i}`);
    await all;
    assert.deepEqual(replies, Array.from({ length: 200 }, (_, i) => `m${i}`));
  } finally { ws.terminate(); }
});

test('a frame sent in the same packet as the handshake is not lost', async () => {
  // A client may pipeline its first frame right behind the upgrade request; those bytes arrive
  // with the head and must be passed on once the tunnel is up.
  const payload = Buffer.from('early bird');
  const mask = Buffer.from([1, 2, 3, 4]);
  const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]);
  const head = `GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  const s = connect(portico.port, '127.0.0.1');
  s.on('error', () => undefined);
  await once(s, 'connect');
  s.write(Buffer.concat([Buffer.from(head), frame]));
  let got = Buffer.alloc(0);
  const expected = Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
  try {
    for (let i = 0; i < 200; i++) {
      const end = got.indexOf('\r\n\r\n');
      if (end !== -1 && got.length >= end + 4 + expected.length) break;
      const chunk = await Promise.race([once(s, 'data').then(([c]) => c as Buffer), sleep(3_000).then(() => undefined)]);
      if (chunk === undefined) break;
      got = Buffer.concat([got, chunk]);
    }
    assert.match(got.toString('latin1'), /^HTTP\/1\.1 101 /);
    const end = got.indexOf('\r\n\r\n');
    assert.deepEqual(got.subarray(end + 4, end + 4 + expected.length), expected, 'the early frame was not echoed');
  } finally { s.destroy(); }
});

test('the subprotocol and permessage-deflate are negotiated end to end', async () => {
  const before = backend.handshakes.length;
  const ws = await open(`${wsUrl}/echo`, ['chat.v2', 'chat.v1'], { perMessageDeflate: { clientNoContextTakeover: true } });
  try {
    assert.equal(ws.protocol, 'chat.v1');
    assert.match(ws.extensions, /permessage-deflate/);
    const hs = backend.handshakes[before]!;
    // As the client sent it (ws joins with ",").
    assert.equal(hs.headers['sec-websocket-protocol'], 'chat.v2,chat.v1');
    assert.match(String(hs.headers['sec-websocket-extensions']), /permessage-deflate; client_no_context_takeover/);
    // Compressed frames (RSV1) survive the tunnel.
    const text = 'compress me '.repeat(10_000);
    ws.send(text, { compress: true });
    const m = await nextMessage(ws);
    assert.equal(m.data.toString(), text);
  } finally { ws.terminate(); }
});

test('a close started by the client reaches the server with its code and reason', async () => {
  const ws = await open(`${wsUrl}/echo?client-close`);
  ws.send('x');
  await nextMessage(ws);
  const done = closed(ws);
  ws.close(4001, 'client says bye');
  const c = await done;
  assert.equal(c.code, 4001);
  const seen = () => backend.closes.find((c) => c[0] === '/echo?client-close');
  for (let i = 0; i < 100 && seen() === undefined; i++) await sleep(10);
  assert.deepEqual(seen(), ['/echo?client-close', 4001, 'client says bye']);
});

test('a close started by the server reaches the client with its code and reason', async () => {
  const ws = await open(`${wsUrl}/close-me`);
  const done = closed(ws);
  ws.send('please close');
  const c = await done;
  assert.equal(c.code, 4002);
  assert.equal(c.reason, 'server says bye');
});

test('the upstream websocket_idle timeout closes an idle tunnel, and traffic keeps it open', async () => {
  const p = await startPortico(proxyAll([backend.url], { upstreams: { app: { targets: [backend.url], timeouts: { websocket_idle: '400ms' } } } }));
  try {
    const url = p.url.replace('http:', 'ws:');
    // Busy: a message every 100 ms for 1.2 s, three times the idle timeout.
    const busy = await open(`${url}/echo`);
    let t0 = 0;
    for (let i = 0; i < 12; i++) {
      await sleep(100);
      busy.send(`ping ${i}`);
      assert.equal((await nextMessage(busy)).data.toString(), `ping ${i}`);
      t0 = performance.now();
    }
    assert.equal(busy.readyState, WebSocket.OPEN);
    // Idle from the last message: closed by Portico soon after 400 ms.
    const c = await Promise.race([closed(busy), sleep(3_000).then(() => undefined)]);
    assert.ok(c !== undefined, 'the idle tunnel was not closed');
    const ms = performance.now() - t0;
    assert.ok(ms >= 300 && ms < 2_000, `closed after ${ms.toFixed(0)} ms`);
  } finally { await p.close(); }
});

test('a backend refusing the upgrade (403) is relayed to the client as 403', async () => {
  const refusing = await startWsBackend({ refuse: 403 });
  const p = await startPortico(proxyAll([refusing.url]));
  try {
    assert.equal(await refusedStatus(`${p.url.replace('http:', 'ws:')}/echo`), 403);
  } finally { await p.close(); await refusing.close(); }
});

test('an upgrade to a target that is not there gets 502', async () => {
  // A port that was just free: nothing listens there.
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const deadPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const p = await startPortico(proxyAll([`http://127.0.0.1:${deadPort}`]));
  try {
    assert.equal(await refusedStatus(`${p.url.replace('http:', 'ws:')}/echo`), 502);
  } finally { await p.close(); }
});
