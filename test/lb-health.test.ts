// Active and passive health, slow start, and the all-down answer, with real backends.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPortico, http, sleep, type RunningPortico } from './helpers.js';
import { tally, type NamedBackend, startNamedBackends } from './helpers-lb.js';
import { validateConfig, type ConfigInput } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'portico-lb-'));
const cleanup: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanup.reverse()) await c(); rmSync(dir, { recursive: true, force: true }); });

function backends(n: number): Promise<NamedBackend[]> {
  return startNamedBackends(n, cleanup);
}

let logs = 0;
function input(upstream: Record<string, unknown>, routes = 1): { config: ConfigInput; log: () => string } {
  const file = join(dir, `error-${logs++}.log`);
  return {
    config: {
      server: { listen: ['127.0.0.1:0'] },
      upstreams: { app: upstream },
      routes: Array.from({ length: routes }, (_, i) => ({ name: `r${i}`, match: { path: `/${i}` }, upstream: 'app' })),
      log: { access: { enabled: false }, error: { level: 'info', path: file } },
    } as unknown as ConfigInput,
    log: () => { try { return readFileSync(file, 'utf8'); } catch { return ''; } },
  };
}

async function start(config: ConfigInput): Promise<RunningPortico> {
  const p = await startPortico(config);
  cleanup.push(() => p.close());
  return p;
}

function stateOf(p: RunningPortico, url: string): string {
  return p.portico.upstreams()[0]!.targets.find((t) => t.url === url)!.state;
}

async function waitFor(cond: () => boolean, maxMs: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > maxMs) throw new Error(`condition not met within ${maxMs} ms`);
    await sleep(10);
  }
  return performance.now() - t0;
}

async function names(url: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await http(url);
    assert.equal(r.status, 200);
    out.push(r.body);
  }
  return out;
}

const ACTIVE = { path: '/healthz', interval: '100ms', timeout: '100ms', rise: 2, fall: 2 };

test('active: a failing target leaves rotation within interval × fall and returns after rise', async () => {
  const bs = await backends(3);
  const { config, log } = input({ targets: bs.map((b) => b.url), health: { active: ACTIVE } });
  const p = await start(config);
  await sleep(150);
  bs[1]!.health = 503;
  // interval × fall = 200 ms, plus one timeout of slack for a check already under way.
  const out = await waitFor(() => stateOf(p, bs[1]!.url) === 'unhealthy', 100 * 2 + 100 + 50);
  const before = bs[1]!.hits;
  assert.ok(!(await names(`${p.url}/0`, 30)).includes('b1'));
  assert.equal(bs[1]!.hits, before);
  const status = p.portico.upstreams()[0]!;
  assert.equal(status.available, 2);
  assert.match(status.targets[1]!.lastCheckError, /status 503/);
  bs[1]!.health = 200;
  const back = await waitFor(() => stateOf(p, bs[1]!.url) === 'healthy', 100 * 2 + 100 + 50);
  assert.ok(back >= 100, `came back after ${back} ms: rise needs 2 passing checks`);
  assert.ok((await names(`${p.url}/0`, 30)).includes('b1'));
  await sleep(50);
  assert.match(log(), /target unhealthy: out of rotation/);
  assert.match(log(), /target healthy: back in rotation/);
  void out;
});

test('active: one check per target per interval however many routes; state and checks survive a reload', async () => {
  const bs = await backends(2);
  const { config } = input({ targets: bs.map((b) => b.url), health: { active: ACTIVE } }, 5);
  const p = await start(config);
  await sleep(1_000);
  // 1 s at 100 ms: about 10 checks, not 5 routes × 10.
  assert.ok(bs[0]!.checks >= 7 && bs[0]!.checks <= 13, `checks: ${bs[0]!.checks}`);
  bs[0]!.health = 500;
  await waitFor(() => stateOf(p, bs[0]!.url) === 'unhealthy', 500);
  // Same upstream config, different routes: the check and its verdict carry over.
  const { config: next } = input({ targets: bs.map((b) => b.url), health: { active: ACTIVE } }, 2);
  await p.portico.reload(validateConfig(next));
  assert.equal(stateOf(p, bs[0]!.url), 'unhealthy');
  assert.ok(!(await names(`${p.url}/1`, 10)).includes('b0'));
  const c0 = bs[1]!.checks;
  await sleep(1_000);
  const rate = bs[1]!.checks - c0;
  assert.ok(rate >= 7 && rate <= 13, `checks after reload: ${rate} (a second checker would double it)`);
});

