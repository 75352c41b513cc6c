// Forwarding one request to a target with undici's low-level dispatch API: the response head,
// body chunks and trailers are relayed as they arrive, with backpressure both ways. A failed
// attempt is retried on another target when that is safe (retry.ts), and every outcome feeds
// passive health (health-passive.ts).
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { RequestContext } from '../server/context.js';
import type { Target } from './target.js';
import type { Upstream } from './upstream.js';
import { recordFailure, type FailureKind } from './health-passive.js';
import { buildRequestHeaders, filterResponseHeaders } from './headers.js';
import { h2HasBody } from '../server/https.js';
import { BodyTooLargeError, ClientGoneError, errorCode, isConnectionBroken, isIdempotent, isNotConnected, statusForError } from './errors.js';

type Body = Readable | AsyncIterable<Buffer> | Buffer | null;

/** Sends ctx's request to `upstream`; answers the client in every outcome. */
export function forward(ctx: RequestContext, upstream: Upstream, maxBodySize: number): void {
  const sticky = upstream.sticky;
  const cookie = sticky === undefined ? undefined : sticky.read(ctx.req.rawHeaders);
  const target = upstream.pick(ctx, undefined, cookie);
  if (target === undefined) {
    upstream.unavailable(ctx);
    return;
  }
  const retry = upstream.retry;
  retry.deposit();
  const inc = ctx.incoming;
  let body: Body = null;
  let buffer = false;
  if (inc.transferEncoding !== undefined || (inc.contentLength !== undefined && inc.contentLength !== '0') || (ctx.req.httpVersionMajor === 2 && h2HasBody(ctx.req))) {
    const length = inc.contentLength === undefined ? -1 : Number(inc.contentLength);
    if (maxBodySize > 0 && length > maxBodySize) {
      // Refuse before reading; close so the unread body is not drained.
      ctx.fail(413, true);
      return;
    }
    // The client waits for this before it sends the body (Expect: 100-continue).
    if (ctx.expectContinue) ctx.res.writeContinue();
    body = maxBodySize > 0 && length === -1 ? limitBody(ctx.req, maxBodySize) : ctx.req;
    // A body small enough is read whole first, so a retry can send it again.
    buffer = retry.bufferBody > 0 && length > 0 && length <= retry.bufferBody && inc.transferEncoding === undefined;
  }
  const exchange = new ProxyExchange(ctx, upstream, target, body, cookie);
  ctx.inflight = exchange;
  if (!buffer) {
    exchange.send();
    return;
  }
  readWhole(ctx.req).then((buf) => {
    exchange.body = buf;
    exchange.send();
  }, () => ctx.fail(400, true));
}

async function* limitBody(source: AsyncIterable<Buffer>, limit: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.length;
    if (seen > limit) throw new BodyTooLargeError();
    yield chunk;
  }
}

