// The server's single pass over a request's raw headers: it picks out what routing, forwarding
// and logging need, without building Node's lower-cased headers object.
import { IncomingHeads } from './context.js';

/** ASCII case-insensitive equality against a lower-case literal, without allocating. */
function is(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function join(prev: string | undefined, value: string): string {
  return prev === undefined ? value : `${prev}, ${value}`;
}

/** Fills `h` from `raw`; returns false for a request that must be refused (duplicate Host). */
export function scanHeaders(raw: string[], h: IncomingHeads, requestIdHeader: string | undefined): boolean {
  // HTTP/2: the pseudo-header :authority (always before regular headers) is the Host.
  let authority = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    switch (name.length) {
      case 4:
        if (is(name, 'host')) {
          // RFC 9112 §3.2: more than one Host is a 400. Over HTTP/2 a Host equal to :authority
          // is allowed; a different one is not (RFC 9113 §8.3.1).
          if (h.host !== undefined && !(authority && h.host === value)) return false;
          h.host = value;
        }
        break;
      case 6:
        if (is(name, 'accept')) h.accept = value;
        break;
      case 7:
        if (is(name, 'referer')) h.referer = value;
        break;
      case 3:
        if (is(name, 'via')) h.via = join(h.via, value);
        break;
      case 9:
        if (is(name, 'forwarded')) h.forwarded = join(h.forwarded, value);
        break;
      case 10:
        if (is(name, 'connection')) h.connection = join(h.connection, value);
        else if (is(name, 'user-agent')) h.userAgent = value;
        else if (name === ':authority') { h.host = value; authority = true; }
        break;
      case 14:
        if (is(name, 'content-length')) h.contentLength = value;
        break;
      case 15:
        if (is(name, 'x-forwarded-for')) h.xff = join(h.xff, value);
        break;
      case 16:
        if (is(name, 'x-forwarded-host')) h.xfh ??= value;
        break;
      case 17:
        if (is(name, 'x-forwarded-proto')) h.xfp ??= value;
        else if (is(name, 'transfer-encoding')) h.transferEncoding = join(h.transferEncoding, value);
        break;
    }
    if (requestIdHeader !== undefined && name.length === requestIdHeader.length && is(name, requestIdHeader)) h.requestId = value;
  }
  return true;
}
