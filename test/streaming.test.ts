// Bodies stream through Portico with backpressure and flat memory: 2 GiB uploads and downloads
// (Content-Length and chunked), server-sent events flushed as they come, and a slow client
// pausing the backend. Portico runs as its own process so its RSS can be read from /proc.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { once } from 'node:events';
import { startBackend, sleep, type Backend } from './helpers.js';
import { proxyYaml, sampleRss, startCliPortico, type CliPortico } from './helpers-process.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const TOTAL = 2 * GiB;
const CHUNK = 64 * 1024;
/** Largest RSS growth of the Portico process accepted while gigabytes pass through it. */
const RSS_GROWTH_LIMIT = 200 * MiB;
/** Each 2 GiB transfer must finish well under a minute. */
const TRANSFER_LIMIT_MS = 45_000;

// Random bytes, sliced at a moving offset and stamped with the chunk number, so a dropped,
// duplicated or reordered chunk changes the checksum, not just the count.
const POOL = randomBytes(1 * MiB + CHUNK);

function chunkAt(i: number, size: number): Buffer {
  const off = (i * 7919) % (POOL.length - size);
  const c = Buffer.allocUnsafe(size);
  POOL.copy(c, 0, off, off + size);
  if (size >= 4) c.writeUInt32BE(i >>> 0, 0);
  return c;
}

/** A readable producing `total` bytes on the fly (respects backpressure: pull-based). */
function generated(total: number): Readable {
  let i = 0;
  let sent = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (sent >= total) { this.push(null); return; }
      const size = Math.min(CHUNK, total - sent);
      sent += size;
      this.push(chunkAt(i++, size));
    },
  });
}

/** The checksum `generated(total)` will have. */
function expectedCrc(total: number): number {
  let crc = 0;
  let sent = 0;
  for (let i = 0; sent < total; i++) {
    const size = Math.min(CHUNK, total - sent);
    crc = crc32(chunkAt(i, size), crc);
    sent += size;
  }
  return crc;
}

async function countAndCrc(stream: AsyncIterable<Buffer>): Promise<{ bytes: number; crc: number }> {
  let bytes = 0;
  let crc = 0;
  for await (const chunk of stream) { bytes += chunk.length; crc = crc32(chunk, crc); }
  return { bytes, crc };
}

let backend: Backend;
let portico: CliPortico;
let expected2GiB: number;
/** Portico's RSS once warmed up: growth is also checked against it across the whole file. */
let firstBaseline = 0;
/** What the slow-client backend has done so far. */
const slow = { written: 0, drains: 0, pausedAt: -1, done: false };
/** SSE: how many events the backend has written, and a gate per event. */
const sse = { written: 0, gates: [] as { promise: Promise<void>; resolve: () => void }[] };

function gate(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

before(async () => {
  expected2GiB = expectedCrc(TOTAL);
  backend = await startBackend((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/upload') {
      void countAndCrc(req).then(({ bytes, crc }) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes, crc, chunked: req.headers['transfer-encoding'] === 'chunked', contentLength: req.headers['content-length'] ?? null }));
      });
      return;
    }
    if (url.pathname === '/download') {
      const total = Number(url.searchParams.get('bytes'));
      const chunked = url.searchParams.get('chunked') === '1';
      res.writeHead(200, chunked ? { 'content-type': 'application/octet-stream' } : { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      void pipeline(generated(total), res).catch(() => undefined);
      return;
    }
    if (url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      void (async () => {
        for (let n = 1; n <= 3; n++) {
          sse.written = n;
          res.write(`id: ${n}\ndata: event ${n}\n\n`);
          // The next event is written only once the client has seen this one: if Portico held
          // it back, the client would never see it and the test would time out.
          await Promise.race([sse.gates[n - 1]!.promise, sleep(5_000)]);
        }
        res.end();
      })();
      return;
    }
    if (url.pathname === '/slow-reader') {
      const total = Number(url.searchParams.get('bytes'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      let i = 0;
      const pump = () => {
        while (slow.written < total) {
          const size = Math.min(CHUNK, total - slow.written);
          slow.written += size;
          if (!res.write(chunkAt(i++, size))) {
            slow.drains++;
            res.once('drain', pump);
            return;
          }
        }
        slow.done = true;
        res.end();
      };
      pump();
      return;
    }
    res.writeHead(404).end();
  }, { streaming: true });
  portico = await startCliPortico(proxyYaml([backend.url], `log:
  access: { enabled: false }
`).replace('server:\n', 'server:\n  limits: { max_body_size: 0 }\n'));
  // One small exchange first, so the baseline RSS includes a warmed-up request path.
  await download(`${portico.url}/download?bytes=${MiB}`);
  firstBaseline = portico.rss();
}, { timeout: 60_000 });

