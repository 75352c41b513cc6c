// Replays the llhttp request corpus (../shared/corpus/llhttp-requests.jsonl, see its README)
// against Portico in front of a recording backend, one connection per case.
//
// What must hold, per case:
// - the backend never gets bytes it cannot parse (its own strict llhttp reports no error);
// - strictly invalid input (llhttp_error set, other than the CONNECT/Upgrade/PRI pauses, which
//   mark a valid head after which the bytes stop being HTTP): the client gets a 4xx or a close,
//   and the backend gets at most the complete requests llhttp parsed *before* the error (e.g.
//   "Data after `Connection: close`": the first request is valid, what follows is not) — never
//   anything from the invalid part;
// - valid input (strict cases): the backend gets exactly `llhttp_messages` complete requests, one
//   200 per request goes back to the client, and nothing more reaches the backend. Portico may
//   refuse a valid-but-unusual request with a 4xx (or 501 for a transfer coding it cannot pass
//   on) before anything reaches the backend (refusing is safe; forwarding something else than
//   what was parsed is smuggling); each such case is listed in ALLOWED_REFUSALS with the reason.
//   HTTP/1.1 requests without Host are refused by rule (RFC 9112 §3.2), so a second pass replays
//   them with a Host line added, where they must be forwarded;
// - lenient-mode cases and cases with llhttp test flags (e.g. skipBody; Portico parses strictly):
//   the backend gets at most what llhttp found, and only requests it can parse;
// - every request that reaches the backend through Portico equals, in method, body, target and
//   upgrade, the request at the same position when the same bytes go straight to the backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startPortico, proxyAll, type RunningPortico } from './helpers.js';
import { rawExchange, startRecordingBackend, statusesOf, waitFor, type RecordedRequest, type RecordingBackend } from './helpers-core.js';

interface Case {
  id: number;
  file: string;
  title: string;
  type: string;
  raw_b64: string;
  llhttp_messages: number;
  llhttp_error: string | null;
  meta?: Record<string, unknown>;
}

// dist/test/corpus.test.js -> <repo>/../shared/corpus (shared/ sits beside the clone, in CI too).
const CORPUS = fileURLToPath(new URL('../../../shared/corpus/llhttp-requests.jsonl', import.meta.url));
const cases: Case[] = readFileSync(CORPUS, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Case);

/** llhttp's "errors" that are pauses after a valid head: CONNECT / Upgrade (22) and PRI (23). */
function isPause(error: string | null): boolean {
  return error !== null && /^code=(22|23) /.test(error);
}

/**
 * Valid requests Portico answers with a 4xx (or 501) instead of forwarding, and why that is right.
 * Keyed by case id; the title is checked too, so a changed corpus is noticed.
 */
const ALLOWED_REFUSALS: Record<number, { title: string; reason: string }> = {
  78: { title: 'CONNECT request', reason: 'Portico is a reverse proxy, not a forward proxy: CONNECT gets 405' },
  79: { title: 'CONNECT request with CAPS', reason: 'CONNECT gets 405' },
  80: { title: 'CONNECT with body', reason: 'CONNECT gets 405' },
  164: { title: 'Underscore in hostname', reason: 'a CONNECT request: 405' },
  81: { title: 'M-SEARCH request', reason: 'asterisk-form target ("*"): there is no path to route on; SSDP is not proxied over TCP' },
  90: { title: 'ANNOUNCE request with RTSP', reason: 'an RTSP-only method: not an HTTP request, refused rather than forwarded as one' },
  144: { title: 'POST with `chunked` as last transfer-encoding', reason: '"deflate, chunked": Node removes only the chunked coding and the upstream would get deflate-coded bytes as plain content; 501 (RFC 9112 §6.1)' },
  145: { title: 'POST with `chunked` as last transfer-encoding (multiple headers)', reason: 'the same, with two Transfer-Encoding lines: 501' },
};

/** Parsed with llhttp test flags that change framing (e.g. skipBody): only "no more than" holds. */
function nonStandardFraming(c: Case): boolean {
  return c.meta !== undefined && Object.keys(c.meta).some((k) => k !== 'type');
}

const REQUEST_LINE = /(^|\n)((?:\r\n)*[A-Z-]+ \S+ HTTP\/1\.1\r\n)(?![ \t])/g;

/** HTTP/1.1 requests without Host get 400 (RFC 9112 §3.2: a server MUST answer 400). */
function lacksHost(raw: string): boolean {
  return /HTTP\/1\.1\r?\n/.test(raw) && !/\nhost:/i.test(raw);
}

