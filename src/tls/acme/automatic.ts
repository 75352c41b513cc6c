// Automatic certificates for a running Portico: the ACME manager (`tls.acme`) and the local CA
// (`tls.internal`), started from the config, kept across reloads while their config is unchanged,
// and the three hooks the listeners need:
//   - `answerHttp01(req, res)`: the plain HTTP listener asks it before routing;
//   - `wrapSni(cb)` / `selectAlpn(...)`: the HTTPS listener's SNI and ALPN hooks for tls-alpn-01
//     (installed when `wantsTlsHooks(config)`).
// Both certificate sources write into the listeners' CertificateStore; they never block startup:
// stored ACME certificates are loaded before `configure()` resolves, orders run in the background.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Config } from '../../config/schema.js';
import type { AcmeConfig, InternalCaConfig } from '../../config/schema/acme.js';
import type { CertificateStore } from '../store.js';
import { startLocalCa, type LocalCaLog, type LocalCaService } from '../local-ca.js';
import { AcmeManager, type AcmeLog } from './manager.js';
import type { SniCallback } from './tls-alpn-01.js';


/** The parts of the config this service reads (so quick mode and tests can pass just these). */
export interface AutomaticTlsConfig {
  tls: { acme?: AcmeConfig | undefined; internal: InternalCaConfig };
  routes: Config['routes'];
}

export class AutomaticCertificates {
  #acme: AcmeManager | undefined;
  #acmeKey = '';
  #local: LocalCaService | undefined;
  #localKey = '';

  get acme(): AcmeManager | undefined {
    return this.#acme;
  }

  get local(): LocalCaService | undefined {
    return this.#local;
  }

  /** Applies the config: starts, keeps or stops the ACME manager and the local CA. */
  async configure(config: AutomaticTlsConfig, store: CertificateStore, log: AcmeLog & LocalCaLog): Promise<void> {
    const internal = config.tls.internal;
    const localKey = internal.enabled ? JSON.stringify(internal) : '';
    if (localKey !== this.#localKey) {
      this.#local?.stop();
      this.#local = undefined;
      if (this.#localKey !== '') store.deleteBy('internal');
      this.#localKey = localKey;
      if (internal.enabled) {
        this.#local = await startLocalCa(store, { names: internal.names, storage: internal.storage, lifetime: internal.lifetime, log });
      }
    }

    const acme = config.tls.acme;
    const acmeKey = acme ? JSON.stringify(acme) : '';
    if (acmeKey !== this.#acmeKey) {
      const old = this.#acme;
      this.#acme = undefined;
      this.#acmeKey = acmeKey;
      // Certificates already served stay in the store until the new manager replaces them.
      if (old) void old.stop();
      if (acme) this.#acme = new AcmeManager({ config: acme, store, log });
    }
    if (this.#acme && acme) {
      const names = acme.domains ?? acmeNamesFromRoutes(config.routes, store);
      if (names.length === 0) log.warn({}, 'acme: no names to obtain certificates for (set tls.acme.domains or name hosts in routes)');
      else await this.#acme.manage(names);
    }
  }

  /** For the plain HTTP listener, before routing: true when the request was an ACME challenge and is answered. */
  readonly answerHttp01 = (req: IncomingMessage, res: ServerResponse): boolean => {
    const acme = this.#acme;
    return acme !== undefined && acme.http01.handle(req, res);
  };

  /**
   * Whether the HTTPS listeners need the tls-alpn-01 hooks for `config` (ALPNCallback costs a JS
   * call per handshake, so listeners only get it when ACME may use tls-alpn-01).
   */
  wantsTlsHooks(config: Pick<AutomaticTlsConfig, 'tls'>): boolean {
    return config.tls.acme?.challenges.includes('tls-alpn-01') ?? false;
  }

  /** For the HTTPS listener's SNI callback: the handshake `selectAlpn` armed gets the challenge certificate. */
  wrapSni(next: SniCallback): SniCallback {
    return (servername, cb) => {
      const acme = this.#acme;
      if (acme === undefined) next(servername, cb);
      else acme.tlsAlpn01.wrapSni(next)(servername, cb);
    };
  }

  /** For the HTTPS listener's ALPNCallback: "acme-tls/1" for a pending tls-alpn-01 name, else the first common protocol. */
  selectAlpn(servername: string | undefined, clientProtocols: readonly string[], serverProtocols: readonly string[]): string | undefined {
    const acme = this.#acme;
    if (acme !== undefined) return acme.tlsAlpn01.selectAlpn(servername, clientProtocols, serverProtocols);
    for (const p of serverProtocols) if (clientProtocols.includes(p)) return p;
    return undefined;
  }

  async stop(): Promise<void> {
    this.#local?.stop();
    await this.#acme?.stop();
  }
}

/**
 * Names ACME manages by default: exact host names in routes (no wildcards: those need dns-01; no
 * IP addresses or localhost: no public CA issues for them) that no configured certificate covers.
 */
export function acmeNamesFromRoutes(routes: Config['routes'], store: CertificateStore): string[] {
  // Only certificates from elsewhere count: ACME's own (stored, or from a previous config) must
  // not make ACME stop managing a name.
  const covered = new Set<string>();
  for (const c of store.list()) if (c.source !== 'acme') for (const n of c.names) covered.add(n);
  const isCovered = (host: string) => covered.has(host) || (host.indexOf('.') > 0 && covered.has(`*${host.slice(host.indexOf('.'))}`));
  const names = new Set<string>();
  for (const route of routes) {
    for (const raw of route.match.host ?? []) {
      const host = raw.toLowerCase().replace(/\.$/, '');
      if (host.includes('*') || isIP(host) !== 0 || host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) continue;
      if (isCovered(host)) continue;
      names.add(host);
    }
  }
  return [...names];
}