test('active: expected body text, status range, custom Host and headers; TCP checks', async () => {
  const bs = await backends(2);
  const p = await start(input({
    targets: bs.map((b) => b.url),
    health: { active: { ...ACTIVE, body: 'ok', status: '200-204', host: 'health.internal', headers: { 'x-check': '1' }, rise: 1, fall: 1 } },
  }).config);
  await sleep(250);
  const seen = bs[0]!.seen.find((s) => s.url === '/healthz')!;
  assert.equal(seen.headers.host, 'health.internal');
  assert.equal(seen.headers['x-check'], '1');
  assert.equal(stateOf(p, bs[0]!.url), 'healthy');
  bs[0]!.health = 299; // in 200-399 for the default, but not here; and the body is "ok" only for < 400
  await waitFor(() => stateOf(p, bs[0]!.url) === 'unhealthy', 400);

  const tcp = await start(input({ targets: bs.map((b) => b.url), health: { active: { tcp: true, interval: '100ms', timeout: '100ms', rise: 1, fall: 1 } } }).config);
  await sleep(150);
  assert.equal(stateOf(tcp, bs[1]!.url), 'healthy');
  await bs[1]!.close();
  await waitFor(() => stateOf(tcp, bs[1]!.url) === 'unhealthy', 400);
});

test('passive: failures in a row start a cool-down; after it the target ramps up over slow_start', async () => {
  const bs = await backends(2);
  const { config, log } = input({
    targets: bs.map((b) => b.url),
    health: { passive: { failures: 2, cooldown: '400ms' } },
    retries: { attempts: 2 },
    slow_start: '2s',
  });
  const p = await start(config);
  bs[0]!.status = 503;
  // Retries hide the 503s from the client; the second failure ejects b0.
  const first = await names(`${p.url}/0`, 6);
  assert.ok(first.every((n) => n === 'b1'));
  assert.equal(stateOf(p, bs[0]!.url), 'cooldown');
  assert.equal(bs[0]!.hits, 2);
  bs[0]!.status = 200;
  await sleep(150);
  assert.ok(!(await names(`${p.url}/0`, 10)).includes('b0'), 'still cooling down');
  await waitFor(() => stateOf(p, bs[0]!.url) === 'healthy', 500);
  // Just back: weight 10–25% of b1's, so a small share of requests.
  const early = tally(await names(`${p.url}/0`, 40)).get('b0') ?? 0;
  assert.ok(early >= 1 && early <= 10, `early share ${early}/40`);
  await sleep(2_000);
  const later = tally(await names(`${p.url}/0`, 40)).get('b0') ?? 0;
  assert.ok(later >= 18 && later <= 22, `full share ${later}/40`);
  await sleep(50);
  assert.match(log(), /target failing: out of rotation for a cool-down/);
  assert.match(log(), /target cool-down over/);
});

test('all targets down: 503 with Portico\'s error page in under 100 ms, and a log line naming the upstream', async () => {
  const bs = await backends(3);
  const { config, log } = input({ targets: bs.map((b) => b.url), health: { active: { ...ACTIVE, rise: 1, fall: 1 } } });
  const p = await start(config);
  for (const b of bs) await b.close();
  await waitFor(() => p.portico.upstreams()[0]!.available === 0, 500);
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const r = await http(`${p.url}/0`, { headers: { accept: 'text/html' } });
    const ms = performance.now() - t0;
    assert.equal(r.status, 503);
    assert.ok(ms < 100, `${ms} ms`);
    assert.equal(r.headers['retry-after'], '1');
    assert.match(r.body, /<h1>503 Service Unavailable<\/h1>/);
    assert.ok(!r.body.includes('127.0.0.1'), 'no backend detail');
  }
  await sleep(50);
  assert.match(log(), /upstream app has no healthy target/);
});

test('all targets down without active checks: passive health gets there, then 503 at once', async () => {
  const bs = await backends(3);
  const p = await start(input({ targets: bs.map((b) => b.url), health: { passive: { failures: 1, cooldown: '10s' } } }).config);
  for (const b of bs) await b.close();
  // The first request tries every target (connect refused: retried), then nothing is left.
  const r1 = await http(`${p.url}/0`);
  assert.ok(r1.status === 502 || r1.status === 503, String(r1.status));
  const t0 = performance.now();
  const r = await http(`${p.url}/0`);
  assert.equal(r.status, 503);
  assert.ok(performance.now() - t0 < 100);
});
