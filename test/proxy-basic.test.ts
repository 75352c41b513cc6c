import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, startPortico, proxyAll, http, type Backend, type RunningPortico } from './helpers.js';

let backend: Backend;
let portico: RunningPortico;

before(async () => {
  backend = await startBackend();
  portico = await startPortico(proxyAll([backend.url]));
});
after(async () => { await portico.close(); await backend.close(); });

test('proxies a GET and passes Host through by default', async () => {
  const r = await http(`${portico.url}/hello?x=1`, { headers: { host: 'example.com' } });
  assert.equal(r.status, 200);
  const echo = JSON.parse(r.body);
  assert.equal(echo.url, '/hello?x=1');
  assert.equal(echo.headers.host, 'example.com');
  assert.equal(echo.headers['x-forwarded-host'], 'example.com');
  assert.equal(echo.headers['x-forwarded-proto'], 'http');
  assert.equal(echo.headers['x-real-ip'], '127.0.0.1');
});

test('backend Server and X-Powered-By are removed', async () => {
  const r = await http(`${portico.url}/`);
  assert.equal(r.headers['server'], undefined);
  assert.equal(r.headers['x-powered-by'], undefined);
  assert.equal(r.headers['content-type'], 'application/json');
});

test('POST body is forwarded intact', async () => {
  const body = 'a'.repeat(100_000);
  const r = await http(`${portico.url}/upload`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).body, body);
});
