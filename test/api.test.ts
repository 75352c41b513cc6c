// The programmatic API: createPortico() from an object config, as embedders and tests use it,
// and ConfigError with key paths for an invalid object.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createPortico, ConfigError, type ConfigInput } from '../src/index.js';
import { startBackend, http } from './helpers.js';

const quiet = { access: { enabled: false }, error: { level: 'silent' } } as const;

function portOf(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(':') + 1));
}

async function refused(port: number): Promise<boolean> {
  const s = connect(port, '127.0.0.1');
  try {
    await once(s, 'connect');
    return false;
  } catch {
    return true;
  } finally { s.destroy(); }
}

test('createPortico starts from an object config and close() frees the port', async () => {
  const backend = await startBackend();
  const portico = await createPortico({
    server: { listen: ['127.0.0.1:0'] },
    upstreams: { api: { targets: [backend.url] } },
    routes: [
      { name: 'api', match: { path: '/api' }, strip_prefix: true, upstream: 'api' },
      { match: { exact_path: '/healthz' }, respond: { status: 200, body: 'ok' } },
      { match: { path: '/old' }, redirect: { to: '/new{rest}', status: 301 } },
    ],
    log: quiet,
  });
  try {
    assert.equal(portico.addresses.length, 1);
    const port = portOf(portico.addresses[0]!);
    assert.ok(port > 0);
    const url = `http://127.0.0.1:${port}`;
    const r = await http(`${url}/api/users?id=7`);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).url, '/users?id=7');
    assert.equal((await http(`${url}/healthz`)).body, 'ok');
    const redirect = await http(`${url}/old/page`);
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/new/page');
    // The validated config, defaults filled in, is visible to the embedder.
    assert.equal(portico.plan.config.server.timeouts.header, 10_000);
    await portico.close();
    assert.ok(await refused(port), 'the port is still accepting after close()');
  } finally {
    await portico.close();
    await backend.close();
  }
});

test('the package entry point exports createPortico (import from "portico")', async () => {
  // Resolved through package.json "exports" (self-reference), as an embedder's import would be.
  const name = 'portico';
  const mod = (await import(name)) as { createPortico?: unknown; ConfigError?: unknown };
  assert.equal(typeof mod.createPortico, 'function');
  assert.equal(typeof mod.ConfigError, 'function');
});

test('an invalid object config throws ConfigError naming each key path', async () => {
  const bad = {
    server: { listen: ['nowhere'], timeouts: { header: 'soon' } },
    upstreams: { api: { targets: [] } },
    routes: [{ match: { path: '/a' }, upstream: 'api', colour: 'blue' }],
    extra: true,
  } as unknown as ConfigInput;
  const err = await createPortico(bad).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
  const keys = err.problems.map((p) => p.key).sort();
  assert.deepEqual(keys, ['extra', 'routes[0].colour', 'server.listen[0]', 'server.timeouts.header', 'upstreams.api.targets'].sort());
  for (const p of err.problems) {
    assert.ok(p.message.length > 0);
    assert.match(err.message, new RegExp(p.key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  }
  assert.match(err.problems.find((p) => p.key === 'server.timeouts.header')!.message, /duration/);

  // Cross-references are checked too: a route naming an upstream that does not exist.
  const ref = await createPortico({ upstreams: { api: { targets: ['http://127.0.0.1:1'] } }, routes: [{ match: {}, upstream: 'apii' }], log: quiet })
    .then(() => undefined, (e: unknown) => e);
  assert.ok(ref instanceof ConfigError);
  assert.equal(ref.problems[0]!.key, 'routes[0].upstream');
  assert.match(ref.problems[0]!.message, /no upstream named "apii"/);
});

test('a listen address in use rejects with EADDRINUSE and leaves nothing running', async () => {
  const holder = createServer();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const port = (holder.address() as AddressInfo).port;
  const servers = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
  const before = servers();
  try {
    const err = await createPortico({ server: { listen: ['127.0.0.1:0', `127.0.0.1:${port}`] }, log: quiet })
      .then(() => undefined, (e: unknown) => e as NodeJS.ErrnoException);
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'EADDRINUSE');
    assert.match(err.message, /already in use/);
    // The listener that did bind (the ephemeral one) was closed again.
    for (let i = 0; i < 50 && servers() > before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(servers() <= before, `${servers() - before} listener(s) left open`);
  } finally { holder.close(); }
});
