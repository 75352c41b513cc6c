// Balancing policies end to end: real backends, requests through Portico, distributions counted
// at the backends.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPortico, http, sleep, type RunningPortico } from './helpers.js';
import { tally, runLoad, type NamedBackend, startNamedBackends } from './helpers-lb.js';
import { validateConfig, type Config, type ConfigInput } from '../src/index.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanup.reverse()) await c(); });

function backends(n: number): Promise<NamedBackend[]> {
  return startNamedBackends(n, cleanup);
}

async function portico(upstream: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<RunningPortico> {
  const p = await startPortico({ upstreams: { app: upstream }, routes: [{ name: 'app', match: {}, upstream: 'app' }], ...extra } as unknown as ConfigInput);
  cleanup.push(() => p.close());
  return p;
}

function config(upstream: Record<string, unknown>): Config {
  return validateConfig({ server: { listen: ['127.0.0.1:0'] }, upstreams: { app: upstream }, routes: [{ name: 'app', match: {}, upstream: 'app' }], log: { access: { enabled: false }, error: { level: 'silent' } } } as unknown as ConfigInput);
}

async function sequential(url: string, n: number, headers?: (i: number) => Record<string, string>): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await http(url, headers ? { headers: headers(i) } : {});
    assert.equal(r.status, 200);
    out.push(r.body);
  }
  return out;
}

test('round_robin: smooth weighted, 3:1:1 exactly and without bursts', async () => {
  const [a, b, c] = await backends(3);
  const p = await portico({ targets: [{ url: a!.url, weight: 3 }, b!.url, c!.url] });
  const seq = await sequential(`${p.url}/`, 250);
  const counts = tally(seq);
  assert.deepEqual([counts.get('b0'), counts.get('b1'), counts.get('b2')], [150, 50, 50]);
  // Smooth: the heavy target never gets more than 2 in a row (plain weighted would give 3).
  let run = 0; let longest = 0;
  for (const s of seq) { run = s === 'b0' ? run + 1 : 0; longest = Math.max(longest, run); }
  assert.ok(longest <= 2, `longest run ${longest}`);
});

test('least_requests: a slow target gets fewer requests; equal ones share evenly', async () => {
  const [a, b, c] = await backends(3);
  a!.delayMs = 150; b!.delayMs = 5; c!.delayMs = 5;
  const p = await portico({ targets: [a!.url, b!.url, c!.url], balance: 'least_requests' });
  const r = await runLoad(`${p.url}/`, { total: 300, concurrency: 6 });
  assert.equal(r.errors.length, 0);
  const counts = tally(r.bodies);
  assert.ok((counts.get('b0') ?? 0) < 300 * 0.12, `slow target got ${counts.get('b0')}`);
  a!.delayMs = 10; b!.delayMs = 10; c!.delayMs = 10;
  const r2 = await runLoad(`${p.url}/`, { total: 300, concurrency: 6 });
  const even = tally(r2.bodies);
  for (const name of ['b0', 'b1', 'b2']) {
    const share = (even.get(name) ?? 0) / 300;
    assert.ok(share > 0.23 && share < 0.43, `${name}: ${share}`);
  }
});

test('least_requests: idle targets are chosen at random (tie-break), not always the first', async () => {
  const bs = await backends(3);
  const p = await portico({ targets: bs.map((b) => b.url), balance: 'least_requests' });
  const counts = tally(await sequential(`${p.url}/`, 300));
  for (const name of ['b0', 'b1', 'b2']) {
    const share = (counts.get(name) ?? 0) / 300;
    assert.ok(share > 0.2 && share < 0.47, `${name}: ${share}`);
  }
});

