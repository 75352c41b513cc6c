// Retries: per-try timeout, total deadline, the retry budget, and config errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPortico, http, type RunningPortico } from './helpers.js';
import { startNamed, type NamedBackend, startNamedBackends } from './helpers-lb.js';
import { createPortico, ConfigError, type ConfigInput } from '../src/index.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanup.reverse()) await c(); });

function backends(n: number): Promise<NamedBackend[]> {
  return startNamedBackends(n, cleanup);
}

function input(upstream: Record<string, unknown>): ConfigInput {
  return { upstreams: { app: upstream }, routes: [{ name: 'app', match: {}, upstream: 'app' }] } as unknown as ConfigInput;
}

async function start(upstream: Record<string, unknown>): Promise<RunningPortico> {
  const p = await startPortico(input(upstream));
  cleanup.push(() => p.close());
  return p;
}

test('try_timeout: a slow target is abandoned for the next one', async () => {
  const [a, b] = await backends(2);
  a!.delayMs = 1_000;
  const p = await start({ targets: [a!.url, b!.url], balance: 'first', retries: { try_timeout: '100ms' }, health: { passive: { failures: 0 } } });
  const t0 = performance.now();
  const r = await http(`${p.url}/`);
  const ms = performance.now() - t0;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'b1');
  assert.ok(ms >= 90 && ms < 400, `${ms} ms`);
});

test('deadline: no attempt runs past it; 504 from Portico', async () => {
  const bs = await backends(3);
  for (const b of bs) b.delayMs = 1_000;
  const p = await start({ targets: bs.map((b) => b.url), retries: { try_timeout: '100ms', deadline: '150ms' }, health: { passive: { failures: 0 } } });
  const t0 = performance.now();
  const r = await http(`${p.url}/`, { headers: { accept: 'application/json' } });
  const ms = performance.now() - t0;
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.body).error.status, 504);
  assert.ok(ms >= 140 && ms < 300, `${ms} ms`);
  assert.equal(bs.reduce((n, b) => n + b.hits, 0), 2, 'two attempts fit in the deadline');
});

test('retry budget: when every target fails, retries stay near budget × requests', async () => {
  const bs = await backends(3);
  for (const b of bs) b.status = 503;
  const p = await start({ targets: bs.map((b) => b.url), retries: { attempts: 3, budget: '10%' }, health: { passive: { failures: 0 } } });
  const n = 200;
  for (let i = 0; i < n; i++) {
    const r = await http(`${p.url}/`);
    // The last answer is the backend's own 503, passed on.
    assert.equal(r.status, 503);
    assert.equal(r.body.startsWith('b'), true);
  }
  const hits = bs.reduce((s, b) => s + b.hits, 0);
  // Without a budget: 600 attempts. With 10%: 200 + 20 + the reserve of 10.
  assert.ok(hits >= n + 20 && hits <= n + 20 + 10 + 2, `attempts ${hits}`);
  const retries = p.portico.upstreams()[0]!.targets.reduce((s, t) => s + t.retries, 0);
  assert.equal(retries, hits - n);
});

test('POST is not retried after the target answered 503; GET is', async () => {
  const [a, b] = await backends(2);
  a!.status = 503;
  const p = await start({ targets: [a!.url, b!.url], balance: 'first', health: { passive: { failures: 0 } } });
  assert.equal((await http(`${p.url}/`)).body, 'b1');
  const post = await http(`${p.url}/`, { method: 'POST', body: 'x' });
  assert.equal(post.status, 503);
  assert.equal(post.body, 'b0');
});

test('connect failure: a POST with a streamed body is retried on another target (nothing was sent)', async () => {
  const [b] = await backends(1);
  const dead = await startNamed('dead');
  await dead.close();
  const p = await start({ targets: [dead.url, b!.url], health: { passive: { failures: 0 } } });
  const body = 'z'.repeat(100_000);
  for (let i = 0; i < 6; i++) {
    const r = await http(`${p.url}/`, { method: 'POST', body });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'b0');
  }
  assert.equal(b!.seen.filter((s) => s.method === 'POST').every((s) => s.body === body), true);
  const t = p.portico.upstreams()[0]!.targets[0]!;
  assert.ok(t.failures >= 3, `dead target tried ${t.failures} times`);
  assert.equal(t.retries, t.failures, 'each connect failure was retried');
});

test('config errors: bad hash key, duplicate target, bad percentage', async () => {
  const bad = [
    { targets: ['http://127.0.0.1:1'], balance: { hash: 'body:x' } },
    { targets: ['http://127.0.0.1:1', 'http://127.0.0.1:1/'] },
    { targets: ['http://127.0.0.1:1'], retries: { budget: '120%' } },
    { targets: ['http://127.0.0.1:1'], balance: 'leastconn' },
  ];
  for (const up of bad) {
    await assert.rejects(createPortico({ ...input(up), server: { listen: ['127.0.0.1:0'] }, log: { access: { enabled: false }, error: { level: 'silent' } } } as ConfigInput), ConfigError);
  }
});
