// ACME renewal against Pebble issuing 18-second certificates: renewal starts by itself when a
// third of the lifetime is left; a failing renewal keeps the old certificate serving and retries
// with backoff; the renewed certificate is served to new handshakes without a restart while an
// open connection stays up.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AcmeManager, type AcmeFailedEvent, type AcmeIssuedEvent } from '../src/tls/acme/manager.js';
import { AcmeSchema } from '../src/config/schema/acme.js';
import { CertificateStore } from '../src/tls/store.js';
import { startPebble, type Pebble } from './helpers-pebble.js';
import { cleanup, connectTls, echo, recordingLog, startChallengeListener, startTlsListener } from './helpers-acme.js';

const LIFETIME_S = 18;
let pebble: Pebble;
let storage: string;
let manager: AcmeManager | undefined;
let http: Awaited<ReturnType<typeof startChallengeListener>> | undefined;

before(async () => {
  storage = await mkdtemp(join(tmpdir(), 'portico-acme-'));
  http = await startChallengeListener(() => manager);
  pebble = await startPebble({ httpPort: http.port, certificateValidityPeriod: LIFETIME_S });
});

after(async () => {
  await cleanup([() => manager?.stop(), () => http?.close(), () => pebble?.stop()]);
  await rm(storage, { recursive: true, force: true });
});

test('renews at a third of the lifetime; a failed renewal keeps the old certificate; the new one is swapped in live', { timeout: 90_000 }, async () => {
  const log = recordingLog();
  const store = new CertificateStore();
  const config = AcmeSchema.parse({
    directory: pebble.directory, storage, ca_bundle: pebble.caBundle, challenges: ['http-01'], retry: { min: '500ms', max: '2s' },
  });
  manager = new AcmeManager({ config, store, log });
  const issued: AcmeIssuedEvent[] = [];
  manager.events.on('issued', (e) => issued.push(e));
  await manager.manage(['renew.portico.test']);
  await manager.ready(30_000);
  const first = issued[0]!;
  const lifetime = first.notAfter.getTime() - first.notBefore.getTime();
  assert.ok(lifetime <= LIFETIME_S * 1000 && lifetime > 5_000, `short-lived certificate (${lifetime} ms)`);

  const tls = await startTlsListener(store);
  try {
    const open = await connectTls(tls.port, 'renew.portico.test', pebble.issuerRoot);
    assert.equal(open.authorized, true);

    // Take the http-01 responder away: the renewal that starts on its own must fail.
    const port = http!.port;
    await http!.close();
    http = undefined;
    const [failure] = (await once(manager.events, 'failed')) as [AcmeFailedEvent];
    const startedAt = Date.now();
    const dueAt = first.notAfter.getTime() - lifetime / 3;
    assert.ok(startedAt >= dueAt - 1_000, `renewal started when a third of the lifetime was left (${startedAt - dueAt} ms after due)`);
    assert.equal(failure.attempt, 1);
    const wait = failure.retryAt.getTime() - startedAt;
    assert.ok(wait >= 300 && wait <= 700, `first retry after ~500 ms (got ${wait})`);
    assert.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'acme: renewal failed; the current certificate keeps serving'), log.text());

    // Meanwhile the old certificate still serves new handshakes, and the open connection works.
    const during = await connectTls(tls.port, 'renew.portico.test', pebble.issuerRoot);
    assert.equal(during.fingerprint256, open.fingerprint256);
    during.socket.destroy();
    assert.equal(await echo(open.socket, 'still here'), 'hello renew.portico.test still here\n');

    // Responder back (same port): a retry succeeds and the new certificate is swapped in.
    http = await startChallengeListener(() => manager, port);
    const [renewed] = (await once(manager.events, 'issued')) as [AcmeIssuedEvent];
    assert.equal(renewed.origin, 'ordered');
    assert.notEqual(renewed.fingerprint256, first.fingerprint256);
    assert.ok(renewed.notAfter > first.notAfter);

    const fresh = await connectTls(tls.port, 'renew.portico.test', pebble.issuerRoot);
    assert.equal(fresh.authorized, true);
    assert.notEqual(fresh.fingerprint256, open.fingerprint256, 'new handshakes get the renewed certificate');
    fresh.socket.destroy();
    // The connection opened before the renewal was never dropped.
    assert.equal(await echo(open.socket, 'after renewal'), 'hello renew.portico.test after renewal\n');
    open.socket.destroy();
  } finally {
    await tls.close();
  }
});
