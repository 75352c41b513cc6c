// Recovery from a failed order: the first attempt fails validation because nothing answers
// http-01 yet (Pebble's VA gets "connection refused"); the manager backs off, retries, and
// succeeds once the responder is reachable.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AcmeManager, type AcmeFailedEvent, type AcmeIssuedEvent } from '../src/tls/acme/manager.js';
import { AcmeSchema } from '../src/config/schema/acme.js';
import { CertificateStore } from '../src/tls/store.js';
import { freePort, startPebble, type Pebble } from './helpers-pebble.js';
import { cleanup, connectTls, recordingLog, startChallengeListener, startTlsListener } from './helpers-acme.js';

let pebble: Pebble;
let storage: string;
let manager: AcmeManager | undefined;
let http: Awaited<ReturnType<typeof startChallengeListener>> | undefined;
let httpPort: number;

before(async () => {
  storage = await mkdtemp(join(tmpdir(), 'portico-acme-'));
  httpPort = await freePort();
  pebble = await startPebble({ httpPort });
});

after(async () => {
  await cleanup([() => manager?.stop(), () => http?.close(), () => pebble?.stop()]);
  await rm(storage, { recursive: true, force: true });
});

test('a failed order is retried with backoff and succeeds once validation can pass', { timeout: 90_000 }, async () => {
  const log = recordingLog();
  const store = new CertificateStore();
  const config = AcmeSchema.parse({
    directory: pebble.directory, storage, ca_bundle: pebble.caBundle, challenges: ['http-01'], retry: { min: '400ms', max: '1s' },
  });
  manager = new AcmeManager({ config, store, log });
  const failures: AcmeFailedEvent[] = [];
  manager.events.on('failed', (e) => failures.push(e));
  const issuedP = once(manager.events, 'issued') as Promise<[AcmeIssuedEvent]>;
  await manager.manage(['retry.portico.test']);

  // Two failures: the wait doubles (400 ms, then 800 ms, ±10 % jitter).
  while (failures.length < 2) await once(manager.events, 'failed');
  assert.equal(failures[0]!.attempt, 1);
  assert.equal(failures[1]!.attempt, 2);
  assert.match(failures[0]!.error.message, /http-01 validation for retry\.portico\.test failed/);
  assert.equal(store.covers('retry.portico.test'), false, 'nothing is served before a certificate exists');
  assert.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'acme: could not obtain a certificate'));
  const step1 = failures[1]!.retryAt.getTime() - Date.now();
  assert.ok(step1 > 500 && step1 <= 880, `second wait ~800 ms (got ${step1})`);

  // Now the responder comes up on the port Pebble validates against.
  http = await startChallengeListener(() => manager, httpPort);
  const [issued] = await issuedP;
  assert.equal(issued.origin, 'ordered');
  assert.ok(failures.length >= 2 && failures.length <= 3, `gave up nothing, retried a bounded number of times (${failures.length} failures)`);

  const tls = await startTlsListener(store);
  try {
    const served = await connectTls(tls.port, 'retry.portico.test', pebble.issuerRoot);
    assert.equal(served.authorized, true);
    served.socket.destroy();
  } finally {
    await tls.close();
  }
});
