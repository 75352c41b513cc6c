// `npm run demo`: Portico with examples/demo.yaml in front of two small sample backends, so a
// newcomer can curl /api/… and /app/… and see routing, header handling and WebSockets work.
//
//   api  a JSON service (users, whoami, echo)              routed at /api (prefix stripped)
//   app  an HTML page that opens a WebSocket echo (ws)     routed at /app (prefix stripped)
//
// Ports come from examples/demo.yaml; PORTICO_DEMO_PORT, DEMO_API_PORT and DEMO_APP_PORT move
// them (0 picks a free port; the tests use that). Ctrl-C (or SIGTERM) stops everything.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { WebSocketServer } from 'ws';
import { createPortico, ConfigError, type ConfigInput, type Portico } from '../src/index.js';

const CONFIG_FILE = fileURLToPath(new URL('../../examples/demo.yaml', import.meta.url));

// --- the "api" backend: a small JSON service -------------------------------------------------

const USERS = [
  { id: 1, name: 'Ada Lovelace', role: 'admin' },
  { id: 2, name: 'Grace Hopper', role: 'editor' },
  { id: 3, name: 'Alan Turing', role: 'viewer' },
];

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  // Server and X-Powered-By are here on purpose: Portico removes them (server.headers.hide).
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), server: 'demo-api/1.0', 'x-powered-by': 'demo' });
  res.end(text);
}

function apiHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://api');
  const path = url.pathname;
  if (req.method === 'GET' && path === '/') {
    return json(res, 200, { service: 'demo api', endpoints: ['GET /users', 'GET /users/:id', 'GET /whoami', 'POST /echo'] });
  }
  if (req.method === 'GET' && path === '/users') return json(res, 200, USERS);
  const user = /^\/users\/(\d+)$/.exec(path);
  if (req.method === 'GET' && user) {
    const found = USERS.find((u) => u.id === Number(user[1]));
    return found ? json(res, 200, found) : json(res, 404, { error: `no user ${user[1]}` });
  }
  if (req.method === 'GET' && path === '/whoami') {
    // What arrived here through Portico: the path after strip_prefix and the forwarding headers.
    const h = req.headers;
    return json(res, 200, {
      path: req.url, host: h.host, 'x-forwarded-for': h['x-forwarded-for'], 'x-forwarded-proto': h['x-forwarded-proto'],
      'x-forwarded-host': h['x-forwarded-host'], 'x-real-ip': h['x-real-ip'], 'x-request-id': h['x-request-id'],
    });
  }
  if (req.method === 'POST' && path === '/echo') {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; if (size <= 1 << 20) chunks.push(c); });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try { body = JSON.parse(text); } catch { /* not JSON: echo the text */ }
      json(res, 200, { received: body, bytes: size, 'content-type': req.headers['content-type'] ?? null });
    });
    return;
  }
  json(res, 404, { error: `nothing at ${req.method} ${path}` });
}

// --- the "app" backend: an HTML page and a WebSocket echo ------------------------------------

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Portico demo app</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:3em auto;max-width:40em;color:#222}
#log{background:#f4f4f4;padding:1em;min-height:6em;white-space:pre-wrap;font-family:monospace}</style></head>
<body><h1>Portico demo app</h1>
<p>This page came from the <b>app</b> backend through Portico (route <code>/app</code>, prefix stripped).
Below, a WebSocket to <code>/app/ws</code> goes through Portico to the app's echo server.</p>
<form id="f"><input id="msg" value="hello, portico" size="30"> <button>Send</button></form>
<div id="log"></div>
<script>
  const log = (t) => { document.getElementById('log').textContent += t + '\\n'; };
  const base = location.pathname.replace(/\\/?$/, '/');
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + base + 'ws');
  ws.onopen = () => log('connected');
  ws.onmessage = (e) => log('< ' + e.data);
  ws.onclose = () => log('closed');
  document.getElementById('f').onsubmit = (e) => { e.preventDefault(); const m = document.getElementById('msg').value; log('> ' + m); ws.send(m); };
