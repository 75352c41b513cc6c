// ACME against a real Pebble on loopback: obtain a certificate through a real http-01
// validation, serve it over TLS, store it with 0600 permissions, and load it again at restart
// without a new order.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AcmeManager } from '../src/tls/acme/manager.js';
import { AcmeSchema } from '../src/config/schema/acme.js';
import { CertificateStore } from '../src/tls/store.js';
import { startPebble, type Pebble } from './helpers-pebble.js';
import { cleanup, connectTls, echo, recordingLog, startChallengeListener, startTlsListener } from './helpers-acme.js';

let pebble: Pebble;
let storage: string;
let manager: AcmeManager | undefined;
let http: Awaited<ReturnType<typeof startChallengeListener>>;

before(async () => {
  storage = await mkdtemp(join(tmpdir(), 'portico-acme-'));
  http = await startChallengeListener(() => manager);
  pebble = await startPebble({ httpPort: http.port });
});

after(async () => {
  await cleanup([() => manager?.stop(), () => http?.close(), () => pebble?.stop()]);
  await rm(storage, { recursive: true, force: true });
});

test('obtains a certificate via http-01, serves it, stores it 0600, reuses it after a restart', { timeout: 90_000 }, async () => {
  const log = recordingLog();
  const store = new CertificateStore();
  const config = AcmeSchema.parse({
    email: 'ops@portico.test', directory: pebble.directory, storage, ca_bundle: pebble.caBundle, challenges: ['http-01'],
  });
  manager = new AcmeManager({ config, store, log });
  const issued: string[] = [];
  manager.events.on('issued', (e) => issued.push(`${e.name}:${e.origin}`));
  await manager.manage(['app.portico.test']);
  await manager.ready(60_000);
  assert.deepEqual(issued, ['app.portico.test:ordered']);

  // Served: a client trusting only Pebble's root verifies the chain for the name.
  const tls = await startTlsListener(store);
  try {
    const served = await connectTls(tls.port, 'app.portico.test', pebble.issuerRoot);
    assert.equal(served.authorized, true);
    assert.match(served.subjectaltname, /DNS:app\.portico\.test/);
    assert.equal(await echo(served.socket, 'ping'), 'hello app.portico.test ping\n');
    served.socket.destroy();
  } finally {
    await tls.close();
  }

  // Every file 0600, every directory 0700, and no key material in the log.
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) {
        assert.equal((await stat(p)).mode & 0o777, 0o700, `${p} is a 0700 directory`);
        await walk(p);
      } else {
        files.push(p.slice(storage.length + 1).replace(/^[^/]+\//, ''));
        assert.equal((await stat(p)).mode & 0o777, 0o600, `${p} is 0600`);
      }
    }
  };
  await walk(storage);
  assert.deepEqual(files.sort(), ['account.json', 'account.key', 'certs/app.portico.test/cert.pem', 'certs/app.portico.test/key.pem']);
  assert.doesNotMatch(log.text(), /PRIVATE KEY|BEGIN/);
  for (const step of ['acme: account registered', 'acme: order created', 'acme: challenge ready, asking the CA to validate', 'acme: challenge validated', 'acme: order finalized', 'acme: certificate obtained and installed']) {
    assert.ok(log.lines.some((l) => l.msg === step), `logged "${step}"`);
  }
  await manager.stop();

  // Restart: the stored certificate is served at once, and no order is placed.
  const log2 = recordingLog();
  const store2 = new CertificateStore();
  manager = new AcmeManager({ config, store: store2, log: log2 });
  const issued2: string[] = [];
  manager.events.on('issued', (e) => issued2.push(`${e.name}:${e.origin}`));
  await manager.manage(['app.portico.test']);
  assert.deepEqual(issued2, ['app.portico.test:stored']);
  assert.ok(store2.covers('app.portico.test'));
  assert.ok(!log2.lines.some((l) => l.msg === 'acme: order created' || l.msg === 'acme: account registered'), log2.text());
});

test('the challenge path answers only known tokens', async () => {
  const res = await fetch(`http://127.0.0.1:${http.port}/.well-known/acme-challenge/unknown-token`);
  assert.equal(res.status, 404);
  const other = await fetch(`http://127.0.0.1:${http.port}/elsewhere`);
  assert.equal(other.status, 404);
  assert.equal(await other.text(), 'not found\n');
});

test('a stored account the CA does not know is registered again, once', { timeout: 60_000 }, async () => {
  const store = new CertificateStore();
  const log = recordingLog();
  const own = join(storage, 'stale');
  const config = AcmeSchema.parse({ directory: pebble.directory, storage: own, ca_bundle: pebble.caBundle, challenges: ['http-01'] });
  // An account key with a URL from "another" CA instance: what a restarted test CA leaves behind.
  const { AcmeStorage } = await import('../src/tls/acme/storage.js');
  const { crypto: acmeCrypto } = await import('acme-client');
  const disk = new AcmeStorage(own, pebble.directory);
  await disk.saveAccountKey((await acmeCrypto.createPrivateEcdsaKey()).toString());
  await disk.saveAccountMeta(`${new URL(pebble.directory).origin}/my-account/424242`, undefined);
  manager = new AcmeManager({ config, store, log });
  await manager.manage(['stale.portico.test']);
  await manager.ready(30_000).catch((err: Error) => { throw new Error(`${err.message}\n${log.text()}`); });
  assert.ok(log.lines.some((l) => l.msg === 'acme: the CA does not know the stored account; registering again'), log.text());
  assert.ok(store.covers('stale.portico.test'));
  await manager.stop();
});
