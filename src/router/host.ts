/** Lower-cases a Host header value and drops the port and a trailing dot. */
export function normalizeHost(host: string | undefined): string {
  if (!host) return '';
  let end = host.length;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const close = host.indexOf(']');
    return close === -1 ? host.toLowerCase() : host.slice(0, close + 1).toLowerCase();
  }
  const colon = host.lastIndexOf(':');
  if (colon !== -1) end = colon;
  if (host.charCodeAt(end - 1) === 0x2e) end--;
  const name = end === host.length ? host : host.slice(0, end);
  // Most hosts are already lower case; avoid the copy when they are.
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return name.toLowerCase();
  }
  return name;
}
