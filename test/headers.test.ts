// RFC 9110 §7.6 header handling across the proxy hop, both directions, and the forwarding family
// (X-Forwarded-*, X-Real-IP, Via, Forwarded), Host modes, request ids and hidden backend headers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, startPortico, http, type Backend, type RunningPortico } from './helpers.js';
import { rawExchange, statusesOf } from './helpers-core.js';
import type { ConfigInput } from '../src/index.js';

let echo: Backend;
/** A backend that answers with hop-by-hop headers of its own. */
let hoppy: Backend;
const running: RunningPortico[] = [];
/** Portico with default settings in front of the echo backend. */
let plain: RunningPortico;

before(async () => {
  echo = await startBackend((req, res) => {
    const body = JSON.stringify({ url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), server: 'uvicorn', 'x-powered-by': 'FastAPI', 'x-custom': 'c' });
    res.end(body);
  });
  hoppy = await startBackend((_req, res) => {
    res.setHeader('Connection', 'keep-alive, X-Backend-Secret');
    res.setHeader('Keep-Alive', 'timeout=999, max=999');
    res.setHeader('X-Backend-Secret', 'hidden');
    res.setHeader('Proxy-Authenticate', 'Basic realm="inner"');
    res.setHeader('Proxy-Connection', 'keep-alive');
    res.setHeader('Upgrade', 'h2c');
    res.setHeader('X-End-To-End', 'kept');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hop');
  });
  plain = await portico();
});

after(async () => {
  for (const p of running) await p.close();
  await echo.close();
  await hoppy.close();
});

async function portico(extra: Partial<ConfigInput> = {}, upstream: Record<string, unknown> = {}, target = echo.url): Promise<RunningPortico> {
  const p = await startPortico({
    upstreams: { app: { targets: [target], ...upstream } },
    routes: [{ match: {}, upstream: 'app' }],
    ...extra,
  } as ConfigInput);
  running.push(p);
  return p;
}

/** Sends a raw request (headers exactly as given) and returns what the echo backend saw. */
async function seenBy(p: RunningPortico, headerLines: string[], path = '/'): Promise<{ headers: Record<string, string>; reply: string }> {
  const r = await rawExchange(p.port, `GET ${path} HTTP/1.1\r\n${headerLines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`);
  assert.deepEqual(statusesOf(r.data), [200], r.data);
  const body = r.data.slice(r.data.indexOf('\r\n\r\n') + 4);
  return { headers: (JSON.parse(body) as { headers: Record<string, string> }).headers, reply: r.data };
}


