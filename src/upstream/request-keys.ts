// Reading one value from a request for hashing and stickiness, straight from the raw header
// list (Node then never builds req.headers) and without allocating more than the value itself.

/** The first value of header `lower` (a lower-case name), or undefined. */
export function headerValue(raw: readonly string[], lower: string): string | undefined {
  const len = lower.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === len && (name === lower || name.toLowerCase() === lower)) return raw[i + 1];
  }
  return undefined;
}

/** The value of cookie `name` from any Cookie header, or undefined. */
export function cookieValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const h = raw[i]!;
    if (h.length !== 6 || h.toLowerCase() !== 'cookie') continue;
    const v = findPair(raw[i + 1]!, name, ';');
    if (v !== undefined) return v;
  }
  return undefined;
}

/** The value of query parameter `name` in "?a=1&b=2" (not decoded: the raw bytes are the key). */
export function queryValue(query: string, name: string): string | undefined {
  return query.length < 2 ? undefined : findPair(query.slice(1), name, '&');
}

function findPair(text: string, name: string, sep: string): string | undefined {
  let start = 0;
  while (start < text.length) {
    while (text.charCodeAt(start) === 0x20) start++;
    let end = text.indexOf(sep, start);
    if (end === -1) end = text.length;
    if (text.startsWith(name, start) && text.charCodeAt(start + name.length) === 0x3d /* = */) {
      return text.slice(start + name.length + 1, end).trim();
    }
    start = end + 1;
  }
  return undefined;
}
