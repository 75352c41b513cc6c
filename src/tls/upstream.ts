// TLS toward `https://` targets: the connect options undici's Pool (and the upgrade tunnel's
// node:https request) are given, decided once per config. Verification is Node's default (on);
// `insecure_skip_verify` is the only way off, and it is logged loudly every time it is applied.
import { readFileSync } from 'node:fs';
import { rootCertificates, type ConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { UpstreamTlsConfig } from '../config/schema/tls.js';

export interface UpstreamTls {
  /** Spread into undici's `connect` and node:https request options. */
  connect: ConnectionOptions;
  /** Offer h2 via ALPN (undici Pool `allowH2`). */
  allowH2: boolean;
  /** Identifies these options in a target's pool key: a change makes a new pool. */
  key: string;
}

/** Compiles `upstreams.<name>.tls`; undefined when the section is absent (Node's defaults apply). */
export function compileUpstreamTls(name: string, tls: UpstreamTlsConfig | undefined, hasHttpsTargets: boolean, log: Logger): UpstreamTls | undefined {
  if (tls === undefined) return undefined;
  const connect: ConnectionOptions = {};
  let key = '';
  if (tls.ca !== undefined) {
    // Adds to the public roots rather than replacing them, as NODE_EXTRA_CA_CERTS does: a private
    // CA for some targets should not break the others of the same upstream.
    connect.ca = [...rootCertificates, readFileSync(tls.ca, 'utf8')];
    key += `ca=${tls.ca}:${(connect.ca.at(-1) as string).length};`;
  }
  if (tls.servername !== undefined) {
    connect.servername = tls.servername;
    key += `sni=${tls.servername};`;
  }
  if (tls.http2) key += 'h2;';
  if (tls.insecure_skip_verify) {
    connect.rejectUnauthorized = false;
    key += 'insecure;';
    if (hasHttpsTargets) {
      log.warn({ upstream: name }, `TLS certificate verification is OFF for upstream "${name}" (insecure_skip_verify): anyone between Portico and these targets can read and change the traffic`);
    }
  }
  return { connect, allowH2: tls.http2, key };
}
