// Routing end to end: host, path, exact path, method and header conditions, the documented order
// (src/router/router.ts), path rewriting, redirects, fixed responses, per-route header changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, startPortico, http, type Backend, type RunningPortico } from './helpers.js';
import { rawExchange, statusesOf } from './helpers-core.js';
import type { ConfigInput } from '../src/index.js';

let backend: Backend;
let portico: RunningPortico;

/** A fixed response naming the route, so each answer proves which route took the request. */
const says = (name: string) => ({ name, respond: { status: 200, body: name } });

before(async () => {
  backend = await startBackend((req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-backend-remove': 'secret', 'x-backend-keep': 'kept', 'x-backend-set': 'from-backend',
    });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  const config: ConfigInput = {
    upstreams: { app: { targets: [backend.url] } },
    routes: [
      // Config order is deliberately not specificity order: the router sorts.
      { ...says('any-host-api'), match: { path: '/api' } },
      { ...says('api-v2'), match: { path: '/api/v2' } },
      { ...says('api-exact'), match: { exact_path: '/api/exact' } },
      { ...says('wildcard'), match: { host: '*.example.com' } },
      { ...says('only-wild'), match: { host: '*.wild.test' } },
      { name: 'redirect-uri', match: { host: 'redir.test' }, redirect: { to: '{scheme}://www.redir.test{uri}', status: 302 } },
      { ...says('exact-host'), match: { host: 'example.com' } },
      { ...says('exact-host-api'), match: { host: 'example.com', path: '/api' } },
      { ...says('m-any'), match: { path: '/m' } },
      { ...says('m-post'), match: { path: '/m', method: ['POST', 'PUT'] } },
      { ...says('h-default'), match: { path: '/h' } },
      { ...says('h-beta'), match: { path: '/h', headers: { 'x-env': ['beta', 'canary'] } } },
      { ...says('h-any-value'), match: { path: '/h/any', headers: { 'x-flag': '*' } } },
      { ...says('tie-first'), match: { path: '/tie' } },
      { ...says('tie-second'), match: { path: '/tie' } },
      { ...says('root-slash'), match: { path: '/slash/' } },
      { name: 'strip', match: { path: '/svc' }, strip_prefix: true, upstream: 'app' },
      { name: 'strip-add', match: { path: '/add' }, strip_prefix: true, add_prefix: '/v1', upstream: 'app' },
      { name: 'rewrite', match: { path: '/rw' }, rewrite: { regex: '^/rw/(\\d+)$', to: '/items/$1' }, upstream: 'app' },
      { name: 'redirect', match: { path: '/old' }, redirect: { to: 'https://{host}/new{rest}{query}', status: 301 } },
      { name: 'redirect-default', match: { exact_path: '/moved' }, redirect: { to: '/elsewhere' } },
      {
        name: 'respond', match: { exact_path: '/teapot' },
        respond: { status: 418, headers: { 'x-fixed': 'yes', 'content-type': 'text/x-tea' }, body: 'short and stout' },
        response_headers: { set: { 'x-set-on-fixed': '1' } },
      },
      {
        name: 'hdrs', match: { path: '/hdrs' }, upstream: 'app',
        request_headers: { set: { 'x-set': 'set-value', 'user-agent': 'portico-test' }, add: { 'x-added': 'added' }, remove: ['x-remove-me'] },
        response_headers: { set: { 'x-backend-set': 'from-route' }, add: { 'x-route-added': 'yes' }, remove: ['x-backend-remove'] },
      },
    ],
  };
  portico = await startPortico(config);
});

after(async () => { await portico.close(); await backend.close(); });

async function routeOf(path: string, opts: { host?: string; method?: string; headers?: Record<string, string> } = {}): Promise<string> {
  const r = await http(`${portico.url}${path}`, { method: opts.method ?? 'GET', headers: { ...(opts.host ? { host: opts.host } : {}), ...opts.headers } });
  return r.status === 404 ? '404' : r.body;
}