after(async () => {
  await portico?.stop();
  await backend?.close();
});

function download(url: string): Promise<{ res: IncomingMessage; bytes: number; crc: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      countAndCrc(res).then(({ bytes, crc }) => resolve({ res, bytes, crc }), reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function upload(url: string, total: number, chunked: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (!chunked) headers['content-length'] = String(total);
    const req = httpRequest(url, { method: 'POST', agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => { body += s; }).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    pipeline(generated(total), req).catch(reject);
  });
}

async function measured<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const baseline = portico.rss();
  const sampler = sampleRss(portico.pid, 50);
  const t0 = performance.now();
  let result: T;
  try {
    result = await fn();
  } finally {
    const { peak } = sampler.stop();
    const ms = performance.now() - t0;
    const growth = peak - baseline;
    console.log(`# ${what}: ${(ms / 1000).toFixed(1)} s, ${(TOTAL / MiB / (ms / 1000)).toFixed(0)} MiB/s; Portico RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB (growth ${(growth / MiB).toFixed(0)} MiB)`);
    assert.ok(growth < RSS_GROWTH_LIMIT, `${what}: Portico RSS grew by ${(growth / MiB).toFixed(0)} MiB (limit ${RSS_GROWTH_LIMIT / MiB} MiB)`);
    // Flat across transfers too: gigabytes later, still within the bound of the warmed-up process.
    assert.ok(peak - firstBaseline < RSS_GROWTH_LIMIT, `${what}: Portico RSS is ${((peak - firstBaseline) / MiB).toFixed(0)} MiB above its warmed-up size`);
    assert.ok(ms < TRANSFER_LIMIT_MS, `${what} took ${ms.toFixed(0)} ms`);
  }
  return result!;
}

test('2 GiB upload with Content-Length streams through with flat memory', async () => {
  const r = await measured('upload, content-length', () => upload(`${portico.url}/upload`, TOTAL, false));
  assert.equal(r.status, 200);
  const got = JSON.parse(r.body);
  assert.equal(got.bytes, TOTAL);
  assert.equal(got.crc, expected2GiB);
  assert.equal(got.contentLength, String(TOTAL));
});

test('2 GiB chunked upload streams through with flat memory', async () => {
  const r = await measured('upload, chunked', () => upload(`${portico.url}/upload`, TOTAL, true));
  assert.equal(r.status, 200);
  const got = JSON.parse(r.body);
  assert.equal(got.bytes, TOTAL);
  assert.equal(got.crc, expected2GiB);
  assert.equal(got.chunked, true);
});

test('2 GiB download with Content-Length streams through with flat memory', async () => {
  const r = await measured('download, content-length', () => download(`${portico.url}/download?bytes=${TOTAL}`));
  assert.equal(r.res.statusCode, 200);
  assert.equal(r.res.headers['content-length'], String(TOTAL));
  assert.equal(r.bytes, TOTAL);
  assert.equal(r.crc, expected2GiB);
});

test('2 GiB chunked download streams through with flat memory', async () => {
  const r = await measured('download, chunked', () => download(`${portico.url}/download?bytes=${TOTAL}&chunked=1`));
  assert.equal(r.res.statusCode, 200);
  assert.equal(r.res.headers['transfer-encoding'], 'chunked');
  assert.equal(r.bytes, TOTAL);
  assert.equal(r.crc, expected2GiB);
});

