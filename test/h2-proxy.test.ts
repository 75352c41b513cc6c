// HTTP/2 over TLS (and h2c) into the same handler path as HTTP/1.1: requests reach an HTTP/1.1
// backend with the right Host and body, responses carry no connection-specific headers, h2->h1
// smuggling attempts are refused, and WebSockets still work over HTTP/1.1 on the HTTPS port.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as h2Connect } from 'node:http2';
import { once } from 'node:events';
import { WebSocketServer, WebSocket } from 'ws';
import { startBackend, type Backend } from './helpers.js';
import { createTestPki, h2Request, h2Session, httpsPort, type TestPki } from './helpers-tls.js';
import { createPortico, type ConfigInput, type Portico } from '../src/index.js';

let pki: TestPki;
let backend: Backend;
let streaming: Backend;
let portico: Portico;
let port: number;
let h2cPort: number;

before(async () => {
  pki = createTestPki();
  const cert = pki.issue('site', ['a.test']);
  backend = await startBackend();
  // Chunked response with hop-by-hop headers, as many apps send them.
  streaming = await startBackend((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive', 'keep-alive': 'timeout=5' });
    res.write('one,');
    setTimeout(() => res.end('two'), 20);
  }, { streaming: true });
  portico = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'], h2c_listen: ['127.0.0.1:0'] }, limits: { max_body_size: '1kb' } },
    tls: { certificates: [{ cert: cert.certPath, key: cert.keyPath }] },
    upstreams: { app: { targets: [backend.url] }, stream: { targets: [streaming.url] } },
    routes: [
      { name: 'stream', match: { host: ['a.test'], path: ['/stream'] }, upstream: 'stream' },
      { name: 'app', match: { host: ['a.test'] }, upstream: 'app' },
    ],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput);
  port = httpsPort(portico.addresses);
  const h2c = portico.addresses.find((a) => a.startsWith('h2c://'))!;
  h2cPort = Number(h2c.slice(h2c.lastIndexOf(':') + 1));
});

after(async () => {
  await portico?.close(500);
  await backend?.close();
  await streaming?.close();
  pki?.cleanup();
});

test('h2 request reaches the HTTP/1.1 backend with :authority as Host and its body', async () => {
  const session = await h2Session(port, pki.ca, 'a.test');
  try {
    const get = await h2Request(session, { ':method': 'GET', ':path': '/x?q=1', ':authority': 'a.test', 'x-test': 'yes' });
    assert.equal(get.status, 200);
    const seen = JSON.parse(get.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/x?q=1');
    assert.equal(seen.headers['host'], 'a.test');
    assert.equal(seen.headers['x-test'], 'yes');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    for (const name of Object.keys(seen.headers)) assert.ok(!name.startsWith(':'), `no pseudo-header upstream: ${name}`);
    assert.equal(backend.seen.at(-1)?.httpVersion, '1.1');
    // Hidden upstream headers stay hidden over h2 too.
    assert.equal(get.headers['server'], undefined);

    // A Host equal to :authority is fine; a different one is a conflicting request (RFC 9113 §8.3.1).
    assert.equal((await h2Request(session, { ':method': 'GET', ':path': '/', ':authority': 'a.test', host: 'a.test' })).status, 200);
    assert.equal((await h2Request(session, { ':method': 'GET', ':path': '/', ':authority': 'a.test', host: 'evil.test' })).status, 400);

    const post = await h2Request(session, { ':method': 'POST', ':path': '/form', ':authority': 'a.test', 'content-type': 'text/plain' }, 'hello h2');
    assert.equal(post.status, 200);
    assert.equal((JSON.parse(post.body) as { body: string }).body, 'hello h2');
  } finally {
    session.close();
  }
});

test('h2 responses carry no connection-specific headers (streamed upstream response, error pages)', async () => {
  const session = await h2Session(port, pki.ca, 'a.test');
  try {
    const res = await h2Request(session, { ':method': 'GET', ':path': '/stream', ':authority': 'a.test' });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'one,two');
    for (const h of ['connection', 'keep-alive', 'transfer-encoding']) assert.equal(res.headers[h], undefined, h);
    // Portico's own 413 asks HTTP/1.1 clients to close; over h2 the answer must still arrive.
    const big = await h2Request(session, { ':method': 'POST', ':path': '/', ':authority': 'a.test', 'content-length': '5000' }, Buffer.alloc(5000));
    assert.equal(big.status, 413);
    assert.equal(big.headers['connection'], undefined);
    // The session survives all of it.
    const again = await h2Request(session, { ':method': 'GET', ':path': '/', ':authority': 'a.test' });
    assert.equal(again.status, 200);
  } finally {
    session.close();
  }
});

