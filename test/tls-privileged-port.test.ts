// Ports below 1024 without root, as examples/portico.service sets it up: an unprivileged user
// with only CAP_NET_BIND_SERVICE (ambient) can bind a low port; without it Portico refuses with
// a message naming the capability. Runs where it is safe and possible: as root with setpriv
// (util-linux), dropping to "nobody" for the child; skipped elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BIN, ROOT, tempDir, writeText } from './helpers-process.js';
import { http } from './helpers.js';

const unit = readFileSync(join(ROOT, 'examples', 'portico.service'), 'utf8');

test('examples/portico.service runs unprivileged with only CAP_NET_BIND_SERVICE, sandboxed, reloads with SIGHUP', () => {
  for (const line of [
    'User=portico', 'AmbientCapabilities=CAP_NET_BIND_SERVICE', 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
    'NoNewPrivileges=true', 'ProtectSystem=strict', 'ExecReload=/bin/kill -HUP $MAINPID',
  ]) assert.ok(unit.split('\n').includes(line), `has ${line}`);
  assert.match(unit, /^ReadWritePaths=.*\/var\/lib\/portico/m, 'ACME storage is writable');
});

const unprivilegedStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
const canRun = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv') && unprivilegedStart > 1;
const NOBODY = '65534';

async function freeLowPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 900 + Math.floor(Math.random() * Math.min(100, unprivilegedStart - 900));
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port below 1000');
}

function runAsNobody(args: string[], caps: boolean): { exited: Promise<number | null>; output(): string; kill(): void } {
  const setpriv = ['--reuid', NOBODY, '--regid', NOBODY, '--clear-groups', '--no-new-privs',
    ...(caps ? ['--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service'] : []), process.execPath, BIN, ...args];
  const child = spawn('/usr/bin/setpriv', setpriv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { clearTimeout(timer); resolve(code); }));
  return { exited, output: () => out, kill: () => child.kill('SIGTERM') };
}

test('a non-root user binds a port below 1024 with CAP_NET_BIND_SERVICE, and not without', { skip: canRun ? false : 'needs root, setpriv and ip_unprivileged_port_start > 1' }, async () => {
  const port = await freeLowPort();
  const tmp = tempDir();
  try {
    chmodSync(tmp.dir, 0o755);
    const config = writeText(tmp.file('portico.yaml'), [
      'server:', `  listen: ["127.0.0.1:${port}"]`,
      'routes:', '  - { name: r, match: {}, respond: { status: 204 } }',
      'log: { access: { enabled: false }, error: { level: info, path: stdout } }',
    ].join('\n') + '\n');
    chmodSync(config, 0o644);

    const denied = runAsNobody(['run', '--config', config], false);
    assert.notEqual(await denied.exited, 0, 'refused without the capability');
    assert.match(denied.output(), /permission denied.*CAP_NET_BIND_SERVICE/);

    const allowed = runAsNobody(['run', '--config', config], true);
    try {
      for (let i = 0; i < 100 && !/portico started/.test(allowed.output()); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(allowed.output(), /portico started/);
      const res = await http(`http://127.0.0.1:${port}/`);
      assert.equal(res.status, 204);
    } finally {
      allowed.kill();
      await allowed.exited;
    }
  } finally {
    tmp.cleanup();
  }
});