function readWhole(req: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** One request's trip upstream; also the undici dispatch handler (legacy callbacks: no wrapping). */
export class ProxyExchange implements Dispatcher.DispatchHandler {
  readonly ctx: RequestContext;
  readonly upstream: Upstream;
  target: Target;
  body: Body;
  /** The sticky cookie the client sent (unchecked), to know whether to set it. */
  readonly cookie: string | undefined;
  #abort: ((err?: Error) => void) | undefined = undefined;
  #resume: (() => void) | undefined = undefined;
  #sentAt = 0;
  #firstSentAt = 0;
  /** The stale keep-alive resend was used. */
  #retried = false;
  #settled = false;
  #ended = false;
  /** Attempts started, the stale keep-alive resend not counted. */
  #attempt = 1;
  /** Targets tried so far; allocated on the first retry only. */
  #tried: Target[] | undefined = undefined;
  /** A retryable status is being read and dropped; then `#next` gets the request. */
  #discard = false;
  #next: Target | undefined = undefined;
  /** The response's Content-Length (-1: none); lets the last chunk and the end go out together. */
  contentLength = -1;
  #received = 0;
  /** Our own timer for short per-try limits (see PRECISE_BELOW). */
  #timer: NodeJS.Timeout | undefined = undefined;
  #timedOut = false;

  constructor(ctx: RequestContext, upstream: Upstream, target: Target, body: Body, cookie: string | undefined) {
    this.ctx = ctx;
    this.upstream = upstream;
    this.target = target;
    this.body = body;
    this.cookie = cookie;
  }

  send(): void {
    const ctx = this.ctx;
    const target = this.target;
    target.inflight++;
    target.requests++;
    ctx.target = target.label;
    this.#settled = false;
    this.#received = 0;
    const now = performance.now();
    this.#sentAt = now;
    const retry = this.upstream.retry;
    let headersTimeout = retry.tryTimeout;
    if (retry.deadline > 0) {
      if (this.#firstSentAt === 0) this.#firstSentAt = now;
      const left = Math.max(1, Math.ceil(retry.deadline - (now - this.#firstSentAt)));
      if (headersTimeout === 0 || left < headersTimeout) headersTimeout = left;
    }
    if (headersTimeout > 0 && headersTimeout < PRECISE_BELOW) {
      this.#timedOut = false;
      this.#timer = setTimeout(onTryTimeout, headersTimeout, this);
    }
    target.pool.dispatch({
      path: ctx.path + ctx.query,
      method: ctx.req.method as Dispatcher.HttpMethod,
      headers: buildRequestHeaders(ctx, this.upstream, target),
      body: this.body as Readable | null,
      headersTimeout,
      bodyTimeout: this.upstream.timeouts.read,
    }, this);
  }

  /** Called when the client goes away first. */
  cancel(): void {
    if (!this.#settled) this.#abort?.(new ClientGoneError());
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.ctx.res.destroyed) abort(new ClientGoneError());
    else if (this.#timedOut) abort(tryTimeoutError());
  }

  /** The per-try limit passed before the response head (our timer). */
  timeout(): void {
    this.#timer = undefined;
    if (this.#settled) return;
    this.#timedOut = true;
    this.#abort?.(tryTimeoutError());
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const ctx = this.ctx;
    if (statusCode < 200) {
      // 100 Continue is answered to the client by Node itself; 103 Early Hints is relayed.
      if (statusCode === 103) relayEarlyHints(ctx, rawHeaders);
      return true;
    }
    if (this.#timer !== undefined) { clearTimeout(this.#timer); this.#timer = undefined; }
    const up = this.upstream;
    const target = this.target;
    if (up.passive !== undefined && up.passive.countsStatus(statusCode)) this.#failed(target, `status ${statusCode}`, true);
    else target.consecutiveFailures = 0;
    if (up.retry.retriesStatus(statusCode) && this.#mayRetry(false)) {
      // Read the answer to the end (the connection stays reusable) and send the request elsewhere.
      this.#discard = true;
      return true;
    }
    ctx.upstreamMs = performance.now() - this.#sentAt;
    this.#resume = resume;
    try {
      this.contentLength = -1;
      const headers = filterResponseHeaders(rawHeaders, ctx.plan.settings.hideResponseHeaders, this);
      if (up.sticky !== undefined) {
        const set = up.sticky.setCookieFor(target, this.cookie, ctx.scheme === 'https');
        if (set !== undefined) headers.push('set-cookie', set);
      }
      ctx.sendHead(statusCode, headers);
    } catch (err) {
      // A header Node refuses to write (invalid characters) makes the whole response invalid.
      ctx.plan.log.warn({ upstream: up.name, target: target.label, err: (err as Error).message }, 'invalid response head from upstream');
      this.#abort?.(err as Error);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#discard) return true;
    const res = this.ctx.res;
    this.ctx.bytesSent += chunk.length;
    this.#received += chunk.length;
    if (this.#received === this.contentLength) {
      // The whole body is here: head, body and end leave in one write.
      this.#ended = true;
      res.end(chunk);
      return true;
    }
    if (res.write(chunk)) return true;
    res.once('drain', this.#resume!);
    return false;
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    this.#settle();
    if (this.#discard) {
      this.#discard = false;
      if (this.ctx.res.destroyed) return;
      this.#retryNow();
      return;
    }
    const res = this.ctx.res;
    if (this.#ended) return;
    if (trailers !== null && trailers.length > 0 && res.chunkedEncoding) {
      const list: [string, string][] = [];
      for (let i = 0; i < trailers.length; i += 2) list.push([trailers[i]!.toString('latin1'), trailers[i + 1]!.toString('latin1')]);
      res.addTrailers(list);
    }
    res.end();
  }

  onError(err: Error): void {
    this.#settle();
    const ctx = this.ctx;
    const code = errorCode(err);
    if (code === 'PORTICO_CLIENT_GONE' || ctx.res.destroyed) return;
    const target = this.target;
    const up = this.upstream;
    if (code === 'PORTICO_BODY_TOO_LARGE') {
      ctx.fail(413, true);
      return;
    }
    if (ctx.res.headersSent && !this.#discard) {
      // The head is out: the only honest signal left is to cut the connection.
      this.#failed(target, code, up.passive?.onReset === true);
      ctx.plan.log.warn({ upstream: up.name, target: target.label, code }, 'upstream response broke off');
      ctx.res.destroy();
      return;
    }
    this.#discard = false;
    // A keep-alive connection the target had closed (the race between reuse and the target's
    // idle timeout): safe to send an idempotent request without a body once more, same target.
    if (!this.#retried && this.body === null && isConnectionBroken(code) && isIdempotent(ctx.req.method!)) {
      this.#retried = true;
      this.send();
      return;
    }
    const kind: FailureKind = isNotConnected(code) || code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED'
      ? 'connect' : statusForError(code) === 504 ? 'timeout' : 'reset';
    this.#failed(target, code, up.passive?.countsKind(kind) === true);
    if (up.retry.retriesKind(kind) && this.#mayRetry(kind === 'connect')) {
      ctx.plan.log.debug({ upstream: up.name, target: target.label, code, next: this.#next!.label }, 'upstream attempt failed, retrying');
      this.#retryNow();
      return;
    }
    const status = statusForError(code);
    ctx.plan.log.warn({ upstream: up.name, target: target.label, code, status, attempts: this.#attempt }, 'upstream request failed');
    ctx.fail(status, false);
  }

  #failed(target: Target, reason: string, counts: boolean): void {
    recordFailure(target, this.upstream.passive, reason, counts);
  }

  /**
   * Whether another attempt may go out, and to which target (kept in #next). `nothingSent`:
   * the failure happened before the request reached the target, so any method may be resent.
   */
  #mayRetry(nothingSent: boolean): boolean {
    const up = this.upstream;
    const r = up.retry;
    if (this.#attempt >= r.attempts) return false;
    const body = this.body;
    const replayable = body === null || Buffer.isBuffer(body) || (nothingSent && !this.ctx.req.readableDidRead);
    if (!replayable) return false;
    if (!nothingSent && !r.nonIdempotent && !isIdempotent(this.ctx.req.method!)) return false;
    if (r.deadline > 0 && performance.now() - this.#firstSentAt >= r.deadline) return false;
    const tried = this.#tried ??= [this.target];
    const next = up.pick(this.ctx, tried);
    if (next === undefined || !r.withdraw()) return false;
    this.#next = next;
    return true;
  }

  #retryNow(): void {
    const next = this.#next!;
    this.#next = undefined;
    this.target.retries++;
    this.#attempt++;
    this.#tried!.push(next);
    this.target = next;
    this.send();
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#timer !== undefined) { clearTimeout(this.#timer); this.#timer = undefined; }
    this.target.inflight--;
  }
}

/**
 * undici runs its headers timeout on coarse timers (about a second of resolution), which is
 * cheap and fine for the default 60 s; a per-try limit or deadline below this gets a timer of its
 * own so it fires when configured.
 */
const PRECISE_BELOW = 3_000;

function onTryTimeout(exchange: ProxyExchange): void {
  exchange.timeout();
}

function tryTimeoutError(): Error {
  return Object.assign(new Error('upstream did not answer within the per-try limit'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
}

function relayEarlyHints(ctx: RequestContext, raw: Buffer[]): void {
  const links: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toString('latin1').toLowerCase() === 'link') links.push(raw[i + 1]!.toString('latin1'));
  }
  if (links.length > 0 && !ctx.res.headersSent) ctx.res.writeEarlyHints({ link: links });
}