test('request hop-by-hop headers and those named in Connection are removed; TE: trailers passes', async () => {
  const r = await rawExchange(plain.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop, x-other-hop\r\n' +
    'Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n' +
    'X-Hop: 1\r\nX-Other-Hop: 2\r\nX-End-To-End: 3\r\n\r\n');
  const seen = (JSON.parse(r.data.slice(r.data.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> }).headers;
  for (const h of ['keep-alive', 'proxy-connection', 'proxy-authorization', 'x-hop', 'x-other-hop', 'upgrade']) {
    assert.equal(seen[h], undefined, `${h} must not be forwarded`);
  }
  assert.notEqual(seen['connection'], 'keep-alive, X-Hop, x-other-hop');
  assert.equal(seen['te'], 'trailers');
  assert.equal(seen['x-end-to-end'], '3');
});

test('TE other than trailers is dropped', async () => {
  const { headers } = await seenBy(plain, ['Host: a', 'TE: gzip, trailers']);
  assert.equal(headers['te'], undefined);
});

test('a chunked request body is re-framed, not passed with the client\'s Transfer-Encoding', async () => {
  const r = await rawExchange(plain.port, 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  assert.deepEqual(statusesOf(r.data), [200]);
  assert.equal(echo.seen.at(-1)!.body, 'abc');
});

test('response hop-by-hop headers and those named in Connection are removed', async () => {
  const p = await portico({}, {}, hoppy.url);
  const r = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.deepEqual(statusesOf(r.data), [200]);
  const head = r.data.slice(0, r.data.indexOf('\r\n\r\n')).toLowerCase();
  assert.doesNotMatch(head, /x-backend-secret/);
  assert.doesNotMatch(head, /proxy-authenticate/);
  assert.doesNotMatch(head, /proxy-connection/);
  assert.doesNotMatch(head, /\r\nupgrade:/);
  assert.doesNotMatch(head, /timeout=999/);
  assert.match(head, /\r\nx-end-to-end: kept/);
});

test('untrusted peer: X-Forwarded-*, X-Real-IP and Forwarded are replaced, not extended', async () => {
  const { headers } = await seenBy(plain, ['Host: shop.example:8080', 'X-Forwarded-For: 1.2.3.4', 'X-Real-IP: 6.6.6.6',
    'X-Forwarded-Proto: https', 'X-Forwarded-Host: evil.example', 'Forwarded: for=1.2.3.4', 'Via: 1.1 evil']);
  assert.equal(headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(headers['x-real-ip'], '127.0.0.1');
  assert.equal(headers['x-forwarded-proto'], 'http');
  assert.equal(headers['x-forwarded-host'], 'shop.example:8080');
  assert.equal(headers['forwarded'], undefined, 'Forwarded is off by default and the client\'s is dropped');
  assert.equal(headers['via'], undefined);
  assert.equal(headers['host'], 'shop.example:8080', 'Host is passed through by default');
});

test('trusted peer: the chain is kept, the peer appended, the client found right to left past trusted hops', async () => {
  const p = await portico({ server: { trusted_proxies: ['127.0.0.1', '10.0.0.0/8'] } });
  const { headers } = await seenBy(p, ['Host: a', 'X-Forwarded-For: 198.51.100.7, 203.0.113.9, 10.1.2.3',
    'X-Forwarded-Proto: https', 'X-Forwarded-Host: public.example']);
  assert.equal(headers['x-forwarded-for'], '198.51.100.7, 203.0.113.9, 10.1.2.3, 127.0.0.1');
  assert.equal(headers['x-real-ip'], '203.0.113.9', 'the first untrusted hop from the right');
  assert.equal(headers['x-forwarded-proto'], 'https');
  assert.equal(headers['x-forwarded-host'], 'public.example');

  const only = await portico({ server: { trusted_proxies: ['127.0.0.1'] } });
  const second = await seenBy(only, ['Host: a', 'X-Forwarded-For: 203.0.113.9, 10.1.2.3']);
  assert.equal(second.headers['x-real-ip'], '10.1.2.3', 'with only the peer trusted, the last hop is the client');
  const none = await seenBy(only, ['Host: a']);
  assert.equal(none.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(none.headers['x-real-ip'], '127.0.0.1');
});

test('Via and Forwarded when enabled', async () => {
  const p = await portico({ server: { headers: { via: true, forwarded: true } } });
  const { headers, reply } = await seenBy(p, ['Host: shop.example', 'Forwarded: for=6.6.6.6', 'Via: 1.0 evil']);
  assert.equal(headers['via'], '1.1 portico');
  assert.equal(headers['forwarded'], 'for=127.0.0.1;proto=http;host=shop.example');
  assert.match(reply.slice(0, reply.indexOf('\r\n\r\n')), /\r\nvia: 1\.1 portico/i, 'Via on the response too');

  const trusted = await portico({ server: { trusted_proxies: ['127.0.0.1'], headers: { via: true, forwarded: true } } });
  const chain = await seenBy(trusted, ['Host: shop.example', 'Forwarded: for=192.0.2.1', 'Via: 1.0 edge']);
  assert.equal(chain.headers['forwarded'], 'for=192.0.2.1, for=127.0.0.1;proto=http;host=shop.example');
  assert.equal(chain.headers['via'], '1.0 edge, 1.1 portico');
});

test('upstream host: preserve (default), target, or a fixed value', async () => {
  assert.equal((await seenBy(plain, ['Host: client.example'])).headers['host'], 'client.example');
  const target = await portico({}, { host: 'target' });
  assert.equal((await seenBy(target, ['Host: client.example'])).headers['host'], `127.0.0.1:${echo.port}`);
  const fixed = await portico({}, { host: 'internal.svc' });
  const seen = await seenBy(fixed, ['Host: client.example']);
  assert.equal(seen.headers['host'], 'internal.svc');
  assert.equal(seen.headers['x-forwarded-host'], 'client.example');
});

test('request id: generated, sent upstream and returned; a client\'s is ignored unless trusted', async () => {
  const r = await http(`${plain.url}/`, { headers: { 'x-request-id': 'client-chosen' } });
  const id = r.headers['x-request-id'];
  assert.equal(typeof id, 'string');
  assert.notEqual(id, 'client-chosen');
  assert.match(id as string, /^[0-9a-f-]{36}$/);
  assert.equal(JSON.parse(r.body).headers['x-request-id'], id);
  const again = await http(`${plain.url}/`);
  assert.notEqual(again.headers['x-request-id'], id, 'a new id per request');

  const trusted = await portico({ server: { trusted_proxies: ['127.0.0.1'] } });
  const t = await http(`${trusted.url}/`, { headers: { 'x-request-id': 'edge-123' } });
  assert.equal(t.headers['x-request-id'], 'edge-123');
  assert.equal(JSON.parse(t.body).headers['x-request-id'], 'edge-123');
  const bad = await http(`${trusted.url}/`, { headers: { 'x-request-id': 'has spaces <script>' } });
  assert.notEqual(bad.headers['x-request-id'], 'has spaces <script>', 'an id that does not look like one is replaced');

  const off = await portico({ server: { headers: { request_id: false } } });
  const o = await http(`${off.url}/`);
  assert.equal(o.headers['x-request-id'], undefined);
  assert.equal(JSON.parse(o.body).headers['x-request-id'], undefined);
});

test('Server and X-Powered-By from the backend are hidden by default; the list is configurable', async () => {
  const r = await http(`${plain.url}/`);
  assert.equal(r.headers['server'], undefined);
  assert.equal(r.headers['x-powered-by'], undefined);
  assert.equal(r.headers['x-custom'], 'c');

  const custom = await portico({ server: { headers: { hide: ['x-custom'] } } });
  const c = await http(`${custom.url}/`);
  assert.equal(c.headers['server'], 'uvicorn');
  assert.equal(c.headers['x-powered-by'], 'FastAPI');
  assert.equal(c.headers['x-custom'], undefined);
});
