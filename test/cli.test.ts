// The `portico` command line as an operator uses it: validate, help and version, quick proxy
// mode (the nginx snippet of issue 2 in one command), exit codes, and graceful SIGTERM.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { startBackend, http, sleep, type Backend } from './helpers.js';
import { ROOT, runCli, runCliToEnd, startCliPortico, tempDir, writeText, type CliProcess } from './helpers-process.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const tmp = tempDir();
after(() => tmp.cleanup());

/** Starts `portico proxy …` and returns it with the port from its "portico started" line. */
async function startProxy(args: string[]): Promise<{ p: CliProcess; url: string }> {
  const p = runCli(['proxy', '--from', '127.0.0.1:0', ...args]);
  const line = await p.waitForLine(/portico started/, 15_000);
  const port = Number(/"listen":\["[^"]*:(\d+)"/.exec(line)![1]);
  return { p, url: `http://127.0.0.1:${port}` };
}

async function stop(p: CliProcess): Promise<number | string> {
  p.signal('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 5_000);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

test('validate: a good file prints "ok" and exits 0', async () => {
  const file = writeText(tmp.file('good.yaml'), `server:
  listen: ["127.0.0.1:8080"]
upstreams:
  api:
    targets: ["http://127.0.0.1:8000"]
routes:
  - name: api
    match: { host: "example.com", path: "/api" }
    strip_prefix: true
    upstream: api
  - match: { path: "/old" }
    redirect: { to: "/new", status: 308 }
  - match: { path: "/healthz" }
    respond: { status: 200, body: "ok" }
log:
  access: { format: json, path: stdout }
`);
  const r = await runCliToEnd(['validate', '--config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');
});

test('validate: a bad file exits 1 and names file:line:column and key for every error', async () => {
  const file = writeText(tmp.file('bad.yaml'), `server:
  listen: ["127.0.0.1:8080"]
  timeouts: { header: "ten seconds" }
upstreams:
  api:
    targets: ["http://127.0.0.1:8000"]
routes:
  - match: { path: "/api" }
    upstream: apj
  - match: { path: "/x" }
    respnd: { status: 200 }
`);
  const r = await runCliToEnd(['validate', '--config', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  const has = (re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `no line matching ${re} in:\n${r.stderr}`);
  const f = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  has(new RegExp(`^${f}:3:\\d+: server\\.timeouts\\.header: .*duration`));
  has(new RegExp(`^${f}:11:\\d+: routes\\[1\\]\\.respnd: `));
  // Cross-reference checks (run once the shapes are valid) name the line too.
  const ref = writeText(tmp.file('ref.yaml'), `upstreams:
  api:
    targets: ["http://127.0.0.1:8000"]
routes:
  - match: { path: "/api" }
    upstream: apj
`);
  const rr = await runCliToEnd(['validate', '--config', ref]);
  assert.equal(rr.code, 1);
  assert.match(rr.stderr, new RegExp(`^${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+: routes\\[0\\]\\.upstream: no upstream named "apj" \\(known: api\\)`, 'm'));
  // A missing file and a YAML syntax error are errors too, not crashes.
  const missing = await runCliToEnd(['validate', '--config', tmp.file('nope.yaml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.yaml: .*cannot read the file: ENOENT/);
  const syntax = await runCliToEnd(['validate', '--config', writeText(tmp.file('syntax.yaml'), 'routes:\n  - match: {path: "/a"\n')]);
  assert.equal(syntax.code, 1);
  assert.match(syntax.stderr, /syntax\.yaml:\d+:\d+: .*YAML syntax/);
  assert.doesNotMatch(syntax.stderr, /\n\s+at /, 'a stack trace was printed');
});

test('--version and --help of each command', async () => {
  const v = await runCliToEnd(['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), VERSION);
  const main = await runCliToEnd(['--help']);
  assert.equal(main.code, 0);
  for (const cmd of ['run', 'proxy', 'validate', 'schema']) assert.match(main.stdout, new RegExp(`portico ${cmd === 'run' ? '\\[run\\]' : cmd}`));
  assert.match(main.stdout, /Exit codes/);
  for (const [cmd, must] of [['run', /--config/], ['proxy', /--from[\s\S]*--to/], ['validate', /--config/], ['schema', /JSON Schema/]] as const) {
    const r = await runCliToEnd([cmd, '--help']);
    assert.equal(r.code, 0, `${cmd} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: portico ${cmd}`), `${cmd} --help printed:\n${r.stdout.slice(0, 300)}`);
    assert.match(r.stdout, must);
  }
});

test('an unknown command or option exits 1 with a message', async () => {
  const r = await runCliToEnd(['frobnicate']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  const o = await runCliToEnd(['validate', '--bogus']);
  assert.equal(o.code, 1);
  assert.match(o.stderr, /--bogus/);
  const missing = await runCliToEnd(['proxy', '--from', '127.0.0.1:0']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /--to/);
  const badTarget = await runCliToEnd(['proxy', '--from', '127.0.0.1:0', '--to', 'ftp://x']);
  assert.equal(badTarget.code, 1);
  assert.doesNotMatch(badTarget.stderr, /\n\s+at /, 'a stack trace was printed');
});

test('proxy --from --to: Host preserved, X-Real-IP and X-Forwarded-* set, WebSocket works', async () => {
  const backend = await startBackend();
  const wss = new WebSocketServer({ server: backend.server, handleProtocols: (p) => [...p][0] ?? false });
  wss.on('connection', (ws, req: IncomingMessage) => {
    ws.send(`host=${req.headers.host}`);
    ws.on('message', (d: RawData) => ws.send(d));
  });
  const { p, url } = await startProxy(['--to', backend.url]);
  try {
    const r = await http(`${url}/items?q=1`, { headers: { host: 'app.example.com', 'x-real-ip': '6.6.6.6', 'x-forwarded-for': '6.6.6.6' } });
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body);
    assert.equal(echo.url, '/items?q=1');
    assert.equal(echo.headers.host, 'app.example.com');
    // Spoofed values from an untrusted client are replaced, as nginx's $remote_addr would be.
    assert.equal(echo.headers['x-real-ip'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-proto'], 'http');
    assert.equal(echo.headers['x-forwarded-host'], 'app.example.com');

    const ws = new WebSocket(`${url.replace('http:', 'ws:')}/socket`, ['chat'], { headers: { host: 'app.example.com' } });
    const first = new Promise<string>((resolve) => ws.once('message', (d: RawData) => resolve(d.toString())));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    assert.equal(ws.protocol, 'chat');
    assert.equal(await first, 'host=app.example.com');
    const reply = new Promise<string>((resolve) => ws.once('message', (d: RawData) => resolve(d.toString())));
    ws.send('over the tunnel');
    assert.equal(await reply, 'over the tunnel');
    ws.close();
    // The access log (JSON on stdout by default) has a line for the request.
    await p.waitForLine(/"uri":"\/items\?q=1".*"status":200/, 5_000, 'stdout');
  } finally {
    assert.equal(await stop(p), 0);
    wss.close();
    await backend.close();
  }
});

test('proxy with several --to spreads requests over the targets', async () => {
  const backends: Backend[] = [];
  for (let i = 0; i < 3; i++) backends.push(await startBackend((_req, res) => res.end(String(i))));
  const { p, url } = await startProxy([...backends.flatMap((b) => ['--to', b.url]), '--access-log', 'off']);
  try {
    const counts = [0, 0, 0];
    for (let i = 0; i < 30; i++) counts[Number((await http(`${url}/`)).body)]!++;
    for (const [i, n] of counts.entries()) assert.ok(n > 0, `target ${i} got no requests: ${counts.join(',')}`);
    assert.equal(p.stdout(), '', 'access log written although --access-log off');
  } finally {
    await stop(p);
    for (const b of backends) await b.close();
  }
});

test('an address in use exits 2 with a clear message', async () => {
  const holder = createServer();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const port = (holder.address() as AddressInfo).port;
  try {
    const r = await runCliToEnd(['proxy', '--from', `127.0.0.1:${port}`, '--to', 'http://127.0.0.1:9']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*already in use`));
    const yaml = writeText(tmp.file('inuse.yaml'), `server:\n  listen: ["127.0.0.1:${port}"]\n`);
    const run = await runCliToEnd(['run', '--config', yaml]);
    assert.equal(run.code, 2);
  } finally { holder.close(); }
});

test('SIGTERM lets an in-flight slow request complete, then exits 0', async () => {
  const backend = await startBackend((_req, res) => { setTimeout(() => res.end('slow done'), 1_000); });
  const { p, url } = await startProxy(['--to', backend.url, '--access-log', 'off']);
  try {
    const slow = new Promise<{ status: number; body: string }>((resolve, reject) => {
      httpRequest(`${url}/slow`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (s: string) => { body += s; }).on('end', () => resolve({ status: res.statusCode!, body }));
      }).on('error', reject).end();
    });
    await sleep(300);
    const t0 = performance.now();
    p.signal('SIGTERM');
    await sleep(100);
    // No new connections once stopping.
    await assert.rejects(http(`${url}/new`), 'a new request was accepted after SIGTERM');
    const r = await slow;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'slow done');
    const code = await Promise.race([p.exited, sleep(5_000).then(() => 'still running')]);
    assert.equal(code, 0);
    assert.ok(performance.now() - t0 >= 500, 'exited before the in-flight request could finish');
  } finally {
    await p.kill();
    await backend.close();
  }
});

test('SIGTERM with an open WebSocket: the tunnel runs until the shutdown grace ends, then the process exits 0', async () => {
  const backend = await startBackend();
  const wss = new WebSocketServer({ server: backend.server });
  wss.on('connection', (ws) => ws.on('message', (d: RawData) => ws.send(d)));
  const p = await startCliPortico(`server:
  listen: ["127.0.0.1:0"]
  timeouts: { shutdown: 1s }
upstreams:
  app: { targets: ["${backend.url}"] }
routes:
  - match: {}
    upstream: app
log:
  access: { enabled: false }
`);
  try {
    const ws = new WebSocket(`${p.url.replace('http:', 'ws:')}/ws`);
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const wsClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    const t0 = performance.now();
    p.signal('SIGTERM');
    await sleep(300);
    // Still usable during the grace period.
    const echo = new Promise<string>((resolve) => ws.once('message', (d: RawData) => resolve(d.toString())));
    ws.send('still here');
    assert.equal(await echo, 'still here');
    const code = await Promise.race([p.exited, sleep(5_000).then(() => 'still running')]);
    assert.equal(code, 0);
    await Promise.race([wsClosed, sleep(2_000)]);
    assert.equal(ws.readyState, WebSocket.CLOSED);
    const ms = performance.now() - t0;
    assert.ok(ms >= 900 && ms < 4_000, `exited after ${ms.toFixed(0)} ms (grace 1 s)`);
  } finally {
    await p.kill();
    wss.close();
    await backend.close();
  }
});
