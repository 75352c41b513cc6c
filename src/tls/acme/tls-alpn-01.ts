// The tls-alpn-01 responder (RFC 8737): the CA opens TLS to <name>:443 offering only the ALPN
// protocol "acme-tls/1" and expects a self-signed certificate for <name> carrying the key
// authorization's digest in the critical acmeIdentifier extension.
//
// Hook for the HTTPS listener: its SNI callback asks `contextFor(servername)` first, and its ALPN
// selection accepts "acme-tls/1" only when `isAcmeAlpn(protocols)` (the client offered nothing
// else, which is how validators behave) — `selectAlpn()` does both for a server using ALPNCallback.
// The challenge context is handed out only while a challenge for that name is pending (see
// `wrapSni` for why that is the narrowest window Node allows).
import { createSecureContext, type SecureContext } from 'node:tls';

export const ACME_TLS_ALPN = 'acme-tls/1';

type SniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;

export class TlsAlpn01Responder {
  readonly #contexts = new Map<string, SecureContext>();

  /** Serves the challenge certificate for `name` until `remove(name)`. */
  set(name: string, cert: string | Buffer, key: string | Buffer): void {
    // ALPN is chosen by the server (selectAlpn), not by the context, so the context is just cert + key.
    this.#contexts.set(name.toLowerCase(), createSecureContext({ cert, key }));
  }

  remove(name: string): void {
    this.#contexts.delete(name.toLowerCase());
  }

  get pending(): number {
    return this.#contexts.size;
  }

  /** The challenge context for `servername`, if one is pending. */
  contextFor(servername: string): SecureContext | undefined {
    return this.#contexts.size === 0 ? undefined : this.#contexts.get(servername.toLowerCase());
  }

  /**
   * ALPN selection for `tls.createServer({ ALPNCallback })`: "acme-tls/1" when the client offers
   * it and a challenge is pending for its name, else the first of `serverProtocols` the client
   * offers (undefined: no overlap; Node then ends the handshake with no_application_protocol).
   */
  selectAlpn(servername: string | undefined, clientProtocols: readonly string[], serverProtocols: readonly string[]): string | undefined {
    if (servername && clientProtocols.includes(ACME_TLS_ALPN) && this.contextFor(servername)) return ACME_TLS_ALPN;
    for (const p of serverProtocols) if (clientProtocols.includes(p)) return p;
    return undefined;
  }

  /**
   * Wraps an SNI callback: a pending challenge name gets the challenge certificate, everything
   * else goes to `next` (the certificate store). Node runs SNI before ALPN, so this cannot see
   * whether the client offered "acme-tls/1"; the window is the few seconds a validation takes,
   * and for a name that has no certificate yet there is nothing better to serve anyway.
   */
  wrapSni(next: SniCallback): SniCallback {
    return (servername, cb) => {
      const ctx = this.contextFor(servername);
      if (ctx !== undefined) cb(null, ctx);
      else next(servername, cb);
    };
  }
}
