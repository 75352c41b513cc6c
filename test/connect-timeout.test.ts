// upstreams.<name>.timeouts.connect: a target that never completes the TCP handshake gets a 504
// from Portico after the connect timeout, not a hang. On loopback, a listener whose accept
// queue is full drops SYNs, so a connect to it hangs exactly like one to a black-holed address.
// Node always accepts, so the listener is a tiny python3 process that listens and never accepts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { startPortico, http, type RunningPortico } from './helpers.js';

let listener: ChildProcess;
let port = 0;
const fillers: Socket[] = [];
let portico: RunningPortico;

before(async () => {
  listener = spawn('python3', ['-c', [
    'import socket, time',
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    'print(s.getsockname()[1], flush=True)',
    'time.sleep(60)',
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(listener.stdout!, 'data') as [Buffer];
  port = Number(line.toString().trim());
  // Fill the accept queue: from now on the listener drops SYNs.
  for (let i = 0; i < 3; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 200));
  portico = await startPortico({
    upstreams: { app: { targets: [`http://127.0.0.1:${port}`], timeouts: { connect: '700ms' } } },
    routes: [{ match: {}, upstream: 'app' }],
  });
});

after(async () => {
  await portico?.close();
  for (const s of fillers) s.destroy();
  listener?.kill('SIGKILL');
});

test('a target that never accepts the connection: 504 after the connect timeout', async () => {
  // Make sure the listener really drops connects (otherwise this test proves nothing).
  const probe = connect(port, '127.0.0.1');
  probe.on('error', () => undefined);
  const connected = await Promise.race([once(probe, 'connect').then(() => true), new Promise((r) => setTimeout(() => r(false), 500))]);
  probe.destroy();
  assert.equal(connected, false, 'the listener should not complete handshakes once its queue is full');

  const started = performance.now();
  const r = await http(`${portico.url}/x`);
  const elapsed = performance.now() - started;
  assert.equal(r.status, 504);
  assert.ok(!r.body.includes(String(port)), 'the error page does not name the target');
  // Fired by the connect timeout (700 ms, undici's timers are coarse), not the 60 s response timeout.
  assert.ok(elapsed >= 600 && elapsed < 5_000, `answered after ${Math.round(elapsed)} ms`);
});