test('random_two: even spread under load, slow target avoided', async () => {
  const [a, b, c] = await backends(3);
  a!.delayMs = 10; b!.delayMs = 10; c!.delayMs = 10;
  const p = await portico({ targets: [a!.url, b!.url, c!.url], balance: 'random_two' });
  const r = await runLoad(`${p.url}/`, { total: 300, concurrency: 6 });
  const counts = tally(r.bodies);
  for (const name of ['b0', 'b1', 'b2']) {
    const share = (counts.get(name) ?? 0) / 300;
    assert.ok(share > 0.2 && share < 0.47, `${name}: ${share}`);
  }
  a!.delayMs = 150; b!.delayMs = 5; c!.delayMs = 5;
  const slow = tally((await runLoad(`${p.url}/`, { total: 300, concurrency: 6 })).bodies);
  assert.ok((slow.get('b0') ?? 0) < 300 * 0.15, `slow target got ${slow.get('b0')}`);
});

test('ip_hash: the client address (after trusted-proxy resolution) picks the target', async () => {
  const bs = await backends(3);
  const p = await portico({ targets: bs.map((b) => b.url), balance: 'ip_hash' }, { server: { listen: ['127.0.0.1:0'], trusted_proxies: ['127.0.0.1'] } });
  const clients = Array.from({ length: 150 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  const first = await sequential(`${p.url}/`, clients.length, (i) => ({ 'x-forwarded-for': clients[i]! }));
  const again = await sequential(`${p.url}/`, clients.length, (i) => ({ 'x-forwarded-for': clients[i]! }));
  assert.deepEqual(again, first);
  const counts = tally(first);
  for (const name of ['b0', 'b1', 'b2']) assert.ok((counts.get(name) ?? 0) > 150 * 0.15, `${name}: ${counts.get(name)}`);
});

test('hash on a header: same key same target; adding or removing one target remaps about 1/N of keys', async () => {
  const bs = await backends(5);
  const keys = Array.from({ length: 400 }, (_, i) => `user-${i}`);
  const upstream = (targets: NamedBackend[]) => ({ targets: targets.map((b) => b.url), balance: { hash: 'header:X-User' } });
  const p = await portico(upstream(bs.slice(0, 4)));
  const route = (i: number) => ({ 'x-user': keys[i]! });
  const four = await sequential(`${p.url}/`, keys.length, route);
  assert.deepEqual(await sequential(`${p.url}/`, keys.length, route), four);
  const counts = tally(four);
  for (const b of bs.slice(0, 4)) assert.ok((counts.get(b.name) ?? 0) > 400 * 0.12, `${b.name}: ${counts.get(b.name)}`);

  // Add a fifth target: ~1/5 of keys move, and only to the new target.
  await p.portico.reload(config(upstream(bs)));
  const five = await sequential(`${p.url}/`, keys.length, route);
  const moved = five.filter((t, i) => t !== four[i]);
  assert.ok(moved.length / 400 > 0.1 && moved.length / 400 < 0.32, `moved ${moved.length / 400}`);
  assert.ok(moved.every((t) => t === 'b4'), 'keys moved only to the added target');

  // Remove b1: only b1's keys move.
  await p.portico.reload(config(upstream([bs[0]!, bs[2]!, bs[3]!, bs[4]!])));
  const without = await sequential(`${p.url}/`, keys.length, route);
  for (let i = 0; i < keys.length; i++) {
    if (five[i] !== 'b1') assert.equal(without[i], five[i], `key ${keys[i]} moved though its target stayed`);
    else assert.notEqual(without[i], 'b1');
  }
  // Requests without the key still get an answer (spread at random).
  assert.equal((await http(`${p.url}/`)).status, 200);
});

test('hash on a cookie, a query parameter and the URI', async () => {
  const bs = await backends(3);
  for (const spec of ['cookie:sid', 'query:id', 'uri']) {
    const p = await portico({ targets: bs.map((b) => b.url), balance: { hash: spec } });
    const req = (i: number) => spec === 'cookie:sid' ? http(`${p.url}/`, { headers: { cookie: `a=1; sid=s${i}` } })
      : spec === 'query:id' ? http(`${p.url}/x?y=2&id=${i}`) : http(`${p.url}/item/${i}`);
    const first: string[] = [];
    for (let i = 0; i < 60; i++) first.push((await req(i)).body);
    for (let i = 0; i < 60; i++) assert.equal((await req(i)).body, first[i], `${spec} key ${i}`);
    assert.ok(tally(first).size >= 2, `${spec}: keys spread over targets`);
  }
});

test('first: priority order; backup targets only when no primary is healthy', async () => {
  const [a, b, c] = await backends(3);
  const p = await portico({
    targets: [a!.url, b!.url, { url: c!.url, backup: true }],
    balance: 'first',
    health: { active: { path: '/healthz', interval: '100ms', timeout: '100ms', rise: 1, fall: 1 } },
  });
  assert.deepEqual(new Set(await sequential(`${p.url}/`, 10)), new Set(['b0']));
  a!.health = 503;
  await sleep(350);
  assert.deepEqual(new Set(await sequential(`${p.url}/`, 10)), new Set(['b1']));
  b!.health = 503;
  await sleep(350);
  assert.deepEqual(new Set(await sequential(`${p.url}/`, 10)), new Set(['b2']));
  a!.health = 200;
  await sleep(350);
  assert.deepEqual(new Set(await sequential(`${p.url}/`, 10)), new Set(['b0']));
  // The backup is also used by other policies only when primaries are all down.
  const q = await portico({ targets: [a!.url, { url: c!.url, backup: true }] });
  assert.deepEqual(new Set(await sequential(`${q.url}/`, 10)), new Set(['b0']));
});

test('sticky: a signed cookie keeps a client on its target; forged or tampered cookies are ignored', async () => {
  const bs = await backends(3);
  const p = await portico({
    targets: bs.map((b) => b.url),
    sticky: { cookie: 'srv' },
    health: { active: { path: '/healthz', interval: '100ms', timeout: '100ms', rise: 1, fall: 1 } },
  });
  const r = await http(`${p.url}/`);
  const set = String(r.headers['set-cookie']);
  const m = /^srv=([A-Za-z0-9_-]+); Path=\/; HttpOnly; SameSite=Lax$/.exec(set);
  assert.ok(m, set);
  const value = m[1]!;
  for (const b of bs) assert.ok(!value.includes(String(b.port)), 'the cookie does not reveal the address');
  const home = r.body;
  for (let i = 0; i < 20; i++) {
    const s = await http(`${p.url}/`, { headers: { cookie: `x=1; srv=${value}` } });
    assert.equal(s.body, home);
    assert.equal(s.headers['set-cookie'], undefined, 'a valid cookie is not re-sent');
  }
  // Forged and tampered values: not trusted, balanced as usual and a genuine cookie issued.
  const tampered = value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A');
  for (const forged of [tampered, 'http://127.0.0.1:1', '0', bs[0]!.url]) {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const f = await http(`${p.url}/`, { headers: { cookie: `srv=${forged}` } });
      assert.equal(f.status, 200);
      assert.match(String(f.headers['set-cookie']), /^srv=[A-Za-z0-9_-]{22};/);
      seen.add(f.body);
    }
    assert.ok(seen.size > 1, `forged cookie ${forged} pinned a target`);
  }
  // Its target goes down: re-balanced, and the cookie re-issued for the new target.
  const target = bs.find((b) => b.name === home)!;
  target.health = 503;
  await sleep(350);
  const moved = await http(`${p.url}/`, { headers: { cookie: `srv=${value}` } });
  assert.notEqual(moved.body, home);
  const fresh = /^srv=([A-Za-z0-9_-]+);/.exec(String(moved.headers['set-cookie']))![1]!;
  assert.notEqual(fresh, value);
  for (let i = 0; i < 5; i++) assert.equal((await http(`${p.url}/`, { headers: { cookie: `srv=${fresh}` } })).body, moved.body);
});
