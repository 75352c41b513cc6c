// Reloads: SIGHUP to the CLI process swaps the config without dropping in-flight requests, open
// WebSockets or new connections; an invalid file is refused with file:line and the old config
// keeps serving. Also Portico.reload() through the programmatic API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { Agent, request } from 'undici';
import { startBackend, startPortico, proxyAll, http, sleep, type Backend } from './helpers.js';
import { startCliPortico, type CliPortico } from './helpers-process.js';
import { validateConfigObject } from '../src/index.js';

let backend: Backend;
let wss: WebSocketServer;
let portico: CliPortico;

/** A config whose /version route answers `version`; everything else goes to the backend. */
function config(version: string, extra = ''): string {
  return `server:
  listen: ["127.0.0.1:0"]
upstreams:
  app:
    targets: ["${backend.url}"]
routes:
  - name: version
    match: { path: /version }
    respond: { status: 200, body: "${version}" }
  - name: app
    match: {}
    upstream: app
${extra}log:
  access: { enabled: false }
`;
}

before(async () => {
  backend = await startBackend((req, res) => {
    const delay = req.url?.startsWith('/slow') ? 1_500 : 0;
    setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(`backend ${req.url}`); }, delay);
  });
  wss = new WebSocketServer({ server: backend.server });
  wss.on('connection', (ws) => ws.on('message', (d: RawData, bin: boolean) => ws.send(d, { binary: bin })));
  portico = await startCliPortico(config('one'));
});

after(async () => {
  await portico?.stop();
  for (const c of wss?.clients ?? []) c.terminate();
  wss?.close();
  await backend?.close();
});

function get(path: string): Promise<{ status: number; body: string }> {
  return http(`${portico.url}${path}`).then((r) => ({ status: r.status, body: r.body }));
}

test('SIGHUP: a changed route takes effect', async () => {
  assert.equal((await get('/version')).body, 'one');
  portico.writeConfig(config('two'));
  assert.match(await portico.reload(), /config reloaded/);
  assert.equal((await get('/version')).body, 'two');
  // A route added by the reload, and the port unchanged (the listener was kept).
  portico.writeConfig(config('three', `  - name: added
    match: { path: /added }
    respond: { status: 201, body: "new route" }
`));
  await portico.reload();
  const added = await get('/added');
  assert.equal(added.status, 201);
  assert.equal(added.body, 'new route');
  assert.equal((await get('/version')).body, 'three');
});

test('a slow request started before a reload completes normally', async () => {
  const slow = new Promise<{ status: number; body: string }>((resolve, reject) => {
    // A connection of its own, so nothing else on the keep-alive agent interferes.
    httpRequest(`${portico.url}/slow/1`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => { body += s; }).on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject).end();
  });
  await sleep(300); // the request is now at the backend
  portico.writeConfig(config('four'));
  assert.match(await portico.reload(), /config reloaded/);
  assert.equal((await get('/version')).body, 'four');
  const r = await slow;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'backend /slow/1');
});

test('an open WebSocket keeps working across a reload', async () => {
  const ws = new WebSocket(`${portico.url.replace('http:', 'ws:')}/ws`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const echo = (text: string) => new Promise<string>((resolve) => { ws.once('message', (d: RawData) => resolve(d.toString())); ws.send(text); });
  try {
    assert.equal(await echo('before'), 'before');
    portico.writeConfig(config('five'));
    assert.match(await portico.reload(), /config reloaded/);
    assert.equal(await echo('after'), 'after');
    assert.equal(ws.readyState, WebSocket.OPEN);
  } finally { ws.terminate(); }
});

test('an invalid config is refused with file:line and the old routes keep serving', async () => {
  portico.writeConfig(config('six'));
  await portico.reload();
  // Line 9 of the file: a key routes do not have.
  const bad = config('seven').replace('    match: { path: /version }\n', '    match: { path: /version }\n    bogus_key: 1\n');
  assert.equal(bad.split('\n')[8], '    bogus_key: 1');
  portico.writeConfig(bad);
  const line = await portico.reload();
  assert.match(line, /reload refused/);
  assert.match(line, new RegExp(`${portico.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:9:\\d+: routes\\[0\\]`), `no file:line:key in: ${line}`);
  assert.match(line, /bogus_key/);
  assert.equal((await get('/version')).body, 'six');
  assert.equal((await get('/other')).body, 'backend /other');
  // A file that is not even YAML is refused the same way.
  portico.writeConfig('server: [unclosed\n');
  assert.match(await portico.reload(), /reload refused/);
  assert.equal((await get('/version')).body, 'six');
  assert.equal(portico.child.exitCode, null, 'Portico exited on a bad config');
});

test('continuous requests during several reloads see no connection errors', async () => {
  let stop = false;
  let ok = 0;
  const errors: string[] = [];
  // Keep-alive connections (reused across the reloads) and fresh ones, side by side.
  const keepAlive = new Agent({ connections: 4 });
  const worker = async (fresh: boolean) => {
    while (!stop) {
      try {
        const dispatcher = fresh ? new Agent({ pipelining: 0 }) : keepAlive;
        const r = await request(`${portico.url}/busy`, { dispatcher, reset: fresh });
        const body = await r.body.text();
        if (r.statusCode !== 200 || body !== 'backend /busy') errors.push(`status ${r.statusCode}: ${body.slice(0, 80)}`);
        else ok++;
        if (fresh) await dispatcher.close();
      } catch (err) {
        errors.push(`${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`);
      }
    }
  };
  const workers = [worker(false), worker(false), worker(true), worker(true)];
  for (let i = 0; i < 6; i++) {
    await sleep(150);
    portico.writeConfig(config(`v${i}`));
    assert.match(await portico.reload(), /config reloaded/);
  }
  await sleep(150);
  stop = true;
  await Promise.all(workers);
  await keepAlive.close();
  assert.deepEqual(errors, []);
  assert.ok(ok > 50, `only ${ok} requests completed`);
  assert.equal((await get('/version')).body, 'v5');
});

test('Portico.reload() through the programmatic API', async () => {
  const p = await startPortico(proxyAll([backend.url], { routes: [{ match: { path: '/version' }, respond: { body: 'api one' } }, { match: {}, upstream: 'app' }] }));
  try {
    assert.equal((await http(`${p.url}/version`)).body, 'api one');
    await p.portico.reload(validateConfigObject({
      server: { listen: p.portico.plan.config.server.listen },
      upstreams: { app: { targets: [backend.url] } },
      routes: [{ match: { path: '/version' }, respond: { body: 'api two' } }, { match: {}, upstream: 'app' }],
      log: { access: { enabled: false }, error: { level: 'silent' } },
    }));
    assert.equal((await http(`${p.url}/version`)).body, 'api two');
    assert.equal((await http(`${p.url}/x`)).body, 'backend /x');
    // An invalid object is refused before anything changes.
    assert.throws(() => validateConfigObject({ routes: [{ match: {}, upstream: 'nope' }] }), /routes\[0\]\.upstream/);
    assert.equal((await http(`${p.url}/version`)).body, 'api two');
  } finally { await p.close(); }
});