</script></body></html>
`;

function appHandler(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://app').pathname;
  if ((req.method === 'GET' || req.method === 'HEAD') && (path === '/' || path === '/index.html')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(PAGE) });
    res.end(req.method === 'HEAD' ? undefined : PAGE);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end(`the demo app has no ${path}\n`);
}

function attachEcho(server: Server): WebSocketServer {
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (socket) => {
    socket.send('connected to the demo app: send something and it comes back');
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : `echo: ${data.toString()}`, { binary: isBinary }));
  });
  return wss;
}

// --- wiring -------------------------------------------------------------------------------------

function portOf(url: string): number {
  return Number(new URL(url).port);
}

function envPort(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`demo: ${name}=${v} is not a port number`);
    process.exit(1);
  }
  return n;
}

async function listen(server: Server, port: number, what: string): Promise<number> {
  server.listen(port, '127.0.0.1');
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => { throw err; })]);
  } catch (err) {
    const hint = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ` (in use; set ${what}=<another port> or 0)` : '';
    console.error(`demo: cannot listen on 127.0.0.1:${port}${hint}: ${(err as Error).message}`);
    process.exit(2);
  }
  return (server.address() as AddressInfo).port;
}

function firstTarget(config: ConfigInput, name: string): string {
  const target = config.upstreams?.[name]?.targets[0];
  const url = typeof target === 'string' ? target : target?.url;
  if (!url) throw new Error(`examples/demo.yaml has no upstream "${name}"`);
  return url;
}

async function main(): Promise<void> {
  const config = parseYaml(readFileSync(CONFIG_FILE, 'utf8')) as ConfigInput;
  const listenAddr = config.server?.listen?.[0] ?? '127.0.0.1:8080';
  const proxyPort = envPort('PORTICO_DEMO_PORT', Number(listenAddr.slice(listenAddr.lastIndexOf(':') + 1)));

  const api = createServer(apiHandler);
  const app = createServer(appHandler);
  const wss = attachEcho(app);
  const apiPort = await listen(api, envPort('DEMO_API_PORT', portOf(firstTarget(config, 'api'))), 'DEMO_API_PORT');
  const appPort = await listen(app, envPort('DEMO_APP_PORT', portOf(firstTarget(config, 'app'))), 'DEMO_APP_PORT');

  // The file as written, with only the ports moved.
  config.server = { ...config.server, listen: [`127.0.0.1:${proxyPort}`] };
  config.upstreams!['api']!.targets = [`http://127.0.0.1:${apiPort}`];
  config.upstreams!['app']!.targets = [`http://127.0.0.1:${appPort}`];

  let portico: Portico;
  try {
    portico = await createPortico(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`demo: examples/demo.yaml is invalid:\n${err.message}`);
      process.exit(1);
    }
    const hint = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ' (set PORTICO_DEMO_PORT=<another port>)' : '';
    console.error(`demo: cannot start Portico${hint}: ${(err as Error).message}`);
    process.exit(2);
  }
  const addr = portico.addresses[0]!;
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  const base = `http://localhost:${port}`;

  console.log(`
Portico demo is running (config: examples/demo.yaml)

  Portico  http://127.0.0.1:${port}
  api      http://127.0.0.1:${apiPort}   JSON service, routed at /api
  app      http://127.0.0.1:${appPort}   HTML page + WebSocket echo, routed at /app

Try:
  curl ${base}/api/users
  curl ${base}/api/users/2
  curl -i ${base}/api/whoami          # what the backend received; no Server/X-Powered-By back
  curl -d '{"hello":"portico"}' -H 'content-type: application/json' ${base}/api/echo
  curl ${base}/app/                   # or open it in a browser: a live WebSocket echo
  curl -i ${base}/                    # 302 to /app/
  curl ${base}/healthz                # answered by Portico itself
  curl -i ${base}/nothing             # Portico's 404 page (JSON with -H 'accept: application/json')

WebSocket round trip through Portico (Node 22+):
  node -e "const w=new WebSocket('ws://127.0.0.1:${port}/app/ws');w.onopen=()=>w.send('hello');w.onmessage=(e)=>{console.log(e.data);if(e.data.startsWith('echo'))w.close()}"
or just the handshake (101 Switching Protocols):
  curl -i -N -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' ${base}/app/ws

The access log follows (Portico writes it in batches). Press Ctrl-C to stop.
`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(0); // a second Ctrl-C: now
    stopping = true;
    console.log(`\n${signal}: stopping the demo`);
    for (const client of wss.clients) client.close(1001, 'demo stopping');
    // A short grace: the demo has nothing worth waiting 30 s for.
    await portico.close(2_000);
    wss.close();
    await Promise.all([api, app].map((s) => new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()); })));
    console.log('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error('demo:', err);
  process.exit(70);
});
