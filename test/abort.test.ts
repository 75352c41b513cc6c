// Connection lifecycle: a client abort cancels the upstream request, an upstream abort ends the
// client's response, 1,000 aborted requests leak no sockets, and the stale keep-alive race is
// retried once for an idempotent request but never for a request with a body.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { startBackend, startPortico, proxyAll, sleep, http, type Backend, type RunningPortico } from './helpers.js';

/** Resolves when `cond` holds, or rejects after `ms`. */
async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Starts Portico; if that fails, closes the backend so the file does not hang on an open server. */
async function startPorticoOr(backend: Backend, config: Parameters<typeof startPortico>[0]): Promise<RunningPortico> {
  try { return await startPortico(config); } catch (err) { await backend.close(); throw err; }
}

function connections(backend: Backend): Promise<number> {
  return new Promise((resolve, reject) => backend.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** Connected sockets in all of Portico's upstream pools (undici's own count). */
function upstreamSockets(p: RunningPortico): number {
  let n = 0;
  for (const t of p.portico.plan.targets.values()) n += t.pool.stats.connected;
  return n;
}

function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

/** Sends a GET on a raw socket; returns the socket (the caller destroys it to abort). */
async function rawGet(port: number, path: string): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  await once(s, 'connect');
  s.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`);
  return s;
}

test('a client abort before the response head cancels the upstream request', async () => {
  let seen!: () => void;
  const arrived = new Promise<void>((r) => { seen = r; });
  let closed!: (finished: boolean) => void;
  const backendClosed = new Promise<boolean>((r) => { closed = r; });
  const backend = await startBackend((_req, res) => {
    // Never answers: only the client's abort can end this request.
    res.on('close', () => closed(res.writableFinished));
    seen();
  }, { streaming: true });
  const p = await startPorticoOr(backend, proxyAll([backend.url]));
  try {
    const s = await rawGet(p.port, '/hold');
    await arrived;
    s.destroy();
    const finished = await Promise.race([backendClosed, sleep(3_000).then(() => 'timeout' as const)]);
    assert.equal(finished, false, 'the backend did not see its request closed after the client left');
  } finally { await p.close(); await backend.close(); }
});

test('a client abort mid-body cancels the upstream request (the backend stops writing)', async () => {
  let written = 0;
  let closed!: () => void;
  const backendClosed = new Promise<void>((r) => { closed = r; });
  const backend = await startBackend((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    // Writes forever, paced by backpressure, until the connection goes away.
    const timer = setInterval(() => { res.write(chunk); written += chunk.length; }, 5);
    res.on('close', () => { clearInterval(timer); closed(); });
  }, { streaming: true });
  const p = await startPorticoOr(backend, proxyAll([backend.url]));
  try {
    const ac = new AbortController();
    const res = await request(`${p.url}/stream`, { signal: ac.signal });
    assert.equal(res.statusCode, 200);
    let got = 0;
    await assert.rejects(async () => {
      for await (const c of res.body) { got += c.length; if (got > 256 * 1024) ac.abort(); }
    });
    const outcome = await Promise.race([backendClosed.then(() => 'closed'), sleep(3_000).then(() => 'still open')]);
    assert.equal(outcome, 'closed');
    assert.ok(written > 0);
  } finally { await p.close(); await backend.close(); }
});

for (const framing of ['content-length', 'chunked'] as const) {
  test(`an upstream abort mid-body (${framing}) ends the client's response with an error, not a hang`, async () => {
    const backend = await startBackend((_req, res) => {
      res.writeHead(200, framing === 'content-length' ? { 'content-length': String(1024 * 1024) } : {});
      res.write(Buffer.alloc(100 * 1024, 0x62));
      // The backend dies with most of the body unsent.
      setTimeout(() => res.socket?.destroy(), 50);
    }, { streaming: true });
    const p = await startPorticoOr(backend, proxyAll([backend.url]));
    try {
      const t0 = performance.now();
      const res = await request(`${p.url}/broken`, { dispatcher: new Agent({ pipelining: 0 }) });
      assert.equal(res.statusCode, 200);
      let got = 0;
      await assert.rejects(async () => { for await (const c of res.body) got += c.length; }, 'the truncated body was accepted as complete');
      assert.ok(got >= 100 * 1024 && got < 1024 * 1024, `got ${got} bytes`);
      assert.ok(performance.now() - t0 < 5_000);
    } finally { await p.close(); await backend.close(); }
  });
}

