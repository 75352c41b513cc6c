// The http-01 responder (RFC 8555 §8.3): while a challenge is pending, the CA fetches
// http://<name>/.well-known/acme-challenge/<token> on port 80 and expects the key authorization.
//
// The plain HTTP listener asks `handle()` before routing, so the answer cannot be shadowed by a
// route, a redirect to HTTPS or an auth handler. Requests outside the challenge path cost one
// `startsWith` and fall through.
import type { IncomingMessage, ServerResponse } from 'node:http';

export const HTTP01_PREFIX = '/.well-known/acme-challenge/';

/** Tokens are base64url (RFC 8555 §8.1); anything else is not ours to answer. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

export class Http01Responder {
  readonly #tokens = new Map<string, string>();

  /** Makes `token` answer `keyAuthorization` until `remove(token)`. */
  set(token: string, keyAuthorization: string): void {
    this.#tokens.set(token, keyAuthorization);
  }

  remove(token: string): void {
    this.#tokens.delete(token);
  }

  get pending(): number {
    return this.#tokens.size;
  }

  /**
   * Answers `req` if it is an ACME challenge request and returns true; returns false (and touches
   * nothing) otherwise. Unknown tokens get a 404 here rather than going to the routes: the path is
   * reserved for the CA, and a backend answering it could only confuse validation.
   */
  readonly handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url;
    if (url === undefined || !url.startsWith(HTTP01_PREFIX)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const q = url.indexOf('?');
    const token = url.slice(HTTP01_PREFIX.length, q === -1 ? undefined : q);
    const answer = TOKEN.test(token) ? this.#tokens.get(token) : undefined;
    const body = answer ?? 'no such ACME challenge\n';
    res.writeHead(answer === undefined ? 404 : 200, {
      'content-type': answer === undefined ? 'text/plain; charset=utf-8' : 'application/octet-stream',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
