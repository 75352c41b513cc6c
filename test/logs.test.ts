// Logs: the access log line (JSON and combined) with every field issue 2 asks for, written to a
// file that is reopened on SIGUSR1 (logrotate), 499 for clients that leave early, and the error
// log's level filtering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import { WebSocketServer, WebSocket } from 'ws';
import { startBackend, startPortico, proxyAll, http, raw, sleep, type Backend } from './helpers.js';
import { startCliPortico, tempDir } from './helpers-process.js';

const tmp = tempDir();
let backend: Backend;

before(async () => {
  backend = await startBackend((req, res) => {
    if (req.url === '/app/slow') { setTimeout(() => res.end('late'), 1_500); return; }
    if (req.url === '/app/slow-body') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part ');
      setTimeout(() => res.end('late'), 1_500);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello');
  });
  new WebSocketServer({ server: backend.server }).on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
});
after(async () => { await backend?.close(); tmp.cleanup(); });

function yaml(accessPath: string, format: 'json' | 'combined', errorLevel = 'info'): string {
  return `server:
  listen: ["127.0.0.1:0"]
upstreams:
  app:
    targets: ["${backend.url}"]
routes:
  - name: fixed
    match: { exact_path: /fixed }
    respond: { status: 202, body: "fixed!" }
  - name: app
    match: { path: /app }
    upstream: app
log:
  access: { format: ${format}, path: "${accessPath}" }
  error: { level: ${errorLevel} }
`;
}

/** Lines of `file` (empty when it does not exist yet). */
function lines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

