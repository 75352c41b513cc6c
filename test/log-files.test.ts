// Log files: an unwritable path refuses start with a clear error (never a crash later), and the
// error log follows logrotate like the access log does.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPortico, type ConfigInput } from '../src/index.js';
import { http, sleep } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'portico-logfiles-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const notADir = join(dir, 'plain-file');
writeFileSync(notADir, 'x');

function config(log: ConfigInput['log']): ConfigInput {
  return {
    server: { listen: ['127.0.0.1:0'] },
    upstreams: { gone: { targets: ['http://127.0.0.1:1'] } },
    routes: [{ match: {}, upstream: 'gone' }],
    log,
  } as ConfigInput;
}

test('an error log path that cannot be written refuses start, naming the path', async () => {
  const path = join(notADir, 'error.log');
  await assert.rejects(createPortico(config({ access: { enabled: false }, error: { path } })), (err: Error) => err.message.includes(notADir));
});

test('an access log path that cannot be written refuses start, naming the path', async () => {
  const path = join(notADir, 'access.log');
  await assert.rejects(createPortico(config({ access: { path }, error: { level: 'silent' } })), (err: Error) => err.message.includes(notADir));
});

test('the error log is reopened after a rename (logrotate), and later lines go to the new file', async () => {
  const path = join(dir, 'error.log');
  const portico = await createPortico(config({ access: { enabled: false }, error: { path, level: 'warn' } }));
  try {
    const url = `http://${portico.addresses[0]}`;
    assert.equal((await http(`${url}/first`)).status, 502);
    await sleep(200);
    assert.match(readFileSync(path, 'utf8'), /upstream request failed/);
    renameSync(path, `${path}.1`);
    portico.reopenLogs();
    await sleep(200);
    assert.equal((await http(`${url}/second`)).status, 502);
    await sleep(300);
    const fresh = readFileSync(path, 'utf8');
    assert.match(fresh, /upstream request failed/);
    assert.equal(readFileSync(`${path}.1`, 'utf8').match(/upstream request failed/g)?.length, 1);
  } finally {
    await portico.close(500);
  }
});
