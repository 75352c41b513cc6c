// Who the client is. The TCP peer, unless the peer is a trusted proxy: then the X-Forwarded-For
// chain is read right to left, skipping trusted hops, and the first untrusted address is the client.
import { isIP, type Socket } from 'node:net';
import type { ServerSettings } from '../config/plan.js';

export interface Peer {
  ip: string;
  trusted: boolean;
}

const kPeer = Symbol('portico.peer');
type SocketWithPeer = Socket & { [kPeer]?: Peer; [kPeerGeneration]?: ServerSettings };
const kPeerGeneration = Symbol('portico.peerSettings');

/** The socket's peer, computed once per connection (and again only if the settings changed). */
export function peerOf(socket: Socket, settings: ServerSettings): Peer {
  const s = socket as SocketWithPeer;
  const cached = s[kPeer];
  if (cached !== undefined && s[kPeerGeneration] === settings) return cached;
  let ip = s.remoteAddress;
  let trusted: boolean;
  if (ip === undefined) {
    // Unix-socket clients have no address.
    ip = 'unix';
    trusted = settings.trustUnixPeers;
  } else {
    if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
    trusted = isTrusted(ip, settings);
  }
  const peer = { ip, trusted };
  s[kPeer] = peer;
  s[kPeerGeneration] = settings;
  return peer;
}

function isTrusted(ip: string, settings: ServerSettings): boolean {
  const list = settings.trustedProxies;
  if (list === undefined) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

/** The real client from a trusted peer's X-Forwarded-For chain. */
export function clientFromChain(xff: string, peerIp: string, settings: ServerSettings): string {
  const hops = xff.split(',');
  let client = peerIp;
  for (let i = hops.length - 1; i >= 0; i--) {
    let hop = hops[i]!.trim();
    if (hop.startsWith('[')) hop = hop.slice(1, hop.indexOf(']'));
    else if (hop.includes('.') && hop.includes(':')) hop = hop.slice(0, hop.lastIndexOf(':'));
    if (isIP(hop) === 0) break; // garbage in the chain: stop at the last address we could trust
    client = hop;
    if (!isTrusted(hop, settings)) break;
  }
  return client;
}
