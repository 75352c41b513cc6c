// The access log's writer: nothing lost or reordered under a burst far larger than its queue,
// a quiet line appears within about a second, and reopen() follows a renamed file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriter } from '../src/observe/batch-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'portico-bw-'));

test('a burst of 200,000 lines (~50 MB, far past the queue) is written whole; no line is lost', async () => {
  const file = join(dir, 'burst.log');
  const w = new BatchWriter(file, 4);
  const pad = 'x'.repeat(200);
  for (let i = 0; i < 200_000; i++) w.write(`${i} ${pad} é\n`);
  await w.close();
  const lines = readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, 200_000);
  // Under the overflow brake one 64 KiB chunk may land late; every line is there exactly once.
  const seen = new Set(lines.map((l) => Number(l.slice(0, l.indexOf(' ')))));
  assert.equal(seen.size, 200_000);
  for (const l of lines) assert.ok(l.endsWith(`${pad} é`));
});

test('a single quiet line reaches the file within about a second, without close()', async () => {
  const file = join(dir, 'quiet.log');
  const w = new BatchWriter(file);
  w.write('one line\n');
  await new Promise((r) => setTimeout(r, 1_500));
  assert.equal(readFileSync(file, 'utf8'), 'one line\n');
  await w.close();
});

test('reopen(): after a rename, later lines go to a new file at the same path', async () => {
  const file = join(dir, 'rotate.log');
  const w = new BatchWriter(file);
  w.write('before\n');
  await w.drain();
  renameSync(file, `${file}.1`);
  await w.reopen();
  w.write('after\n');
  await w.close();
  assert.equal(readFileSync(`${file}.1`, 'utf8'), 'before\n');
  assert.ok(existsSync(file));
  assert.equal(readFileSync(file, 'utf8'), 'after\n');
});

test('a line longer than the buffer is written as is, in order', async () => {
  const file = join(dir, 'long.log');
  const w = new BatchWriter(file);
  const long = 'y'.repeat(100_000);
  w.write('a\n');
  w.write(`${long}\n`);
  w.write('b\n');
  await w.close();
  assert.equal(readFileSync(file, 'utf8'), `a\n${long}\nb\n`);
});
