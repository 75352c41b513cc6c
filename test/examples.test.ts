// The shipped examples: every examples/*.yaml passes `portico validate`, and `npm run demo`
// really serves /api, /app and a WebSocket round trip (started as a child process, as a user
// would, on free ports).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = new URL('../../examples/', import.meta.url);
const run = promisify(execFile);

const yamlFiles = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();

test('there are examples to check', () => {
  for (const f of ['demo.yaml', 'fastapi.yaml', 'multi-site.yaml']) assert.ok(yamlFiles.includes(f), `examples/${f} is missing`);
});

for (const file of yamlFiles) {
  test(`examples/${file} passes portico validate`, async () => {
    const { stdout } = await run(process.execPath, ['bin/portico.js', 'validate', '--config', `examples/${file}`], { cwd: ROOT })
      .catch((err: { stdout: string; stderr: string; code: number }) => {
        assert.fail(`portico validate exited ${err.code}:\n${err.stderr}${err.stdout}`);
      });
    assert.equal(stdout.trim(), 'ok');
  });

  test(`examples/${file} points editors at the JSON Schema`, () => {
    const first = readFileSync(new URL(file, EXAMPLES), 'utf8').split('\n')[0];
    assert.equal(first, '# yaml-language-server: $schema=../schema/portico.schema.json');
  });
}

// --- the demo -----------------------------------------------------------------------------------

let demo: ChildProcess | undefined;
after(() => { if (demo && demo.exitCode === null) demo.kill('SIGKILL'); });

/** Starts dist/examples/demo.js on free ports and resolves with Portico's port once it is ready. */
async function startDemo(): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const child = spawn(process.execPath, ['dist/examples/demo.js'], {
    cwd: ROOT,
    env: { ...process.env, PORTICO_DEMO_PORT: '0', DEMO_API_PORT: '0', DEMO_APP_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo = child;
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start within 15 s:\n${out}`)), 15_000);
    const check = () => {
      const m = /Portico\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m && out.includes('Press Ctrl-C')) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`demo exited with ${code}:\n${out}`)); });
  });
  return { child, port, output: () => out };
}

test('npm run demo serves /api, /app and a WebSocket round trip, and stops on SIGINT', async () => {
  const { child, port, output } = await startDemo();
  const base = `http://127.0.0.1:${port}`;

  // /api: routed to the JSON service with the prefix stripped; the backend's Server header hidden.
  const users = await fetch(`${base}/api/users`);
  assert.equal(users.status, 200);
  assert.match(users.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(users.headers.get('server'), null);
  assert.equal(users.headers.get('x-powered-by'), null);
  const list = await users.json() as { name: string }[];
  assert.ok(list.some((u) => u.name === 'Ada Lovelace'));

  const whoami = await (await fetch(`${base}/api/whoami`)).json() as Record<string, string>;
  assert.equal(whoami['path'], '/whoami');
  assert.equal(whoami['x-real-ip'], '127.0.0.1');
  assert.equal(whoami['x-forwarded-proto'], 'http');

  const echo = await fetch(`${base}/api/echo`, { method: 'POST', body: '{"hello":"portico"}', headers: { 'content-type': 'application/json' } });
  assert.deepEqual((await echo.json() as { received: unknown }).received, { hello: 'portico' });

  // /app: the HTML page that opens the WebSocket.
  const page = await fetch(`${base}/app/`);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<title>Portico demo app<\/title>/);
  assert.match(html, /new WebSocket/);

  // The redirect, the fixed response and Portico's own 404.
  const home = await fetch(`${base}/`, { redirect: 'manual' });
  assert.equal(home.status, 302);
  assert.equal(home.headers.get('location'), '/app/');
  assert.equal(await (await fetch(`${base}/healthz`)).text(), 'ok\n');
  assert.equal((await fetch(`${base}/nothing-here`)).status, 404);

  // A WebSocket round trip through Portico to the app's echo server.
  const ws = new WebSocket(`ws://127.0.0.1:${port}/app/ws`);
  const messages: string[] = [];
  const echoed = new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      messages.push(data.toString());
      if (messages.length === 1) ws.send('hello through portico');
      if (messages.length === 2) resolve();
    });
    ws.on('error', reject);
  });
  await echoed;
  assert.match(messages[0]!, /connected/);
  assert.equal(messages[1], 'echo: hello through portico');
  ws.close();
  await once(ws, 'close');

  // Ctrl-C: a clean stop, exit 0, within a few seconds.
  const exited = once(child, 'exit');
  child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const [code] = await Promise.race([
    exited,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`demo did not stop within 10 s:\n${output()}`)), 10_000); }),
  ]);
  clearTimeout(timer);
  assert.equal(code, 0, output());
  assert.match(output(), /stopped/);
  // The access log (combined format, stdout; written asynchronously, flushed at the latest on stop).
  assert.match(output(), /"GET \/api\/users HTTP\/1\.1" 200 /);
});

// --- the README's quick start -------------------------------------------------------------------

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}:\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port} after 15 s:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('README quick start: portico proxy --from … --to … replaces the nginx block', async () => {
  const { createServer } = await import('node:http');
  const { WebSocketServer } = await import('ws');
  // A stand-in for the FastAPI app: echoes what it received, with uvicorn's Server header.
  const backend = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', server: 'uvicorn' });
    res.end(JSON.stringify({ url: req.url, host: req.headers.host, realIp: req.headers['x-real-ip'], xff: req.headers['x-forwarded-for'] }));
  });
  const wss = new WebSocketServer({ server: backend, path: '/ws' });
  wss.on('connection', (s) => s.on('message', (d) => s.send(`echo: ${d.toString()}`)));
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const backendPort = (backend.address() as { port: number }).port;
  const port = await freePort();
  const child = spawn(process.execPath, ['bin/portico.js', 'proxy', '--from', `127.0.0.1:${port}`, '--to', `http://127.0.0.1:${backendPort}`, '--access-log', 'off'], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { log += d; });
  try {
    // The error log is written in batches, so readiness is seen by connecting, not by reading it.
    await waitForPort(port, child, () => log);
    // proxy_set_header Host $host; X-Real-IP $remote_addr — and the backend's Server header hidden.
    // (node:http, because fetch does not let a caller set Host.)
    const { request } = await import('node:http');
    const req = request({ host: '127.0.0.1', port, path: '/items/1?q=x', headers: { host: 'app.example.com' }, agent: false });
    req.end();
    const [res] = await once(req, 'response') as [import('node:http').IncomingMessage];
    let body = '';
    for await (const chunk of res) body += String(chunk);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['server'], undefined);
    const seen = JSON.parse(body) as Record<string, string>;
    assert.deepEqual(seen, { url: '/items/1?q=x', host: 'app.example.com', realIp: '127.0.0.1', xff: '127.0.0.1' });
    // Upgrade/Connection "upgrade": WebSockets pass.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await once(ws, 'open');
    ws.send('hi');
    const [reply] = await once(ws, 'message') as [Buffer];
    assert.equal(reply.toString(), 'echo: hi');
    ws.close();
    await once(ws, 'close');
  } finally {
    const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve([child.exitCode]);
    child.kill('SIGTERM');
    const [code] = await exited as [number | null];
    wss.close();
    backend.closeAllConnections();
    backend.close();
    assert.equal(code, 0, log);
  }
});
