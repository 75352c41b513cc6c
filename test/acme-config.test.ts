// `tls.acme` and `tls.internal` config: defaults, and invalid values refused with file, line and
// key; plus external account binding against a Pebble that requires it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/load.js';
import { ConfigError } from '../src/config/errors.js';
import { AcmeSchema, LETS_ENCRYPT_DIRECTORY } from '../src/config/schema/acme.js';
import { AcmeManager } from '../src/tls/acme/manager.js';
import { CertificateStore } from '../src/tls/store.js';
import { startPebble } from './helpers-pebble.js';
import { recordingLog, startChallengeListener } from './helpers-acme.js';

test('defaults: Let\'s Encrypt, both challenges, ECDSA, 1m..1h backoff; internal off', () => {
  const config = parseConfigText('tls:\n  acme:\n    email: ops@example.com\n');
  assert.equal(config.tls.acme?.directory, LETS_ENCRYPT_DIRECTORY);
  assert.deepEqual(config.tls.acme?.challenges, ['http-01', 'tls-alpn-01']);
  assert.equal(config.tls.acme?.key_type, 'ecdsa');
  assert.deepEqual(config.tls.acme?.retry, { min: 60_000, max: 3_600_000 });
  assert.equal(config.tls.internal.enabled, false);
  assert.equal(parseConfigText('tls:\n  internal: true\n').tls.internal.enabled, true);
  assert.deepEqual(parseConfigText('tls:\n  internal:\n    names: [app.test]\n').tls.internal.names, ['app.test']);
});

test('invalid tls.acme values are refused with file:line and key', () => {
  const yaml = [
    'tls:',
    '  acme:',
    '    email: not-an-email',
    '    directory: ftp://ca.example/dir',
    '    domains: ["*.example.com", "ok.example.com", "10.0.0.1"]',
    '    ca_bundle: /nonexistent/ca.pem',
    '    eab: { kid: k1, hmac_key: "not base64url!" }',
    '    challenges: [dns-01]',
    '    retry: { min: 10m, max: 1m }',
    '    colour: blue',
  ].join('\n');
  let error: ConfigError | undefined;
  try { parseConfigText(yaml, 'portico.yaml'); } catch (err) { error = err as ConfigError; }
  assert.ok(error instanceof ConfigError, 'refused');
  const text = error.message;
  for (const expected of [
    /portico\.yaml:3:\d+: tls\.acme\.email: expected an email address/,
    /portico\.yaml:4:\d+: tls\.acme\.directory: expected the URL of an ACME directory/,
    /portico\.yaml:5:\d+: tls\.acme\.domains\[0\]: expected a DNS name/,
    /portico\.yaml:5:\d+: tls\.acme\.domains\[2\]: expected a DNS name/,
    /portico\.yaml:6:\d+: tls\.acme\.ca_bundle: file not found/,
    /portico\.yaml:7:\d+: tls\.acme\.eab\.hmac_key: expected the base64url HMAC key/,
    /portico\.yaml:8:\d+: tls\.acme\.challenges\[0\]:/,
    /portico\.yaml:10:\d+: tls\.acme\.colour:/,
  ]) assert.match(text, expected);
  assert.doesNotMatch(text, /domains\[1\]/);
  // A ca_bundle that exists but holds no certificate.
  assert.throws(() => parseConfigText(`tls:\n  acme:\n    ca_bundle: ${process.argv[1]}\n`, 'p.yaml'), /p\.yaml:3:\d+: tls\.acme\.ca_bundle: expected a PEM file of CA certificates/);
  // retry.max < retry.min is a cross-key check: reported once the keys themselves are valid.
  assert.throws(() => parseConfigText('tls:\n  acme:\n    retry: { min: 10m, max: 1m }\n', 'p.yaml'), /p\.yaml:3:\d+: tls\.acme\.retry\.max: must be at least retry\.min/);
});

test('external account binding: an account is created with kid + HMAC where the CA requires it', { timeout: 60_000 }, async () => {
  const storage = await mkdtemp(join(tmpdir(), 'portico-acme-'));
  let manager: AcmeManager | undefined;
  const http = await startChallengeListener(() => manager);
  const hmac = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';
  const pebble = await startPebble({ httpPort: http.port, eab: { 'kid-1': hmac } });
  try {
    const base = { directory: pebble.directory, ca_bundle: pebble.caBundle, challenges: ['http-01'], retry: { min: '10s' } };
    // Without EAB the CA refuses the account: the order fails and is retried later.
    const noEab = new AcmeManager({ config: AcmeSchema.parse({ ...base, storage: join(storage, 'a') }), store: new CertificateStore(), log: recordingLog() });
    manager = noEab;
    const failed = new Promise<Error>((resolve) => noEab.events.once('failed', (e) => resolve(e.error)));
    await noEab.manage(['eab.portico.test']);
    assert.match((await failed).message, /externalAccountBinding|external account/i);
    await noEab.stop();

    const store = new CertificateStore();
    manager = new AcmeManager({ config: AcmeSchema.parse({ ...base, storage: join(storage, 'b'), eab: { kid: 'kid-1', hmac_key: hmac } }), store, log: recordingLog() });
    await manager.manage(['eab.portico.test']);
    await manager.ready(30_000);
    assert.ok(store.covers('eab.portico.test'));
  } finally {
    await manager?.stop();
    await http.close();
    await pebble.stop();
    await rm(storage, { recursive: true, force: true });
  }
});