test('h2 -> h1 smuggling is refused: transfer-encoding, content-length mismatch, CR/LF in values', async () => {
  const before = backend.seen.length;
  const cases: [string, [string, string][], Buffer | undefined][] = [
    ['transfer-encoding', [['transfer-encoding', 'chunked']], Buffer.from('0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n')],
    ['content-length larger than data', [['content-length', '100']], Buffer.from('short')],
    ['content-length smaller than data', [['content-length', '2']], Buffer.from('0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n')],
    ['CR/LF in a value', [['x-evil', 'a\r\nx-injected: 1']], undefined],
    ['NUL in a value', [['x-evil', 'a\0b']], undefined],
    ['connection header', [['connection', 'close']], undefined],
  ];
  for (const [name, headers, body] of cases) {
    const count = backend.seen.length;
    const outcome = await rawH2Request(port, headers, body);
    if (name.includes('in a value') && outcome === 200) {
      // nghttp2 drops a header field with an invalid value (RFC 9113 §8.2.1 allows either);
      // what matters is that nothing of it reaches the backend.
      const seen = backend.seen.at(-1)!;
      assert.equal(seen.headers['x-evil'], undefined, name);
      assert.equal(seen.headers['x-injected'], undefined, name);
      continue;
    }
    assert.ok(outcome === 'reset' || outcome === 400, `${name}: refused (got ${outcome})`);
    if (name === 'transfer-encoding' || name === 'connection header') assert.equal(backend.seen.length, count, `${name}: never forwarded`);
  }
  // Bodies are streamed, so a content-length lie may be found only after the head went upstream:
  // then the upstream request is aborted, never completed with the extra bytes as a new request.
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(!backend.seen.some((r) => r.url.includes('smuggled')), 'no smuggled request');
  assert.ok(!backend.seen.slice(before).some((r) => r.body.length > 2 && r.body.includes('GET')), 'no excess body bytes forwarded');
  for (const t of portico.plan.targets.values()) assert.equal(t.inflight, 0, 'no upstream request left hanging');
});

test('h2 flow control both ways: an 8 MiB download read slowly and a 2 MiB upload arrive intact', async () => {
  const big = Buffer.alloc(8 * 1024 * 1024, 'abcdefgh');
  const bulk = await startBackend((req, res, body) => {
    if (req.method === 'POST') { res.end(`got ${body.length} ${body.equals(Buffer.alloc(body.length, 'xy')) ? 'intact' : 'corrupt'}`); return; }
    res.writeHead(200, { 'content-length': String(big.length) });
    res.end(big);
  });
  const p = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } },
    tls: { certificates: [{ cert: pki.issue('bulk', ['bulk.test']).certPath, key: `${pki.dir}/bulk.key` }] },
    upstreams: { bulk: { targets: [bulk.url] } },
    routes: [{ name: 'bulk', match: {}, upstream: 'bulk' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput);
  const session = await h2Session(httpsPort(p.addresses), pki.ca, 'bulk.test');
  try {
    const stream = session.request({ ':method': 'GET', ':path': '/big', ':authority': 'bulk.test' });
    // Read nothing for a while: the windows fill up and Portico must wait, not fail or buffer it all.
    stream.pause();
    await new Promise((r) => setTimeout(r, 300));
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.resume();
    await once(stream, 'end');
    const got = Buffer.concat(chunks);
    assert.equal(got.length, big.length);
    assert.ok(got.equals(big), 'download intact');
    const up = await h2Request(session, { ':method': 'POST', ':path': '/up', ':authority': 'bulk.test' }, Buffer.alloc(2 * 1024 * 1024, 'xy'));
    assert.equal(up.body, `got ${2 * 1024 * 1024} intact`);
  } finally {
    session.close();
    await p.close(200);
    await bulk.close();
  }
});

