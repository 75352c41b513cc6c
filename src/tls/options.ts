// The TLS policy of Portico's HTTPS listeners, decided once per config: protocol versions,
// cipher suites, curves, and session resumption with ticket keys that are replaced periodically.
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import { constants } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import type { TlsConfig } from '../config/schema/tls.js';

/**
 * TLS 1.2 suites: ECDHE only (forward secrecy) with AEAD only (AES-GCM, ChaCha20-Poly1305): no
 * CBC (Lucky13-style padding oracles), no RSA key exchange (no forward secrecy), no DHE (slow,
 * and weak groups in the wild). ECDSA first: smaller, faster handshakes when a site has both.
 * This is Mozilla's "intermediate" profile without DHE.
 */
export const DEFAULT_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** TLS 1.3 has only AEAD suites with forward secrecy; listed so the order is ours, not the build's. */
export const TLS13_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/**
 * Sessions resumed on any HTTPS listener and any certificate's context must agree on this
 * (OpenSSL refuses a session from another "context"), so it is fixed, not per process.
 */
export const SESSION_ID_CONTEXT = 'portico';

/** Options shared by the listeners' own context and every certificate's context in the store. */
export function secureContextOptions(tls: TlsConfig): SecureContextOptions {
  let secureOptions =
    // Client-initiated renegotiation is a cheap way to make a server do expensive work, and
    // nothing legitimate needs it (testssl.sh reports it as a DoS risk).
    constants.SSL_OP_NO_RENEGOTIATION |
    // Server preference, with a fixed ChaCha20 preference for clients that list it first
    // (phones without AES hardware), as OpenSSL's PRIORITIZE_CHACHA does.
    constants.SSL_OP_CIPHER_SERVER_PREFERENCE | constants.SSL_OP_PRIORITIZE_CHACHA;
  if (!tls.session_tickets.enabled) secureOptions |= constants.SSL_OP_NO_TICKET;
  return {
    minVersion: tls.min_version === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: `${TLS13_CIPHERS}:${tls.ciphers ?? DEFAULT_TLS12_CIPHERS}`,
    honorCipherOrder: true,
    ecdhCurve: tls.curves,
    secureOptions,
    sessionIdContext: SESSION_ID_CONTEXT,
    // The lifetime hint sent with tickets: no longer than the key that seals them lives.
    sessionTimeout: Math.max(60, Math.min(86_400, Math.floor(tls.session_tickets.rotate / 1000) || 86_400)),
  };
}

/**
 * The session-ticket key shared by every HTTPS listener (so a session from one resumes on
 * another), replaced with fresh random bytes every `rotate` ms. Node holds one key at a time, so
 * tickets sealed just before a rotation fall back to a full handshake: harmless, and the price
 * of not keeping old keys around. Keys live in memory only and are never logged.
 */
export class TicketKeys {
  #key: Buffer = randomBytes(48);
  #timer: NodeJS.Timeout | undefined;
  #every = 0;
  readonly #servers = new Set<TlsServer>();

  /** Starts (or changes) the rotation period; 0 stops rotating. */
  configure(rotateMs: number): void {
    if (rotateMs === this.#every) return;
    this.#every = rotateMs;
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (rotateMs > 0) {
      this.#timer = setInterval(() => this.rotate(), rotateMs);
      this.#timer.unref();
    }
  }

  /** Replaces the key now, on every registered listener. */
  rotate(): void {
    this.#key = randomBytes(48);
    for (const s of this.#servers) s.setTicketKeys(this.#key);
  }

  add(server: TlsServer): void {
    this.#servers.add(server);
    server.setTicketKeys(this.#key);
  }

  /** Re-applies the key after the server's own context was rebuilt (setSecureContext). */
  apply(server: TlsServer): void {
    server.setTicketKeys(this.#key);
  }

  delete(server: TlsServer): void {
    this.#servers.delete(server);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#every = 0;
    this.#servers.clear();
  }
}
