// `portico proxy --from HOST --to TARGET` (HTTPS quick mode), as a real process: a bare host name
// gets HTTPS with an automatic certificate and a redirect from plain HTTP; "localhost" uses the
// local CA (and prints how to trust it); a host:port stays plain HTTP.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { connect as netConnect } from 'node:net';
import { freePort, startPebble, type Pebble } from './helpers-pebble.js';
import { startBackend, type Backend } from './helpers.js';

const CLI = fileURLToPath(new URL('../src/cli/index.js', import.meta.url));
let dir: string;
let backend: Backend;
const children: ChildProcess[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portico-quick-'));
  backend = await startBackend();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) { c.kill('SIGKILL'); await once(c, 'exit'); }
  await backend?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Running { child: ChildProcess; output: () => string }

/**
 * Starts the CLI and waits until `port` accepts connections. (Not by reading the log: Portico's
 * error log is written in batches, so a line may only appear at exit.)
 */
async function startCli(args: string[], port: number): Promise<Running> {
  const child = spawn(process.execPath, [CLI, 'proxy', ...args], { env: { ...process.env, XDG_DATA_HOME: join(dir, 'xdg') }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`portico exited ${child.exitCode}:\n${out}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    assert.ok(Date.now() < deadline, `portico did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out };
}

async function stopCli(r: Running): Promise<void> {
  r.child.kill('SIGTERM');
  const [code] = await once(r.child, 'exit');
  assert.equal(code, 0);
}

function get(url: string, opts: { host?: string; ca?: string; servername?: string } = {}): Promise<{ status: number; body: string; location?: string | undefined }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, {
      agent: false, headers: opts.host ? { host: opts.host } : {},
      ...(opts.ca ? { ca: opts.ca } : {}), ...(opts.servername ? { servername: opts.servername } : {}),
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body, location: res.headers.location }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('--from localhost: HTTPS from the local CA, trust instructions printed, 80 -> 443 redirect', { timeout: 60_000 }, async () => {
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const storage = join(dir, 'ca');
  const r = await startCli(['--from', 'localhost', '--to', backend.url, '--http-port', String(httpPort), '--https-port', String(httpsPort), '--bind', '127.0.0.1', '--storage', storage, '--access-log', 'off'], httpsPort);
  try {
    assert.match(r.output(), /update-ca-certificates/);
    assert.match(r.output(), new RegExp(`${storage.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/ca\\.pem`));
    const ca = await readFile(join(storage, 'ca.pem'), 'utf8');
    const res = await get(`https://localhost:${httpsPort}/hi`, { ca });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).url, '/hi');
    const redirect = await get(`http://127.0.0.1:${httpPort}/a?b=c`, { host: 'localhost' });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.location, `https://localhost:${httpsPort}/a?b=c`);
    assert.doesNotMatch(r.output(), /PRIVATE KEY/);
  } finally {
    await stopCli(r);
  }
});

test('--from a public-style name: certificate from the ACME CA (Pebble), served on the HTTPS port', { timeout: 90_000 }, async () => {
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const pebble: Pebble = await startPebble({ httpPort });
  try {
    const r = await startCli(['--from', 'quick.portico.test', '--to', backend.url, '--http-port', String(httpPort), '--https-port', String(httpsPort),
      '--bind', '127.0.0.1', '--storage', join(dir, 'acme'), '--acme-directory', pebble.directory, '--acme-ca-bundle', pebble.caBundle, '--email', 'ops@portico.test', '--access-log', 'off'], httpsPort);
    try {
      // Until the certificate is obtained the handshake fails (nothing to serve for the name).
      const deadline = Date.now() + 60_000;
      let res: Awaited<ReturnType<typeof get>> | undefined;
      while (res === undefined) {
        res = await get(`https://127.0.0.1:${httpsPort}/q`, { host: 'quick.portico.test', servername: 'quick.portico.test', ca: pebble.issuerRoot }).catch(() => undefined);
        if (res === undefined) {
          assert.ok(Date.now() < deadline, `no certificate within 60 s:\n${r.output()}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      assert.equal(res.status, 200);
      assert.equal(JSON.parse(res.body).url, '/q');
    } finally {
      await stopCli(r);
    }
    // Every step was logged (the log is complete once the process has exited), no key material.
    for (const step of ['acme: order created', 'acme: challenge validated', 'acme: certificate obtained and installed']) assert.match(r.output(), new RegExp(step));
    assert.doesNotMatch(r.output(), /PRIVATE KEY/);
  } finally {
    await pebble.stop();
  }
});

test('--from host:port stays plain HTTP', { timeout: 30_000 }, async () => {
  const port = await freePort();
  const r = await startCli(['--from', `127.0.0.1:${port}`, '--to', backend.url, '--access-log', 'off'], port);
  try {
    const res = await get(`http://127.0.0.1:${port}/plain`);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).url, '/plain');
  } finally {
    await stopCli(r);
  }
});