test('path prefixes match on segment boundaries, longest wins', async () => {
  assert.equal(await routeOf('/api'), 'any-host-api');
  assert.equal(await routeOf('/api/'), 'any-host-api');
  assert.equal(await routeOf('/api/x'), 'any-host-api');
  assert.equal(await routeOf('/apix'), '404');
  assert.equal(await routeOf('/api/v2'), 'api-v2');
  assert.equal(await routeOf('/api/v2/users'), 'api-v2');
  assert.equal(await routeOf('/api/v22'), 'any-host-api');
  assert.equal(await routeOf('/api?q=1'), 'any-host-api');
});

test('a prefix written with a trailing slash matches only below it', async () => {
  assert.equal(await routeOf('/slash/x'), 'root-slash');
  assert.equal(await routeOf('/slash/'), 'root-slash');
  assert.equal(await routeOf('/slash'), '404');
});

test('exact_path matches only that path and beats prefixes', async () => {
  assert.equal(await routeOf('/api/exact'), 'api-exact');
  assert.equal(await routeOf('/api/exact/more'), 'any-host-api');
});

test('host: exact, one-label wildcard, case-insensitive, port ignored', async () => {
  assert.equal(await routeOf('/', { host: 'example.com' }), 'exact-host');
  assert.equal(await routeOf('/', { host: 'EXAMPLE.com:8080' }), 'exact-host');
  assert.equal(await routeOf('/', { host: 'www.example.com' }), 'wildcard');
  assert.equal(await routeOf('/', { host: 'a.b.example.com' }), '404', 'the wildcard covers one label only');
  assert.equal(await routeOf('/', { host: 'example.org' }), '404');
  assert.equal(await routeOf('/', { host: 'notexample.com' }), '404');
  assert.equal(await routeOf('/', { host: 'example.com.' }), 'exact-host', 'a trailing dot is the same name');
  assert.equal(await routeOf('/', { host: 'a.wild.test' }), 'only-wild');
  assert.equal(await routeOf('/', { host: 'wild.test' }), '404', '"*.wild.test" does not cover wild.test itself');
});

