// Request-target normalisation, done once per request before routing, so that every later
// decision (route, strip_prefix, policies) sees the same path the upstream will receive.
// `/api/../admin`, `/api/%2e%2e/admin` and `//admin` all become `/admin`.

export type EncodedSlashes = 'decode' | 'reject' | 'keep';

export interface PathOptions {
  mergeSlashes: boolean;
  encodedSlashes: EncodedSlashes;
}

/** The normalised path, or undefined when the request target is unusable (answer 400). */
export function normalizePath(rawPath: string, opts: PathOptions): string | undefined {
  // Fast path: nothing to decode or resolve (the common case).
  if (!needsWork(rawPath, opts.mergeSlashes)) return rawPath;
  let path = rawPath;
  if (path.includes('%')) {
    const decoded = decodeSafe(path, opts.encodedSlashes);
    if (decoded === undefined) return undefined;
    path = decoded;
  }
  return removeDotSegments(path, opts.mergeSlashes);
}

function needsWork(path: string, mergeSlashes: boolean): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */) return true;
    if (c === 0x2e /* . */ && path.charCodeAt(i - 1) === 0x2f) return true;
    if (c === 0x2f /* / */ && mergeSlashes && path.charCodeAt(i + 1) === 0x2f) return true;
    if (c === 0x5c /* \ */) return true;
  }
  return false;
}

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isUnreserved(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) ||
    b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}

/**
 * Decodes percent-encoded unreserved characters (RFC 3986 §6.2.2.2: equivalent either way),
 * upper-cases the rest, and handles encoded slashes per policy. Rejects malformed escapes and
 * encoded NUL.
 */
function decodeSafe(path: string, encodedSlashes: EncodedSlashes): string | undefined {
  let out = '';
  let last = 0;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return undefined;
    const byte = hi * 16 + lo;
    if (byte === 0) return undefined;
    let replacement: string;
    if (isUnreserved(byte)) {
      replacement = String.fromCharCode(byte);
    } else if (byte === 0x2f || byte === 0x5c) {
      if (encodedSlashes === 'reject') return undefined;
      replacement = encodedSlashes === 'decode' ? '/' : `%${HEX[hi]}${HEX[lo]}`;
    } else {
      replacement = `%${HEX[hi]}${HEX[lo]}`;
    }
    out += path.slice(last, i) + replacement;
    last = i + 3;
    i += 2;
  }
  return out + path.slice(last);
}

/** RFC 3986 §5.2.4 on an absolute path; a backslash counts as a separator, as many servers treat it. */
function removeDotSegments(path: string, mergeSlashes: boolean): string {
  const segments = path.replaceAll('\\', '/').split('/');
  const out: string[] = [];
  // segments[0] is the empty string before the leading "/".
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    const isLast = i === segments.length - 1;
    if (seg === '.') { if (isLast) out.push(''); continue; }
    if (seg === '..') { out.pop(); if (isLast) out.push(''); continue; }
    if (seg === '' && mergeSlashes && !isLast) continue;
    out.push(seg);
  }
  return '/' + out.join('/');
}
