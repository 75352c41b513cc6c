// Forwarding one request to a target with undici's low-level dispatch API: the response head,
// body chunks and trailers are relayed as they arrive, with backpressure both ways.
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { RequestContext } from '../server/context.js';
import type { Target } from './target.js';
import type { Upstream } from './upstream.js';
import { buildRequestHeaders, filterResponseHeaders } from './headers.js';
import { BodyTooLargeError, ClientGoneError, errorCode, isConnectionBroken, isIdempotent, statusForError } from './errors.js';

/** Sends ctx's request to `upstream`; answers the client in every outcome. */
export function forward(ctx: RequestContext, upstream: Upstream, maxBodySize: number): void {
  const target = upstream.pick(ctx);
  if (target === undefined) {
    ctx.plan.log.warn({ upstream: upstream.name, route: ctx.route?.name }, 'upstream has no available target');
    ctx.fail(503);
    return;
  }
  const inc = ctx.incoming;
  let body: Readable | AsyncIterable<Buffer> | null = null;
  if (inc.transferEncoding !== undefined || (inc.contentLength !== undefined && inc.contentLength !== '0')) {
    if (maxBodySize > 0 && inc.contentLength !== undefined && Number(inc.contentLength) > maxBodySize) {
      // Refuse before reading; close so the unread body is not drained.
      ctx.fail(413, true);
      return;
    }
    body = maxBodySize > 0 && inc.contentLength === undefined ? limitBody(ctx.req, maxBodySize) : ctx.req;
  }
  const exchange = new ProxyExchange(ctx, upstream, target, body);
  ctx.inflight = exchange;
  exchange.send();
}

async function* limitBody(source: AsyncIterable<Buffer>, limit: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.length;
    if (seen > limit) throw new BodyTooLargeError();
    yield chunk;
  }
}

/** One request's trip upstream; also the undici dispatch handler (legacy callbacks: no wrapping). */
export class ProxyExchange implements Dispatcher.DispatchHandler {
  readonly ctx: RequestContext;
  readonly upstream: Upstream;
  target: Target;
  readonly body: Readable | AsyncIterable<Buffer> | null;
  #abort: ((err?: Error) => void) | undefined = undefined;
  #resume: (() => void) | undefined = undefined;
  #sentAt = 0;
  #retried = false;
  #settled = false;
  #ended = false;
  /** The response's Content-Length (-1: none); lets the last chunk and the end go out together. */
  contentLength = -1;
  #received = 0;

  constructor(ctx: RequestContext, upstream: Upstream, target: Target, body: Readable | AsyncIterable<Buffer> | null) {
    this.ctx = ctx;
    this.upstream = upstream;
    this.target = target;
    this.body = body;
  }

  send(): void {
    const ctx = this.ctx;
    const target = this.target;
    target.inflight++;
    target.requests++;
    ctx.target = target.label;
    this.#settled = false;
    this.#received = 0;
    this.#sentAt = performance.now();
    const t = this.upstream.timeouts;
    target.pool.dispatch({
      path: ctx.path + ctx.query,
      method: ctx.req.method as Dispatcher.HttpMethod,
      headers: buildRequestHeaders(ctx, this.upstream, target),
      body: this.body as Readable | null,
      headersTimeout: t.response,
      bodyTimeout: t.read,
    }, this);
  }

  /** Called when the client goes away first. */
  cancel(): void {
    if (!this.#settled) this.#abort?.(new ClientGoneError());
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.ctx.res.destroyed) abort(new ClientGoneError());
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const ctx = this.ctx;
    if (statusCode < 200) {
      // 100 Continue is answered to the client by Node itself; 103 Early Hints is relayed.
      if (statusCode === 103) relayEarlyHints(ctx, rawHeaders);
      return true;
    }
    ctx.upstreamMs = performance.now() - this.#sentAt;
    this.#resume = resume;
    try {
      this.contentLength = -1;
      ctx.sendHead(statusCode, filterResponseHeaders(rawHeaders, ctx.plan.settings.hideResponseHeaders, this));
    } catch (err) {
      // A header Node refuses to write (invalid characters) makes the whole response invalid.
      ctx.plan.log.warn({ upstream: this.upstream.name, target: this.target.label, err: (err as Error).message }, 'invalid response head from upstream');
      this.#abort?.(err as Error);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
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
    if (ctx.res.headersSent) {
      // The head is out: the only honest signal left is to cut the connection.
      ctx.plan.log.warn({ upstream: this.upstream.name, target: this.target.label, code }, 'upstream response broke off');
      ctx.res.destroy();
      return;
    }
    // A keep-alive connection the target had closed (the race between reuse and the target's
    // idle timeout): safe to send an idempotent request without a body once more.
    if (!this.#retried && this.body === null && isConnectionBroken(code) && isIdempotent(ctx.req.method!)) {
      this.#retried = true;
      this.send();
      return;
    }
    this.target.failures++;
    const status = statusForError(code);
    if (status !== 413) ctx.plan.log.warn({ upstream: this.upstream.name, target: this.target.label, code, status }, 'upstream request failed');
    ctx.fail(status, status === 413);
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.target.inflight--;
  }
}

function relayEarlyHints(ctx: RequestContext, raw: Buffer[]): void {
  const links: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toString('latin1').toLowerCase() === 'link') links.push(raw[i + 1]!.toString('latin1'));
  }
  if (links.length > 0 && !ctx.res.headersSent) ctx.res.writeEarlyHints({ link: links });
}