test('absolute-form request target: its authority is the host that routes', async () => {
  const r = await rawExchange(portico.port, 'GET http://example.com/api/x HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
  assert.deepEqual(statusesOf(r.data), [200]);
  assert.ok(r.data.endsWith('exact-host-api'), r.data);
});

test('documented order: host specificity first, then path specificity, then conditions, then config order', async () => {
  // Host exact + path beats host exact alone.
  assert.equal(await routeOf('/api/x', { host: 'example.com' }), 'exact-host-api');
  // A host route (no path) beats a host-less route with a longer path.
  assert.equal(await routeOf('/api/v2', { host: 'example.com' }), 'exact-host-api');
  assert.equal(await routeOf('/api/v2', { host: 'www.example.com' }), 'wildcard');
  // Same conditions: config order.
  assert.equal(await routeOf('/tie'), 'tie-first');
});

test('method conditions', async () => {
  assert.equal(await routeOf('/m', { method: 'POST' }), 'm-post');
  assert.equal(await routeOf('/m', { method: 'PUT' }), 'm-post');
  assert.equal(await routeOf('/m'), 'm-any');
  assert.equal(await routeOf('/m', { method: 'DELETE' }), 'm-any');
});

test('header conditions: listed values, any value with "*", absent header', async () => {
  assert.equal(await routeOf('/h', { headers: { 'x-env': 'beta' } }), 'h-beta');
  assert.equal(await routeOf('/h', { headers: { 'x-env': 'canary' } }), 'h-beta');
  assert.equal(await routeOf('/h', { headers: { 'x-env': 'prod' } }), 'h-default');
  assert.equal(await routeOf('/h'), 'h-default');
  assert.equal(await routeOf('/h/any', { headers: { 'x-flag': 'whatever' } }), 'h-any-value');
  assert.equal(await routeOf('/h/any'), 'h-default');
});

test('nothing matches: 404 with Portico\'s page', async () => {
  const r = await http(`${portico.url}/nothing-here`);
  assert.equal(r.status, 404);
  assert.match(r.body, /404/);
  assert.equal(backend.seen.length, 0);
});

test('strip_prefix removes the matched prefix, keeps the query', async () => {
  let r = await http(`${portico.url}/svc/users/1?x=1&y=2`);
  assert.equal(JSON.parse(r.body).url, '/users/1?x=1&y=2');
  r = await http(`${portico.url}/svc`);
  assert.equal(JSON.parse(r.body).url, '/');
  r = await http(`${portico.url}/svc/`);
  assert.equal(JSON.parse(r.body).url, '/');
});

test('add_prefix after strip_prefix', async () => {
  let r = await http(`${portico.url}/add/things?q=1`);
  assert.equal(JSON.parse(r.body).url, '/v1/things?q=1');
  r = await http(`${portico.url}/add`);
  assert.equal(JSON.parse(r.body).url, '/v1');
});

test('rewrite with capture groups; paths it does not match pass unchanged', async () => {
  let r = await http(`${portico.url}/rw/42?full=1`);
  assert.equal(JSON.parse(r.body).url, '/items/42?full=1');
  r = await http(`${portico.url}/rw/abc`);
  assert.equal(JSON.parse(r.body).url, '/rw/abc');
});

test('redirect with placeholders and status', async () => {
  const reply = await rawExchange(portico.port, 'GET /old/page?a=1 HTTP/1.1\r\nHost: example.net:8443\r\nConnection: close\r\n\r\n');
  assert.deepEqual(statusesOf(reply.data), [301]);
  assert.match(reply.data, /\r\nlocation: https:\/\/example\.net:8443\/new\/page\?a=1\r\n/i);
  const plain = await rawExchange(portico.port, 'GET /moved HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.deepEqual(statusesOf(plain.data), [308], 'the default status is 308');
  assert.match(plain.data, /\r\nlocation: \/elsewhere\r\n/i);
  const uri = await rawExchange(portico.port, 'GET /a/./b/../c?x=1 HTTP/1.1\r\nHost: redir.test\r\nConnection: close\r\n\r\n');
  assert.deepEqual(statusesOf(uri.data), [302]);
  assert.match(uri.data, /\r\nlocation: http:\/\/www\.redir\.test\/a\/c\?x=1\r\n/i, '{scheme} and {uri} (the normalised path)');
});

test('respond: status, headers, body (and response_headers apply to it)', async () => {
  const r = await http(`${portico.url}/teapot`);
  assert.equal(r.status, 418);
  assert.equal(r.body, 'short and stout');
  assert.equal(r.headers['x-fixed'], 'yes');
  assert.equal(r.headers['content-type'], 'text/x-tea');
  assert.equal(r.headers['x-set-on-fixed'], '1');
  const head = await http(`${portico.url}/teapot`, { method: 'HEAD' });
  assert.equal(head.status, 418);
  assert.equal(head.body, '');
});

test('per-route request headers: set replaces, add appends, remove drops', async () => {
  const r = await http(`${portico.url}/hdrs`, { headers: { 'x-remove-me': 'gone', 'x-set': 'client-value', 'x-added': 'client', 'user-agent': 'client-agent' } });
  const seen = JSON.parse(r.body).headers as Record<string, string>;
  assert.equal(seen['x-remove-me'], undefined);
  assert.equal(seen['x-set'], 'set-value');
  assert.equal(seen['user-agent'], 'portico-test');
  assert.equal(seen['x-added'], 'client, added');
});

test('per-route response headers: set replaces, add appends, remove drops', async () => {
  const r = await http(`${portico.url}/hdrs`);
  assert.equal(r.headers['x-backend-remove'], undefined);
  assert.equal(r.headers['x-backend-set'], 'from-route');
  assert.equal(r.headers['x-backend-keep'], 'kept');
  assert.equal(r.headers['x-route-added'], 'yes');
});
