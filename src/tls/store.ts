// The certificate store: every certificate Portico serves, as ready SecureContexts keyed by name,
// and the SNI callback that picks one per TLS handshake.
//
// Who fills it: PEM files from `tls.certificates` (src/tls/files.ts), ACME and the local CA (they
// call `set()` when a certificate is obtained or renewed). Swapping a certificate is one `set()`:
// handshakes that start afterwards get the new context, established connections keep theirs, so
// nothing is dropped.
//
// Lookup order for a handshake's SNI name: exact name, then the wildcard one label up
// ("a.example.com" -> "*.example.com"; a wildcard covers exactly one label, RFC 6125 §6.4.3),
// then the default certificate. Clients without SNI (IP literals, old clients) get the default.
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { createPrivateKey, X509Certificate } from 'node:crypto';

/** A certificate chain (leaf first) and its private key, PEM encoded. */
export interface CertificatePem {
  cert: string | Buffer;
  key: string | Buffer;
}

export interface SetOptions {
  /** Serve this certificate to clients that send no SNI name, or a name no certificate covers. */
  default?: boolean;
  /** Who put it there ("files", "acme", "internal"): shown in logs and `list()`; `deleteBy()` uses it. */
  source?: string;
}

/** One stored certificate, as `list()` reports it. */
export interface StoredCertificate {
  names: readonly string[];
  source: string;
  /** From the leaf certificate. */
  subject: string;
  notAfter: Date;
  fingerprint256: string;
  /** Key type of the leaf: "rsa", "ec", "ed25519"… */
  keyType: string;
  isDefault: boolean;
}

interface Entry {
  names: string[];
  /** Several chains for the same names (e.g. RSA + ECDSA): OpenSSL picks by what the client supports. */
  pems: CertificatePem[];
  source: string;
  leaf: X509Certificate;
  context: SecureContext;
}

/**
 * Certificates by name. Every context is built with the same base options (protocol versions,
 * ciphers, curves: src/tls/options.ts), so a certificate swap never changes the TLS policy.
 */
export class CertificateStore {
  #base: SecureContextOptions;
  readonly #byName = new Map<string, Entry>();
  #default: Entry | undefined;
  /** The first certificate set is the default until one is set with `{ default: true }` (as nginx's first server). */
  #explicitDefault = false;
  readonly #listeners = new Set<() => void>();

  constructor(base: SecureContextOptions = {}) {
    this.#base = base;
  }

