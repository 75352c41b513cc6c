// Upstream failures, classified once: what the client is told and whether a retry is safe.

/** Thrown by the body limiter when a streamed request body passes its limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'PORTICO_BODY_TOO_LARGE';
  constructor() { super('request body too large'); }
}

/** The client went away; the upstream request is cancelled with this. */
export class ClientGoneError extends Error {
  readonly code = 'PORTICO_CLIENT_GONE';
  constructor() { super('client closed the connection'); }
}

const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT', 'UND_ERR_BODY_TIMEOUT']);
/** Errors that mean the connection broke before a response: a reused keep-alive connection the target had closed looks like this. */
const CONNECTION_BROKE = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);
/** Errors where nothing reached the target: no connection was made. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EACCES', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN']);

export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  return 'UNKNOWN';
}

/** The status Portico answers with for an upstream failure before the response head. */
export function statusForError(code: string): number {
  if (code === 'PORTICO_BODY_TOO_LARGE') return 413;
  if (TIMEOUTS.has(code)) return 504;
  return 502;
}

export function isConnectionBroken(code: string): boolean {
  return CONNECTION_BROKE.has(code);
}

export function isNotConnected(code: string): boolean {
  return NOT_CONNECTED.has(code);
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}