/** Waits for a line matching `re` in `file` (the access log is flushed at least once a second). */
async function lineIn(file: string, re: RegExp, ms = 4_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = lines(file).find((l) => re.test(l));
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no line matching ${re} in ${file}:\n${lines(file).join('\n')}`);
    await sleep(50);
  }
}

test('JSON access log: one line per request with every field', async () => {
  const file = tmp.file('access.json.log');
  const p = await startCliPortico(yaml(file, 'json'));
  try {
    const r = await http(`${p.url}/app/hello?x=1&y=%22q%22`, { headers: { 'user-agent': 'logs-test/1.0', referer: 'http://ref.example/', host: 'site.example' } });
    assert.equal(r.status, 200);
    await http(`${p.url}/fixed`);
    await http(`${p.url}/nowhere`);
    const proxied = JSON.parse(await lineIn(file, /\/app\/hello/));
    assert.match(proxied.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.ok(Math.abs(Date.parse(proxied.time) - Date.now()) < 60_000);
    assert.equal(proxied.client, '127.0.0.1');
    assert.equal(proxied.method, 'GET');
    assert.equal(proxied.uri, '/app/hello?x=1&y=%22q%22');
    assert.equal(proxied.status, 200);
    assert.equal(proxied.bytes, 5);
    assert.equal(typeof proxied.duration_ms, 'number');
    assert.ok(proxied.duration_ms >= 0 && proxied.duration_ms < 5_000);
    assert.equal(proxied.route, 'app');
    assert.equal(proxied.target, backend.url);
    assert.equal(typeof proxied.upstream_ms, 'number');
    assert.ok(proxied.upstream_ms >= 0 && proxied.upstream_ms <= proxied.duration_ms);
    assert.equal(proxied.user_agent, 'logs-test/1.0');
    assert.equal(proxied.referer, 'http://ref.example/');
    const fixed = JSON.parse(await lineIn(file, /"\/fixed"/));
    assert.equal(fixed.status, 202);
    assert.equal(fixed.bytes, 6);
    assert.equal(fixed.route, 'fixed');
    assert.equal(fixed.target, null);
    assert.equal(fixed.upstream_ms, null);
    const missing = JSON.parse(await lineIn(file, /"\/nowhere"/));
    assert.equal(missing.status, 404);
    assert.equal(missing.route, null);
    // Every line is valid JSON, one per request.
    assert.equal(lines(file).length, 3);
  } finally { await p.stop(); }
});

test('a WebSocket tunnel gets one access log line (101) when it closes', async () => {
  const file = tmp.file('ws.log');
  const p = await startCliPortico(yaml(file, 'json'));
  try {
    const ws = new WebSocket(`${p.url.replace('http:', 'ws:')}/app/socket`);
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const echoed = new Promise((resolve) => ws.once('message', resolve));
    ws.send('hi');
    await echoed;
    ws.close();
    await once(ws, 'close');
    const line = JSON.parse(await lineIn(file, /\/app\/socket/));
    assert.equal(line.status, 101);
    assert.equal(line.route, 'app');
    assert.equal(line.target, backend.url);
    assert.equal(lines(file).filter((l) => l.includes('/app/socket')).length, 1);
  } finally { await p.stop(); }
});

test('combined access log format', async () => {
  const file = tmp.file('access.combined.log');
  const p = await startCliPortico(yaml(file, 'combined'));
  try {
    await http(`${p.url}/app/x?y=1`, { headers: { 'user-agent': 'Agent "quoted"', referer: 'http://r/' } });
    const line = await lineIn(file, /\/app\/x/);
    assert.match(line, /^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET \/app\/x\?y=1 HTTP\/1\.1" 200 5 "http:\/\/r\/" "Agent \\x22quoted\\x22" /);
    assert.match(line, / rt=\d+\.\d{3} route=app target=http:\/\/127\.0\.0\.1:\d+ urt=\d+\.\d{3}$/);
  } finally { await p.stop(); }
});

test('SIGUSR1 reopens the access log file after logrotate renamed it', async () => {
  const file = tmp.file('rotate.log');
  const p = await startCliPortico(yaml(file, 'json'));
  try {
    await http(`${p.url}/app/first`);
    await lineIn(file, /\/app\/first/);
    renameSync(file, `${file}.1`);
    // Until the signal, lines still go to the renamed file (the open descriptor).
    await http(`${p.url}/app/second`);
    await lineIn(`${file}.1`, /\/app\/second/);
    p.signal('SIGUSR1');
    await sleep(300);
    await http(`${p.url}/app/third`);
    await lineIn(file, /\/app\/third/);
    assert.ok(!lines(`${file}.1`).some((l) => l.includes('/app/third')), 'the line went to the rotated file');
    assert.equal(lines(file).length, 1);
    assert.doesNotMatch(p.stderr(), /Debugger listening/, 'SIGUSR1 started the inspector');
    assert.equal(p.child.exitCode, null);
  } finally { await p.stop(); }
});

test('a client that leaves before the response is logged with status 499', async () => {
  const file = tmp.file('abort.log');
  const p = await startCliPortico(yaml(file, 'json'));
  try {
    const s = connect(p.port, '127.0.0.1');
    s.on('error', () => undefined);
    await once(s, 'connect');
    s.write('GET /app/slow HTTP/1.1\r\nHost: t\r\n\r\n');
    await sleep(300);
    s.destroy();
    const line = JSON.parse(await lineIn(file, /\/app\/slow/));
    assert.equal(line.status, 499);
    assert.equal(line.route, 'app');
    assert.equal(line.bytes, 0);
    // Also a client that leaves mid-body (the head was already sent as 200).
    const partial = new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${p.url}/app/slow-body`, { agent: false }, (res) => {
        // The head and the first bytes are here: leave.
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', () => undefined);
      req.end();
      setTimeout(() => reject(new Error('no response head')), 1_000);
    });
    await partial;
    const l2 = JSON.parse(await lineIn(file, /\/app\/slow-body/));
    assert.equal(l2.status, 499);
    assert.equal(l2.bytes, 5);
  } finally { await p.stop(); }
});

test('the error log writes only lines at or above its level', async () => {
  // A target nobody listens on: each request logs a warning ("upstream request failed").
  const dead = 'http://127.0.0.1:9';
  const levels = { error: false, warn: true, info: true, debug: true } as const;
  for (const [level, expectWarn] of Object.entries(levels)) {
    const errFile = tmp.file(`error-${level}.log`);
    const p = await startPortico(proxyAll([dead], { log: { access: { enabled: false }, error: { level: level as 'warn', path: errFile } } }));
    try {
      assert.equal((await http(`${p.url}/x`)).status, 502);
      // A malformed request is a debug line.
      await raw(p.port, 'GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n', 100);
    } finally { await p.close(); }
    await sleep(50);
    const got = lines(errFile).map((l) => JSON.parse(l) as { level: number; msg: string });
    const warn = got.some((l) => /upstream request failed/.test(l.msg));
    assert.equal(warn, expectWarn, `level ${level}: warning ${warn ? 'present' : 'absent'}:\n${lines(errFile).join('\n')}`);
    assert.equal(got.some((l) => /malformed request/.test(l.msg)), level === 'debug', `level ${level}: debug line`);
    assert.equal(got.some((l) => /portico started/.test(l.msg)), level === 'info' || level === 'debug', `level ${level}: info line`);
    const min = { error: 50, warn: 40, info: 30, debug: 20 }[level as 'warn'];
    for (const l of got) assert.ok(l.level >= min, `level ${level}: got a line at level ${l.level}`);
  }
});