  /**
   * Stores `pem` for `names` (lower-case host names; "*.example.com" for a wildcard), replacing
   * whatever those names had. When `names` is omitted, the names come from the certificate's
   * subjectAltName (DNS and IP entries), falling back to its CN. Throws when the PEM is unusable
   * (bad PEM, key not matching the certificate) and leaves the store unchanged then.
   * Returns the names stored.
   */
  set(names: readonly string[] | undefined, pem: CertificatePem | readonly CertificatePem[], options: SetOptions = {}): string[] {
    const pems = Array.isArray(pem) ? [...pem as readonly CertificatePem[]] : [pem as CertificatePem];
    if (pems.length === 0) throw new Error('no certificate given');
    const leaf = new X509Certificate(firstPem(pems[0]!.cert));
    const list = (names && names.length > 0 ? [...names] : namesOf(leaf)).map(normalizeName);
    if (list.length === 0 && !options.default) throw new Error(`certificate "${leaf.subject}" names no host (no subjectAltName, no CN)`);
    const context = this.#build(pems);
    const entry: Entry = { names: list, pems, source: options.source ?? 'api', leaf, context };
    for (const name of list) this.#byName.set(name, entry);
    if (options.default || (!this.#explicitDefault && this.#default === undefined)) {
      this.#default = entry;
      if (options.default) this.#explicitDefault = true;
    } else if (this.#default && list.some((n) => this.#default!.names.includes(n))) {
      // The default's names were taken over by a new certificate: the default follows them.
      if (!this.#default.names.some((n) => this.#byName.get(n) === this.#default)) this.#default = entry;
    }
    this.#changed();
    return list;
  }

  /** Removes the certificates stored for `names`. */
  delete(names: readonly string[]): void {
    for (const raw of names) {
      const name = normalizeName(raw);
      const entry = this.#byName.get(name);
      if (entry === undefined) continue;
      this.#byName.delete(name);
      if (entry === this.#default && !entry.names.some((n) => this.#byName.get(n) === entry)) this.#dropDefault();
    }
    this.#changed();
  }

  /** Removes every certificate set with `{ source }`. */
  deleteBy(source: string): void {
    for (const [name, entry] of this.#byName) if (entry.source === source) this.#byName.delete(name);
    if (this.#default?.source === source) this.#dropDefault();
    this.#changed();
  }

  /** The context for an SNI name (exact, then wildcard), or undefined. Names are matched case-insensitively. */
  lookup(servername: string): SecureContext | undefined {
    return this.#find(servername)?.context;
  }

  /** The context a handshake gets: `lookup(servername)`, else the default. */
  select(servername: string | undefined): SecureContext | undefined {
    return (servername ? this.#find(servername) : undefined)?.context ?? this.#default?.context;
  }

  /** Whether some certificate covers `name` (exact or wildcard); ACME asks this before ordering one. */
  covers(name: string): boolean {
    return this.#find(name) !== undefined;
  }

  /** The default context (for clients without SNI), if any certificate is stored. */
  get defaultContext(): SecureContext | undefined {
    return this.#default?.context;
  }

  /** The default certificate's PEMs: a listener's own context (used when no SNI is sent) is built from them. */
  get defaultPems(): readonly CertificatePem[] | undefined {
    return this.#default?.pems;
  }

  get size(): number {
    return new Set(this.#byName.values()).size;
  }

  /**
   * For `tls.createServer({ SNICallback })`. OpenSSL calls it only when the client sent a name;
   * no-SNI clients get the server's own context, which `src/server/https.ts` sets to the default.
   */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.select(servername));
  };

  /**
   * Rebuilds every context with new base options (a reload that changes min_version or ciphers).
   * Throws, leaving the store unchanged, if the options are unusable.
   */
  configure(base: SecureContextOptions): void {
    const entries = new Set(this.#byName.values());
    if (this.#default) entries.add(this.#default);
    const old = this.#base;
    this.#base = base;
    const rebuilt = new Map<Entry, SecureContext>();
    try {
      for (const e of entries) rebuilt.set(e, this.#build(e.pems));
    } catch (err) {
      this.#base = old;
      throw err;
    }
    for (const [e, ctx] of rebuilt) e.context = ctx;
    this.#changed();
  }

  /** What is stored, one item per certificate. */
  list(): StoredCertificate[] {
    const entries = new Set(this.#byName.values());
    if (this.#default) entries.add(this.#default);
    return [...entries].map((e) => ({
      names: e.names.filter((n) => this.#byName.get(n) === e),
      source: e.source,
      subject: e.leaf.subject,
      notAfter: new Date(e.leaf.validTo),
      fingerprint256: e.leaf.fingerprint256,
      keyType: e.leaf.publicKey.asymmetricKeyType ?? 'unknown',
      isDefault: e === this.#default,
    }));
  }

  /** Called after every change (the HTTPS listeners refresh their no-SNI context). Returns an unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #find(servername: string): Entry | undefined {
    const name = servername.length > 0 && servername.charCodeAt(servername.length - 1) === 0x2e
      ? servername.slice(0, -1).toLowerCase() : servername.toLowerCase();
    const exact = this.#byName.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.#byName.get(`*${name.slice(dot)}`) : undefined;
  }

  #build(pems: readonly CertificatePem[]): SecureContext {
    // Node applies only the last certificate of a context chosen by SNI (a listener's own
    // context, used for no-SNI clients, keeps all and OpenSSL picks per client). So with an RSA
    // and an ECDSA certificate for the same names, ECDSA goes last: every TLS 1.3 client and any
    // browser of the last decade supports it, and its handshakes are several times cheaper.
    const ordered = pems.length < 2 ? pems : [...pems].sort((a, b) => ecRank(a) - ecRank(b));
    return createSecureContext({ ...this.#base, cert: ordered.map((p) => p.cert), key: ordered.map((p) => p.key) });
  }

  #dropDefault(): void {
    this.#explicitDefault = false;
    this.#default = this.#byName.values().next().value;
  }

  #changed(): void {
    for (const l of this.#listeners) l();
  }
}

/** Host names a certificate is for: subjectAltName DNS and IP entries, else the subject CN. */
export function namesOf(cert: X509Certificate | string | Buffer): string[] {
  const leaf = cert instanceof X509Certificate ? cert : new X509Certificate(firstPem(cert));
  const names: string[] = [];
  for (const part of (leaf.subjectAltName ?? '').split(/,\s*/)) {
    if (part.startsWith('DNS:')) names.push(part.slice(4));
    else if (part.startsWith('IP Address:')) names.push(part.slice(11));
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1];
    if (cn) names.push(cn);
  }
  return [...new Set(names.map(normalizeName))];
}

function ecRank(pem: CertificatePem): number {
  const type = createPrivateKey(pem.key).asymmetricKeyType;
  return type === 'ec' ? 2 : type === 'rsa' || type === 'rsa-pss' ? 0 : 1;
}

function normalizeName(name: string): string {
  const n = name.trim().toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** X509Certificate reads only the first certificate of a chain, but be explicit about it. */
function firstPem(pem: string | Buffer): string | Buffer {
  const s = typeof pem === 'string' ? pem : pem.toString('latin1');
  const end = s.indexOf('-----END CERTIFICATE-----');
  return end === -1 ? pem : s.slice(0, end + 25);
}
