// Quick mode with HTTPS: `portico proxy --from example.com --to 127.0.0.1:8000`, as
// `caddy reverse-proxy` does it. A bare host name in --from (no port) means: serve that name over
// HTTPS on 443 with an automatic certificate, and redirect plain HTTP on 80 to it. "localhost",
// "*.localhost" and IP addresses cannot get a certificate from a public CA, so they get one from
// Portico's local CA instead (`tls.internal`), which prints how to trust it the first time.
import { isIP } from 'node:net';
import type { ConfigInput } from '../config/schema.js';

/** Options of `portico proxy` that shape quick HTTPS mode. */
export interface QuickHttpsOptions {
  from: string;
  /** Default 80 / 443; tests and unprivileged users pick others. */
  httpPort?: number | undefined;
  httpsPort?: number | undefined;
  /** Interface to bind (default: all). */
  bind?: string | undefined;
  email?: string | undefined;
  acmeDirectory?: string | undefined;
  acmeCaBundle?: string | undefined;
  /** ACME storage or local CA directory. */
  storage?: string | undefined;
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** Whether --from is a bare host (HTTPS quick mode) rather than a listen address (plain HTTP). */
export function isQuickHttpsFrom(from: string): boolean {
  if (/^\d+$/.test(from) || from.startsWith('unix:') || from.startsWith(':')) return false;
  if (isIP(from) !== 0) return true;
  return !from.includes(':') && HOST_NAME.test(from);
}

/** Names served by the local CA rather than a public ACME CA. */
export function isLocalName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return isIP(h) !== 0 || h === 'localhost' || h.endsWith('.localhost');
}

/** The config parts quick HTTPS mode adds: listeners, redirect, HSTS-free TLS source, a host route. */
export function quickHttpsConfig(o: QuickHttpsOptions): Pick<ConfigInput, 'server' | 'tls'> & { host: string } {
  const host = o.from.toLowerCase().replace(/\.$/, '');
  const bind = o.bind === undefined ? '' : isIP(o.bind) === 6 ? `[${o.bind}]` : o.bind;
  const local = isLocalName(host);
  return {
    host,
    server: {
      listen: [`${bind}:${o.httpPort ?? 80}`],
      https: { listen: [`${bind}:${o.httpsPort ?? 443}`], redirect_http: true },
    },
    tls: local
      ? { internal: { names: [host], ...(o.storage ? { storage: o.storage } : {}) } }
      : {
        acme: {
          domains: [host],
          ...(o.email ? { email: o.email } : {}),
          ...(o.acmeDirectory ? { directory: o.acmeDirectory } : {}),
          ...(o.acmeCaBundle ? { ca_bundle: o.acmeCaBundle } : {}),
          ...(o.storage ? { storage: o.storage } : {}),
        },
      },
  };
}
