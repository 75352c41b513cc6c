// The local development CA (`tls: { internal: true }`): created once with its key 0600, issues a
// certificate for localhost (DNS and IP) and listed names that a client trusting only the CA
// verifies, survives a restart with the same root, and prints how to trust it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { LocalCa, startLocalCa } from '../src/tls/local-ca.js';
import { CertificateStore } from '../src/tls/store.js';
import { recordingLog, startTlsListener } from './helpers-acme.js';

let dir: string;
before(async () => { dir = await mkdtemp(join(tmpdir(), 'portico-ca-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

async function handshake(port: number, ca: string, servername: string | undefined, host = '127.0.0.1') {
  const socket = tlsConnect({ host, port, ca, ...(servername ? { servername } : {}) });
  const result = await new Promise<{ ok: true; san: string } | { ok: false; error: string }>((resolve) => {
    socket.once('secureConnect', () => resolve({ ok: true, san: socket.getPeerCertificate().subjectaltname ?? '' }));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: err.code ?? String(err) }));
  });
  socket.destroy();
  return result;
}

test('issues localhost certificates a client trusting the local CA verifies', { timeout: 30_000 }, async () => {
  const store = new CertificateStore();
  const printed: string[] = [];
  const log = recordingLog();
  const service = await startLocalCa(store, { storage: join(dir, 'ca'), names: ['app.localhost'], log, print: (t) => printed.push(t) });
  try {
    assert.equal(service.ca.created, true);
    assert.match(printed.join('\n'), /update-ca-certificates/);
    assert.match(printed.join('\n'), new RegExp(`NODE_EXTRA_CA_CERTS=${join(dir, 'ca', 'ca.pem').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    assert.equal((await stat(join(dir, 'ca', 'ca.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'ca'))).mode & 0o777, 0o700);
    assert.doesNotMatch(log.text(), /PRIVATE KEY/);

    const tls = await startTlsListener(store, 0, service.current);
    try {
      const localhost = await handshake(tls.port, service.ca.certPem, 'localhost', 'localhost');
      assert.deepEqual(localhost.ok, true, JSON.stringify(localhost));
      assert.match((localhost as { san: string }).san, /DNS:localhost/);
      // No SNI, connecting to the IP: the same certificate, verified against its IP SAN.
      const ip = await handshake(tls.port, service.ca.certPem, undefined);
      assert.equal(ip.ok, true, JSON.stringify(ip));
      const listed = await handshake(tls.port, service.ca.certPem, 'app.localhost');
      assert.equal(listed.ok, true, JSON.stringify(listed));
      // A client that does not trust the local CA refuses it: the trust really comes from the CA.
      const other = await LocalCa.open(join(dir, 'other'));
      const untrusted = await handshake(tls.port, other.certPem, 'localhost');
      assert.equal(untrusted.ok, false);
      assert.match((untrusted as { error: string }).error, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
    } finally {
      await tls.close();
    }
  } finally {
    service.stop();
  }

  // A restart reuses the same root (already trusted by the user), without printing again.
  const again: string[] = [];
  const service2 = await startLocalCa(new CertificateStore(), { storage: join(dir, 'ca'), log: recordingLog(), print: (t) => again.push(t) });
  service2.stop();
  assert.equal(service2.ca.created, false);
  assert.equal(service2.ca.certPem, service.ca.certPem);
  assert.deepEqual(again, []);
});

test('short-lived leaves are re-issued at a third of their lifetime and swapped in', { timeout: 30_000 }, async () => {
  const store = new CertificateStore();
  const service = await startLocalCa(store, { storage: join(dir, 'ca2'), lifetime: 3_000, log: recordingLog(), print: () => undefined });
  try {
    const before = store.list()[0]!.fingerprint256;
    // notBefore is backdated 5 minutes for clock skew, so "a third left" is already past: it renews within ~1 s.
    await new Promise((r) => setTimeout(r, 2_500));
    const afterFp = store.list()[0]!.fingerprint256;
    assert.notEqual(afterFp, before);
  } finally {
    service.stop();
  }
});

test('an incomplete CA directory is refused, not silently replaced', async () => {
  const ca = await LocalCa.open(join(dir, 'half'));
  await rm(join(ca.dir, 'ca.key'));
  await assert.rejects(LocalCa.open(join(dir, 'half')), /incomplete \(found only ca\.pem\)/);
});