test('upstream trailers reach HTTP/2 clients', async () => {
  const trailing = await startBackend((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/grpc', trailer: 'grpc-status' });
    res.write('data');
    res.addTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' });
    res.end();
  });
  const p = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } },
    tls: { certificates: [{ cert: `${pki.dir}/site.pem`, key: `${pki.dir}/site.key` }] },
    upstreams: { t: { targets: [trailing.url] } },
    routes: [{ name: 't', match: {}, upstream: 't' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput);
  const session = await h2Session(httpsPort(p.addresses), pki.ca, 'a.test');
  try {
    const stream = session.request({ ':method': 'POST', ':path': '/svc/Method', ':authority': 'a.test', te: 'trailers' });
    stream.end();
    const trailers = new Promise<Record<string, unknown>>((resolve) => stream.once('trailers', (t: Record<string, unknown>) => resolve(t)));
    stream.resume();
    await once(stream, 'end');
    const t = await Promise.race([trailers, new Promise<Record<string, unknown>>((r) => setTimeout(() => r({}), 1_000))]);
    assert.equal(t['grpc-status'], '0');
    assert.equal(t['grpc-message'], 'ok');
  } finally {
    session.close();
    await p.close(200);
    await trailing.close();
  }
});

test('h2c with prior knowledge reaches the same routes', async () => {
  const session = h2Connect(`http://127.0.0.1:${h2cPort}`);
  session.on('error', () => undefined);
  try {
    const res = await h2Request(session, { ':method': 'GET', ':path': '/h2c', ':authority': 'a.test' });
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/h2c');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
  } finally {
    session.close();
  }
});

test('WebSockets work over HTTP/1.1 on the HTTPS port', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${String(m)}`)));
  const wsPort = (wss.address() as { port: number }).port;
  const ws2 = await createPortico({
    server: { listen: ['127.0.0.1:0'], https: { listen: ['127.0.0.1:0'] } },
    tls: { certificates: [pki.issue('ws', ['ws.test'])].map((c) => ({ cert: c.certPath, key: c.keyPath })) },
    upstreams: { ws: { targets: [`http://127.0.0.1:${wsPort}`] } },
    routes: [{ name: 'ws', match: {}, upstream: 'ws' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as ConfigInput);
  try {
    const client = new WebSocket(`wss://127.0.0.1:${httpsPort(ws2.addresses)}/chat`, { ca: pki.ca, servername: 'ws.test', headers: { host: 'ws.test' } } as never);
    await once(client, 'open');
    client.send('hi');
    const [msg] = await once(client, 'message') as [Buffer];
    assert.equal(String(msg), 'echo:hi');
    client.close();
  } finally {
    await ws2.close(200);
    wss.close();
  }
});

// --- a minimal HTTP/2 client that sends what node:http2 refuses to send -------------------------

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK "literal header field without indexing, new name", no Huffman (RFC 7541 §6.2.2). */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  if (n.length > 126 || v.length > 126) throw new Error('keep test headers short');
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

/** Sends one request with raw headers; 'reset' when the stream or connection was refused, else the status. */
async function rawH2Request(p: number, extra: [string, string][], body: Buffer | undefined): Promise<'reset' | number> {
  const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port: p, servername: 'a.test', ALPNProtocols: ['h2'], ca: pki.ca });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  const block = Buffer.concat([
    literal(':method', body ? 'POST' : 'GET'), literal(':scheme', 'https'), literal(':path', '/'), literal(':authority', 'a.test'),
    ...extra.map(([n, v]) => literal(n, v)),
  ]);
  socket.write(Buffer.concat([
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    frame(0x4, 0, 0, Buffer.alloc(0)),
    frame(0x1, 0x4 | (body ? 0 : 0x1), 1, block),
    ...(body ? [frame(0x0, 0x1, 1, body)] : []),
  ]));
  let buf = Buffer.alloc(0);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done('reset'), 2_000);
    function done(v: 'reset' | number) { clearTimeout(timer); socket.destroy(); resolve(v); }
    socket.on('close', () => done('reset'));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === 0x4 && (buf[4]! & 0x1) === 0 && stream === 0) socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0)));
        if (type === 0x3 && stream === 1) return done('reset');
        if (type === 0x7) return done('reset');
        if (type === 0x1 && stream === 1) {
          // :status from the static table (8: 200, 12: 400, 13: 404) when indexed.
          const first = payload[0]!;
          const statuses: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };
          return done((first & 0x80) !== 0 ? (statuses[first & 0x7f] ?? -1) : -1);
        }
      }
    });
  });
}
