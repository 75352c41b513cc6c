// Overload protection (max_connections / max_pending) and draining (drain: true, or a target
// removed by a reload), for requests and WebSockets.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { startPortico, http, sleep, type RunningPortico } from './helpers.js';
import { runLoad, type NamedBackend, startNamedBackends } from './helpers-lb.js';
import { validateConfig, type Config, type ConfigInput } from '../src/index.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanup.reverse()) await c(); });

function backends(n: number): Promise<NamedBackend[]> {
  return startNamedBackends(n, cleanup);
}

function input(upstream: Record<string, unknown>): ConfigInput {
  return {
    server: { listen: ['127.0.0.1:0'] },
    upstreams: { app: upstream },
    routes: [{ name: 'app', match: {}, upstream: 'app' }],
    log: { access: { enabled: false }, error: { level: 'silent' } },
  } as unknown as ConfigInput;
}

function config(upstream: Record<string, unknown>): Config {
  return validateConfig(input(upstream));
}

async function start(upstream: Record<string, unknown>): Promise<RunningPortico> {
  const p = await startPortico(input(upstream));
  cleanup.push(() => p.close());
  return p;
}

test('max_connections + max_pending: the overflow gets 503 with Retry-After at once', async () => {
  const [a] = await backends(1);
  a!.delayMs = 400;
  let peak = 0;
  const timer = setInterval(() => { peak = Math.max(peak, a!.active); }, 5);
  const p = await start({ targets: [a!.url], limits: { max_connections: 2, max_pending: 1 } });
  const times: number[] = [];
  const t0 = performance.now();
  const r = await runLoad(`${p.url}/`, { total: 6, concurrency: 6, onProgress: () => { times.push(performance.now() - t0); } });
  clearInterval(timer);
  const ok = r.statuses.filter((s) => s === 200).length;
  const refused = r.statuses.filter((s) => s === 503).length;
  assert.equal(ok, 3, `statuses ${r.statuses}`);
  assert.equal(refused, 3);
  assert.ok(peak <= 2, `backend saw ${peak} at once`);
  // The refusals did not wait for a connection.
  assert.ok(times[2]! < 150, `third answer after ${times[2]} ms`);
  const one = await Promise.all([http(`${p.url}/`), http(`${p.url}/`), http(`${p.url}/`), http(`${p.url}/`)]);
  const full = one.find((x) => x.status === 503)!;
  assert.equal(full.headers['retry-after'], '1');
  assert.match(full.body, /503/);
});

test('limits: a full target is skipped for one with room; 503 only when all are full', async () => {
  const bs = await backends(2);
  for (const b of bs) b.delayMs = 300;
  const p = await start({ targets: bs.map((b) => b.url), balance: 'first', limits: { max_connections: 1, max_pending: 0 } });
  const r = await runLoad(`${p.url}/`, { total: 3, concurrency: 3 });
  assert.deepEqual(r.statuses.slice().sort(), [200, 200, 503]);
  assert.deepEqual(r.bodies.filter((b) => b.startsWith('b')).sort(), ['b0', 'b1']);
});

test('drain: true and removal by reload: no new requests, in-flight ones finish', async () => {
  const [a, b] = await backends(2);
  a!.delayMs = 400;
  for (const mode of ['drain', 'remove'] as const) {
    const p = await start({ targets: [a!.url, b!.url], balance: 'first' });
    const slow = http(`${p.url}/slow`);
    await sleep(50);
    assert.equal(a!.active, 1);
    const next = mode === 'drain' ? { targets: [{ url: a!.url, drain: true }, b!.url], balance: 'first' } : { targets: [b!.url], balance: 'first' };
    await p.portico.reload(config(next));
    if (mode === 'drain') {
      const t = p.portico.upstreams()[0]!.targets[0]!;
      assert.equal(t.state, 'draining');
      assert.equal(t.inflight, 1);
    }
    const hitsBefore = a!.hits;
    for (let i = 0; i < 10; i++) assert.equal((await http(`${p.url}/`)).body, 'b1');
    assert.equal(a!.hits, hitsBefore, 'the draining target got no new request');
    const done = await slow;
    assert.equal(done.status, 200);
    assert.equal(done.body, 'b0');
  }
});

async function startWsBackend(name: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_req, res) => { res.end(name); });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`${name}:${String(m)}`)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); wss.close(); server.closeAllConnections(); server.close(() => r()); });
  cleanup.push(close);
  return { url, close };
}

function wsEcho(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (m) => resolve(String(m)));
    ws.once('error', reject);
    ws.send(text);
  });
}

test('draining keeps open WebSockets; new ones go to the remaining target', async () => {
  const a = await startWsBackend('a');
  const b = await startWsBackend('b');
  const p = await start({ targets: [a.url, b.url], balance: 'first' });
  const ws = new WebSocket(`ws://127.0.0.1:${p.port}/ws`);
  await once(ws, 'open');
  assert.equal(await wsEcho(ws, 'one'), 'a:one');
  await p.portico.reload(config({ targets: [{ url: a.url, drain: true }, b.url], balance: 'first' }));
  assert.equal(await wsEcho(ws, 'two'), 'a:two');
  const drained = p.portico.upstreams()[0]!.targets[0]!;
  assert.equal(drained.state, 'draining');
  assert.equal(drained.tunnels, 1);
  const ws2 = new WebSocket(`ws://127.0.0.1:${p.port}/ws`);
  await once(ws2, 'open');
  assert.equal(await wsEcho(ws2, 'x'), 'b:x');
  // Removed from the config altogether: the tunnel still runs until it ends.
  await p.portico.reload(config({ targets: [b.url], balance: 'first' }));
  assert.equal(await wsEcho(ws, 'three'), 'a:three');
  ws.close();
  ws2.close();
  await once(ws, 'close');
});