test('1,000 aborted requests leak no sockets (backend connections and upstream pool)', async () => {
  const held = new Set<ServerResponse>();
  let arrivals = 0;
  const backend = await startBackend((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/ok') { res.end('ok'); return; }
    arrivals++;
    if (req.url === '/body') {
      // Aborted mid-body: the head and part of the body are out.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('x'.repeat(16 * 1024));
    }
    held.add(res);
    res.on('close', () => held.delete(res));
  }, { streaming: true });
  // undici opens a fresh spare connection to the target after each aborted one (its own
  // behaviour, also without Portico): those spares are idle pool members, bounded by the pool
  // size and the concurrency, and closed by the pool's idle timeout, kept short here so the test
  // can see every socket go away.
  const p = await startPorticoOr(backend, proxyAll([backend.url], { upstreams: { app: { targets: [backend.url], keepalive: { idle_timeout: '500ms' } } } }));
  const handlesBefore = tcpHandles();
  try {
    const TOTAL = 1_000;
    const WAVE = 50;
    for (let start = 0; start < TOTAL; start += WAVE) {
      const before = arrivals;
      const sockets = await Promise.all(Array.from({ length: WAVE }, (_, i) => rawGet(p.port, (start + i) % 2 === 0 ? '/head' : '/body')));
      // Abort only once every request of the wave reached the backend, so each one is truly in flight.
      await until(() => arrivals - before === WAVE, 10_000, 'the wave to reach the backend');
      for (const s of sockets) s.destroy();
    }
    assert.equal(arrivals, TOTAL);
    // Right after the last wave: nothing in flight, and no more connections than one wave needs.
    await until(() => held.size === 0, 5_000, 'the backend to see every request closed');
    const stats = [...p.portico.plan.targets.values()][0]!.pool.stats;
    assert.equal(stats.running, 0);
    assert.ok((await connections(backend)) <= WAVE + 2, `backend has ${await connections(backend)} connections open after ${TOTAL} aborts`);
    let state = '';
    await until(async () => {
      const open = await connections(backend);
      state = `held ${held.size}, backend connections ${open}, upstream sockets ${upstreamSockets(p)}`;
      return held.size === 0 && open <= 2 && upstreamSockets(p) <= 2;
    }, 10_000, 'connections to close after the aborts').catch((err: Error) => { throw new Error(`${err.message}: ${state}`); });
    // And nothing is left in this process either (client, Portico and backend sockets all live here).
    await until(() => tcpHandles() <= handlesBefore + 2, 5_000, `TCP handles to return (before ${handlesBefore}, now ${tcpHandles()})`);
    // Portico still serves normally afterwards.
    const r = await http(`${p.url}/ok`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
  } finally { await p.close(); await backend.close(); }
});

/**
 * A backend that closes a keep-alive connection when the second request arrives on it, before
 * answering: exactly what Portico sees when it reuses a connection the target just closed.
 */
async function closingBackend(): Promise<{ backend: Backend; attempts: string[] }> {
  const perSocket = new WeakMap<object, number>();
  const attempts: string[] = [];
  const backend = await startBackend((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    attempts.push(`${req.method} ${req.url} #${n}`);
    if (n >= 2) { req.socket.destroy(); return; }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${req.method} ${req.url} ok`);
  });
  return { backend, attempts };
}

test('a GET on a reused connection the backend closed is retried once, transparently', async () => {
  const { backend, attempts } = await closingBackend();
  const p = await startPorticoOr(backend, proxyAll([backend.url], { upstreams: { app: { targets: [backend.url], keepalive: { connections: 1 } } } }));
  try {
    const first = await http(`${p.url}/one`);
    assert.equal(first.status, 200);
    const second = await http(`${p.url}/two`);
    assert.equal(second.status, 200, 'the stale-connection failure reached the client');
    assert.equal(second.body, 'GET /two ok');
    assert.deepEqual(attempts, ['GET /one #1', 'GET /two #2', 'GET /two #1']);
  } finally { await p.close(); await backend.close(); }
});

test('a POST with a body on a reused connection the backend closed is not replayed (502)', async () => {
  const { backend, attempts } = await closingBackend();
  const p = await startPorticoOr(backend, proxyAll([backend.url], { upstreams: { app: { targets: [backend.url], keepalive: { connections: 1 } } } }));
  try {
    assert.equal((await http(`${p.url}/one`)).status, 200);
    const r = await http(`${p.url}/submit`, { method: 'POST', body: 'order=1', headers: { 'content-type': 'text/plain', accept: 'application/json' } });
    assert.equal(r.status, 502);
    assert.doesNotMatch(r.body, /127\.0\.0\.1|ECONNRESET|UND_ERR|socket/i, 'the error page leaks backend detail');
    assert.deepEqual(attempts, ['GET /one #1', 'POST /submit #2']);
  } finally { await p.close(); await backend.close(); }
});