test('server-sent events reach the client one by one, before the next is written', async () => {
  sse.written = 0;
  sse.gates = [gate(), gate(), gate()];
  const req = httpRequest(`${portico.url}/sse`, { agent: false, headers: { accept: 'text/event-stream' } });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream');
  res.setEncoding('utf8');
  let buffered = '';
  const seen: { id: number; writtenWhenSeen: number; at: number }[] = [];
  const t0 = performance.now();
  for await (const text of res as AsyncIterable<string>) {
    buffered += text;
    let end: number;
    while ((end = buffered.indexOf('\n\n')) !== -1) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const id = Number(/^id: (\d+)$/m.exec(event)![1]);
      assert.match(event, new RegExp(`^data: event ${id}$`, 'm'));
      seen.push({ id, writtenWhenSeen: sse.written, at: performance.now() - t0 });
      sse.gates[id - 1]!.resolve();
    }
  }
  assert.deepEqual(seen.map((s) => s.id), [1, 2, 3]);
  // Each event arrived while it was the last one written, i.e. the backend was still waiting.
  for (const s of seen) assert.equal(s.writtenWhenSeen, s.id, `event ${s.id} arrived after event ${s.writtenWhenSeen} was written`);
  // And promptly (the gate's 5 s fallback was never what released the backend).
  assert.ok(seen[2]!.at < 3_000, `events took ${seen[2]!.at.toFixed(0)} ms`);
});

test('a slow client pauses the backend (backpressure) and Portico memory stays bounded', async () => {
  const total = 512 * MiB;
  Object.assign(slow, { written: 0, drains: 0, done: false });
  const baseline = portico.rss();
  const sampler = sampleRss(portico.pid, 50);
  const req = httpRequest(`${portico.url}/slow-reader?bytes=${total}`, { agent: false });
  let bytes = 0;
  let crc = 0;
  let writtenWhilePaused = 0;
  try {
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    assert.equal(res.statusCode, 200);
    res.pause();
    // The client reads nothing for a while: the backend must end up blocked on 'drain' with only
    // socket and stream buffers' worth of the body written.
    await sleep(1_500);
    writtenWhilePaused = slow.written;
    await sleep(500);
    assert.equal(slow.written, writtenWhilePaused, 'the backend kept writing while the client read nothing');
    assert.ok(slow.drains >= 1, 'the backend never saw res.write() return false');
    assert.ok(!slow.done, 'the whole body was written although the client read nothing');
    assert.ok(writtenWhilePaused < 96 * MiB, `backend wrote ${(writtenWhilePaused / MiB).toFixed(1)} MiB to a client that read nothing`);
    // Now read slowly (a little, then a pause), then everything: the body arrives complete.
    let slowReads = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      crc = crc32(chunk, crc);
      if (slowReads < 20 && bytes > (slowReads + 1) * 2 * MiB) { slowReads++; await sleep(20); }
    }
  } finally {
    // On failure, leave no paused download or RSS sampler holding the test process open.
    req.destroy();
  }
  const { peak } = sampler.stop();
  console.log(`# slow reader: backend wrote ${(writtenWhilePaused / MiB).toFixed(1)} MiB before pausing, ${slow.drains} drain waits; Portico RSS growth ${((peak - baseline) / MiB).toFixed(0)} MiB`);
  assert.equal(bytes, total);
  assert.equal(crc, expectedCrc(total));
  assert.ok(slow.drains > 1);
  assert.ok(peak - baseline < RSS_GROWTH_LIMIT, `Portico RSS grew by ${((peak - baseline) / MiB).toFixed(0)} MiB`);
  assert.ok(peak - firstBaseline < RSS_GROWTH_LIMIT, `Portico RSS is ${((peak - firstBaseline) / MiB).toFixed(0)} MiB above its warmed-up size`);
});