/**
 * The same bytes with "Host: corpus.test" after every HTTP/1.1 request line, so that the many
 * Host-less cases exercise framing instead of stopping at the Host check.
 */
function withHost(raw: string): string {
  return raw.replace(REQUEST_LINE, '$1$2Host: corpus.test\r\n');
}

interface Outcome {
  c: Case; statuses: number[]; closed: boolean; completed: number; heads: number; parseErrors: string[];
  /** What the backend got behind Portico, and what the same backend gets from the bytes directly. */
  got: RecordedRequest[]; direct: RecordedRequest[];
}

const LANES = 4;
interface Lane { backend: RecordingBackend; portico: RunningPortico; reference: RecordingBackend }
const lanes: Lane[] = [];
const verbatim: Outcome[] = [];
const hosted: Outcome[] = [];

async function replay(lane: Lane, c: Case, bytes: Buffer): Promise<Outcome> {
  // The reference: the same bytes sent straight to a Node backend (strict llhttp, as Portico's
  // own parser), so what reaches the backend through Portico can be compared request by request.
  lane.reference.reset();
  await rawExchange(lane.reference.port, bytes, { idleMs: 150, maxMs: 3_000 });
  const direct = [...lane.reference.completed];
  lane.backend.reset();
  // On a busy machine a response can lag its backend request: wait until every request the
  // backend completed has its answer at the client (or the 5 s cap), not just for a quiet spell.
  const answered = (data: string) => statusesOf(data).filter((st) => st === 200 || st === 101).length >= lane.backend.completed.length;
  const r = await rawExchange(lane.portico.port, bytes, { idleMs: 250, maxMs: 5_000, settled: answered });
  // Let an aborted or in-flight upstream request settle before reading the records.
  await waitFor(() => lane.backend.heads === lane.backend.completed.length, 300);
  await new Promise((res) => setTimeout(res, 30));
  return {
    c, statuses: statusesOf(r.data), closed: r.closedByServer,
    completed: lane.backend.completed.length, heads: lane.backend.heads, parseErrors: [...lane.backend.parseErrors],
    got: [...lane.backend.completed], direct,
  };
}

before(async () => {
  for (let i = 0; i < LANES; i++) {
    const backend = await startRecordingBackend();
    const portico = await startPortico(proxyAll([backend.url], {
      server: { timeouts: { header: '3s', keepalive: '2s' } },
      upstreams: { app: { targets: [backend.url], timeouts: { response: '2s' } } },
    }));
    lanes.push({ backend, portico, reference: await startRecordingBackend() });
  }
  // Each lane replays its share of the cases one after another, so backend records are per case.
  await Promise.all(lanes.map(async (lane, li) => {
    for (let k = li; k < cases.length; k += LANES) {
      const c = cases[k]!;
      const raw = Buffer.from(c.raw_b64, 'base64');
      verbatim.push(await replay(lane, c, raw));
      const text = raw.toString('latin1');
      if (isValid(c) && lacksHost(text)) hosted.push(await replay(lane, c, Buffer.from(withHost(text), 'latin1')));
    }
  }));
  verbatim.sort((a, b) => a.c.id - b.c.id);
  hosted.sort((a, b) => a.c.id - b.c.id);
});

after(async () => {
  for (const { backend, portico, reference } of lanes) { await portico.close(); await backend.close(); await reference.close(); }
});

function isValid(c: Case): boolean {
  return c.llhttp_error === null || isPause(c.llhttp_error);
}

function describe(o: Outcome): string {
  return `#${o.c.id} "${o.c.title}" (${o.c.type}, llhttp: ${o.c.llhttp_messages} msg, ${o.c.llhttp_error ?? 'ok'}): ` +
    `client got [${o.statuses.join(',')}]${o.closed ? ' + close' : ''}, backend completed ${o.completed} (heads ${o.heads})` +
    `${o.parseErrors.length ? `, backend parse errors ${o.parseErrors.join(',')}` : ''}`;
}

/** A refusal: a 4xx, or 501 for a transfer coding Portico does not forward. */
function isRefusal(status: number): boolean {
  return (status >= 400 && status < 500) || status === 501;
}

