// Path normalisation before routing: a request cannot reach a route that its normalised path
// would not reach (/api/../admin is /admin), and the upstream gets the normalised path.
// Raw sockets, because HTTP clients (undici, URL) normalise dot segments themselves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, startPortico, type Backend, type RunningPortico } from './helpers.js';
import { rawExchange, statusesOf } from './helpers-core.js';
import type { ConfigInput } from '../src/index.js';

let backend: Backend;
const running: RunningPortico[] = [];
let decode: RunningPortico;
let reject: RunningPortico;
let keep: RunningPortico;
let noMerge: RunningPortico;

function config(paths: Record<string, unknown>): ConfigInput {
  return {
    server: { paths },
    upstreams: { app: { targets: [backend.url] } },
    routes: [
      // The respond action on /admin proves which route took a request.
      { name: 'admin', match: { path: '/admin' }, respond: { status: 200, body: 'ADMIN' } },
      { name: 'api', match: { path: '/api' }, upstream: 'app' },
    ],
  } as ConfigInput;
}

before(async () => {
  backend = await startBackend((req, res) => {
    const body = `API ${req.url}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  decode = await startPortico(config({}));
  reject = await startPortico(config({ encoded_slashes: 'reject' }));
  keep = await startPortico(config({ encoded_slashes: 'keep' }));
  noMerge = await startPortico(config({ merge_slashes: false }));
  running.push(decode, reject, keep, noMerge);
});

after(async () => {
  for (const p of running) await p.close();
  await backend.close();
});

/** Status and body of a raw GET with exactly this request target. */
async function get(p: RunningPortico, target: string): Promise<{ status: number; body: string }> {
  const r = await rawExchange(p.port, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
  const statuses = statusesOf(r.data);
  assert.equal(statuses.length, 1, `one response for ${target}: ${JSON.stringify(r.data.slice(0, 60))}`);
  return { status: statuses[0]!, body: r.data.slice(r.data.indexOf('\r\n\r\n') + 4) };
}

test('dot segments are resolved before routing', async () => {
  for (const target of ['/api/../admin', '/api/./../admin', '/api/x/../../admin/', '/./admin', '/../admin', '/../../admin']) {
    const r = await get(decode, target);
    assert.equal(r.body, 'ADMIN', `${target} is /admin`);
  }
});

test('percent-encoded dots are dot segments too', async () => {
  for (const target of ['/api/%2e%2e/admin', '/api/%2E%2E/admin', '/api/.%2e/admin', '/api/%2e./admin', '/api/%2e/../admin']) {
    assert.equal((await get(decode, target)).body, 'ADMIN', target);
  }
});

test('encoded slashes (decode, the default): /api/..%2fadmin is /admin', async () => {
  assert.equal((await get(decode, '/api/..%2fadmin')).body, 'ADMIN');
  assert.equal((await get(decode, '/api/..%2Fadmin')).body, 'ADMIN');
  assert.equal((await get(decode, '/api/..%5cadmin')).body, 'ADMIN', 'an encoded backslash too');
  assert.equal((await get(decode, '/api/a%2fb')).body, 'API /api/a/b');
});

test('merged slashes: //admin is /admin (and does not read as a host)', async () => {
  assert.equal((await get(decode, '//admin')).body, 'ADMIN');
  assert.equal((await get(decode, '/api//..//admin')).body, 'ADMIN');
  assert.equal((await get(decode, '/api//x')).body, 'API /api/x', 'the upstream gets the merged path');
  // Without merging, dot segments still resolve, and "//admin" is a path no route takes.
  assert.equal((await get(noMerge, '/api/../admin')).body, 'ADMIN');
  assert.equal((await get(noMerge, '//admin')).status, 404);
  assert.equal((await get(noMerge, '/api//x')).body, 'API /api//x');
});

test('backslashes count as separators', async () => {
  assert.equal((await get(decode, '/api\\..\\admin')).body, 'ADMIN');
  assert.equal((await get(decode, '/api/..\\admin')).body, 'ADMIN');
});

test('the upstream gets the normalised path, unreserved escapes decoded, the query untouched', async () => {
  assert.equal((await get(decode, '/api/a/./b/../c?x=/../y')).body, 'API /api/a/c?x=/../y');
  assert.equal((await get(decode, '/api/%7euser/%41')).body, 'API /api/~user/A');
  assert.equal((await get(decode, '/api/a%20b%3f')).body, 'API /api/a%20b%3F', 'reserved and unsafe escapes stay encoded');
});

test('encoded_slashes: reject answers 400', async () => {
  assert.equal((await get(reject, '/api/a%2fb')).status, 400);
  assert.equal((await get(reject, '/api/..%2fadmin')).status, 400);
  assert.equal((await get(reject, '/api/a%5Cb')).status, 400);
  assert.equal((await get(reject, '/api/../admin')).body, 'ADMIN', 'plain dot segments still resolve');
});

test('encoded_slashes: keep passes them as data (no segment split, no traversal)', async () => {
  assert.equal((await get(keep, '/api/a%2fb')).body, 'API /api/a%2Fb');
  const r = await get(keep, '/api/..%2fadmin');
  assert.equal(r.body, 'API /api/..%2Fadmin', 'one segment "..%2Fadmin", still under /api');
});

test('NUL and malformed escapes are refused with 400', async () => {
  for (const target of ['/api/%00', '/admin%00.txt', '/api/%0', '/api/%g1', '/api/%']) {
    assert.equal((await get(decode, target)).status, 400, target);
  }
  assert.equal(backend.seen.filter((s) => s.url.includes('%00')).length, 0);
});
