// The tls-alpn-01 responder (RFC 8737): the CA opens TLS to <name>:443 offering only the ALPN
// protocol "acme-tls/1" and expects a self-signed certificate for <name> carrying the key
// authorization's digest in the critical acmeIdentifier extension.
//
// Hooks for the HTTPS listener: `selectAlpn` as its ALPNCallback and `wrapSni` around its SNI
// callback. Node runs the ALPN callback first and the SNI callback (from OpenSSL's certificate
// callback) right after it, within the same ClientHello processing; so `selectAlpn` arms the
// challenge certificate for exactly the handshake that offered "acme-tls/1" for a pending name,
// and `wrapSni` hands it out only then. Browsers never see a challenge certificate, even while a
// validation is running.
import { createSecureContext, type SecureContext } from 'node:tls';

export const ACME_TLS_ALPN = 'acme-tls/1';

export type SniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;

export class TlsAlpn01Responder {
  readonly #contexts = new Map<string, SecureContext>();
  /** The name whose challenge context the handshake in progress asked for (set by selectAlpn). */
  #armed: string | undefined;

  /** Serves the challenge certificate for `name` until `remove(name)`. */
  set(name: string, cert: string | Buffer, key: string | Buffer): void {
    this.#contexts.set(name.toLowerCase(), createSecureContext({ cert, key }));
  }

  remove(name: string): void {
    this.#contexts.delete(name.toLowerCase());
  }

  get pending(): number {
    return this.#contexts.size;
  }

  /**
   * ALPN selection (`tls.createServer({ ALPNCallback })`): "acme-tls/1" when the client offers it
   * for a name with a pending challenge, else the first of `serverProtocols` the client offers
   * (undefined: no overlap, and Node ends the handshake with no_application_protocol, as it does
   * with a fixed ALPNProtocols list).
   */
  selectAlpn(servername: string | undefined, clientProtocols: readonly string[], serverProtocols: readonly string[]): string | undefined {
    this.#armed = undefined;
    if (servername && this.#contexts.size > 0 && clientProtocols.includes(ACME_TLS_ALPN)) {
      const name = servername.toLowerCase();
      if (this.#contexts.has(name)) {
        this.#armed = name;
        // Disarm after this I/O turn in case the SNI callback never runs (handshake aborted).
        setImmediate(() => { if (this.#armed === name) this.#armed = undefined; });
        return ACME_TLS_ALPN;
      }
    }
    for (const p of serverProtocols) if (clientProtocols.includes(p)) return p;
    return undefined;
  }

  /** Wraps the listener's SNI callback: the armed handshake gets the challenge certificate, all others `next`. */
  wrapSni(next: SniCallback): SniCallback {
    return (servername, cb) => {
      const armed = this.#armed;
      if (armed !== undefined && armed === servername.toLowerCase()) {
        this.#armed = undefined;
        const ctx = this.#contexts.get(armed);
        if (ctx !== undefined) { cb(null, ctx); return; }
      }
      next(servername, cb);
    };
  }
}