/** Everything wrong with one outcome; `hostAdded` for the second pass. */
function problems(o: Outcome, hostAdded: boolean): string[] {
  const c = o.c;
  const out: string[] = [];
  const forwarded = o.statuses.filter((s) => s === 200 || s === 101).length;
  if (o.parseErrors.length > 0) out.push('the backend received bytes it cannot parse');
  if (o.completed > c.llhttp_messages) out.push(`the backend got ${o.completed} requests, llhttp parses ${c.llhttp_messages}`);
  if (forwarded !== o.completed) out.push(`${forwarded} backend answers reached the client for ${o.completed} backend requests`);
  if (o.statuses.some((s) => s >= 500 && s !== 501)) out.push('a 5xx: Portico forwarded something the backend could not handle');
  out.push(...differences(o));
  if (!isValid(c)) {
    const last = o.statuses[o.statuses.length - 1];
    if (!o.closed && !(last !== undefined && last >= 400 && last < 500)) out.push('invalid input got neither a 4xx nor a close');
    return out;
  }
  if (c.type !== 'request' || nonStandardFraming(c)) return out; // lenient/flagged: "no more than" only
  if (o.completed < c.llhttp_messages) {
    const refusal = o.statuses[o.completed];
    const allowed = ALLOWED_REFUSALS[c.id];
    const explained = (allowed !== undefined && allowed.title === c.title) || (!hostAdded && lacksHost(Buffer.from(c.raw_b64, 'base64').toString('latin1')));
    if (refusal === undefined || !isRefusal(refusal)) out.push(`only ${o.completed} of ${c.llhttp_messages} requests forwarded and no 4xx for the rest`);
    else if (!explained) out.push(`a valid request was refused with ${refusal} (add it to ALLOWED_REFUSALS with a reason if that is right)`);
  }
  return out;
}

/** Origin-form of a request target as Portico forwards it (absolute-form becomes origin-form). */
function originForm(url: string): string {
  if (url.startsWith('/')) return url;
  try { const u = new URL(url); return u.pathname + u.search; } catch { return url; }
}

/** A target Portico forwards unchanged (nothing its normaliser rewrites). */
function plainTarget(url: string): boolean {
  const path = url.split('?')[0]!;
  return !/%|\\|\/\.|\/\//.test(path);
}

/**
 * Each request that reached the backend through Portico is the request a direct parse of the
 * same bytes finds at the same position: same method, same body, same target, same upgrade.
 */
function differences(o: Outcome): string[] {
  const out: string[] = [];
  if (o.got.length > o.direct.length) out.push(`through Portico the backend got ${o.got.length} requests, directly ${o.direct.length}`);
  o.got.forEach((g, i) => {
    const d = o.direct[i];
    if (d === undefined) return;
    if (g.method !== d.method) out.push(`request ${i}: method ${g.method}, directly ${d.method}`);
    if (!g.body.equals(d.body)) out.push(`request ${i}: body ${JSON.stringify(g.body.toString('latin1'))}, directly ${JSON.stringify(d.body.toString('latin1'))}`);
    if (g.upgrade !== d.upgrade) out.push(`request ${i}: upgrade ${g.upgrade}, directly ${d.upgrade}`);
    const want = originForm(d.url);
    if (plainTarget(want) && g.url !== want) out.push(`request ${i}: target ${g.url}, directly ${d.url}`);
  });
  return out;
}

test('the corpus is there and was replayed in full', () => {
  assert.ok(cases.length >= 100, `expected the llhttp corpus at ${CORPUS}`);
  assert.equal(verbatim.length, cases.length);
  assert.ok(hosted.length > 30, 'the Host-added pass covers the Host-less valid cases');
  const compared = [...verbatim, ...hosted].reduce((n, o) => n + Math.min(o.got.length, o.direct.length), 0);
  assert.ok(compared >= 60, `requests compared with a direct parse: ${compared}`);
});

test('corpus as is: invalid input refused, valid input forwarded exactly, nothing smuggled', () => {
  const failures = verbatim.flatMap((o) => problems(o, false).map((p) => `${describe(o)}\n    -> ${p}`));
  assert.deepEqual(failures, []);
});

test('corpus with Host added to Host-less HTTP/1.1 requests: every valid request reaches the backend exactly once', () => {
  const failures = hosted.flatMap((o) => problems(o, true).map((p) => `${describe(o)}\n    -> ${p}`));
  assert.deepEqual(failures, []);
});

test('the allowed refusals are still refusals (the list does not hide forwarded cases)', () => {
  for (const [id, { title }] of Object.entries(ALLOWED_REFUSALS)) {
    const o = verbatim.find((x) => x.c.id === Number(id));
    assert.ok(o, `case ${id} exists`);
    assert.equal(o.c.title, title);
    assert.equal(o.completed, 0, describe(o));
  }
});

if (process.env.CORPUS_DUMP) {
  test('dump', () => { for (const o of [...verbatim, ...hosted]) console.log(describe(o)); });
}
