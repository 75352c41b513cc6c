// `tls: { internal: true }`: Portico's own certificate authority for local development.
//
// On first use Portico creates a root CA (ECDSA P-256, 10 years) in `storage` (ca.pem + ca.key,
// the key 0600 in a 0700 directory) and prints how to make the system trust it. It then issues
// short-lived leaf certificates (ECDSA P-256) for "localhost", 127.0.0.1, ::1 and the listed
// names, straight from the root: there is no intermediate because nothing but this machine ever
// sees these certificates. Leaves are kept in memory only and re-issued when a third of their
// lifetime is left (and at every start), so a leaked leaf is short-lived and nothing but the root
// needs protecting on disk.
import { webcrypto, createPrivateKey, randomBytes, X509Certificate as NodeX509 } from 'node:crypto';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { makePrivateDir, readOptional, writePrivateFile } from './acme/storage.js';
import type { CertificatePem, CertificateStore } from './store.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
const ROOT_LIFETIME = 3650 * DAY;
/** Backdated so a client whose clock is a little behind still accepts a fresh certificate. */
const CLOCK_SKEW = 5 * 60_000;

/** Names every local certificate covers, on top of those configured. */
export const LOCAL_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1'];

/** Where the CA lives unless `tls.internal.storage` says otherwise (XDG data dir, as Caddy does). */
export function defaultLocalCaDir(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'portico', 'ca');
}

export interface IssuedCertificate extends CertificatePem {
  cert: string;
  key: string;
  notBefore: Date;
  notAfter: Date;
}

/** A root CA on disk that signs leaf certificates. */
export class LocalCa {
  readonly dir: string;
  readonly certPath: string;
  readonly certPem: string;
  /** True when this call created the CA (the caller prints the trust instructions then). */
  readonly created: boolean;
  readonly #cert: x509.X509Certificate;
  readonly #key: CryptoKey;

  private constructor(dir: string, certPem: string, key: CryptoKey, created: boolean) {
    this.dir = dir;
    this.certPath = join(dir, 'ca.pem');
    this.certPem = certPem;
    this.#cert = new x509.X509Certificate(certPem);
    this.#key = key;
    this.created = created;
  }

  /** Loads the CA from `dir`, creating it when absent. */
  static async open(dir: string = defaultLocalCaDir(), commonName = 'Portico Local CA'): Promise<LocalCa> {
    const certFile = join(dir, 'ca.pem');
    const keyFile = join(dir, 'ca.key');
    const [certPem, keyPem] = await Promise.all([readOptional(certFile), readOptional(keyFile)]);
    if (certPem !== undefined && keyPem !== undefined) {
      const key = await createPrivateKey(keyPem).toCryptoKey(ALG, false, ['sign']);
      return new LocalCa(dir, certPem, key, false);
    }
    if (certPem !== undefined || keyPem !== undefined) {
      // Half a CA: refuse rather than silently replace a root someone may already trust.
      throw new Error(`local CA in ${dir} is incomplete (found only ${certPem !== undefined ? 'ca.pem' : 'ca.key'}); remove it to create a new one`);
    }
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    const now = Date.now();
    // A random suffix: two machines' CAs must not share a subject, or trust stores confuse them.
    const name = `CN=${commonName} ${randomBytes(4).toString('hex')}, O=Portico`;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name,
      notBefore: new Date(now - CLOCK_SKEW),
      notAfter: new Date(now + ROOT_LIFETIME),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    await makePrivateDir(dir);
    await writePrivateFile(keyFile, await pkcs8Pem(keys.privateKey));
    const pem = cert.toString('pem') + '\n';
    await writePrivateFile(certFile, pem);
    return new LocalCa(dir, pem, keys.privateKey, true);
  }

  /** Issues a leaf for `names` (DNS names and IP literals), valid `lifetimeMs` from now. */
  async issue(names: readonly string[], lifetimeMs = 7 * DAY): Promise<IssuedCertificate> {
    if (names.length === 0) throw new Error('a certificate needs at least one name');
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    const now = Date.now();
    const notBefore = new Date(now - CLOCK_SKEW);
    // A leaf never outlives its root.
    const notAfter = new Date(Math.min(now + lifetimeMs, this.#cert.notAfter.getTime()));
    const dns = names.filter((n) => isIP(n) === 0);
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${dns[0] ?? names[0]}`,
      issuer: this.#cert.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: this.#key,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) === 0 ? { type: 'dns' as const, value: n } : { type: 'ip' as const, value: n }))),
        await x509.AuthorityKeyIdentifierExtension.create(this.#cert.publicKey),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    // Chain = leaf + root: clients that trust the root do not need it, but tools that print the
    // chain (curl -v, openssl s_client) then show where the certificate comes from.
    return { cert: leaf.toString('pem') + '\n' + this.certPem, key: await pkcs8Pem(keys.privateKey), notBefore, notAfter };
  }

  /** How to trust this CA, for the log and the terminal. */
  trustInstructions(): string {
    const fp = new NodeX509(this.certPem).fingerprint256;
    return [
      `Portico's local CA is ${this.certPath} (SHA-256 ${fp}).`,
      'To trust it on this machine:',
      `  Debian/Ubuntu: sudo cp ${this.certPath} /usr/local/share/ca-certificates/portico-local-ca.crt && sudo update-ca-certificates`,
      `  Fedora/RHEL:   sudo cp ${this.certPath} /etc/pki/ca-trust/source/anchors/portico-local-ca.pem && sudo update-ca-trust`,
      `  macOS:         sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${this.certPath}`,
      `  Node.js:       NODE_EXTRA_CA_CERTS=${this.certPath}`,
      `  curl:          curl --cacert ${this.certPath} https://localhost/`,
      '  Firefox keeps its own store: Settings > Privacy & Security > Certificates > Import.',
    ].join('\n');
  }
}

/** A log with the two levels this module uses (pino's Logger fits). */
export interface LocalCaLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LocalCaServiceOptions {
  /** Names on top of localhost, 127.0.0.1 and ::1. */
  names?: readonly string[] | undefined;
  storage?: string | undefined;
  /** Leaf lifetime in ms (default 7 days). */
  lifetime?: number | undefined;
  log: LocalCaLog;
  /** Where trust instructions go when the CA is created (default: stderr, so a terminal user sees them). */
  print?: ((text: string) => void) | undefined;
}

/**
 * Issues one leaf for all names into `store` (source "internal") and re-issues it when a third of
 * its lifetime is left. Returns a handle to stop the renewal timer.
 */
export async function startLocalCa(store: CertificateStore, options: LocalCaServiceOptions): Promise<LocalCaService> {
  const ca = await LocalCa.open(options.storage ?? defaultLocalCaDir());
  const names = [...new Set([...LOCAL_NAMES, ...(options.names ?? [])].map((n) => n.toLowerCase()))];
  const service = new LocalCaService(ca, store, names, options);
  if (ca.created) (options.print ?? ((t: string) => process.stderr.write(`${t}\n`)))(ca.trustInstructions());
  options.log.info({ ca: ca.certPath, created: ca.created }, ca.created ? 'local CA created' : 'local CA loaded');
  await service.refresh();
  return service;
}

export class LocalCaService {
  readonly ca: LocalCa;
  readonly names: readonly string[];
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #current: IssuedCertificate | undefined;
  readonly #store: CertificateStore;
  readonly #options: LocalCaServiceOptions;

  constructor(ca: LocalCa, store: CertificateStore, names: readonly string[], options: LocalCaServiceOptions) {
    this.ca = ca;
    this.names = names;
    this.#store = store;
    this.#options = options;
  }

  /** Issues a fresh leaf, swaps it into the store and schedules the next one. */
  async refresh(): Promise<IssuedCertificate> {
    const issued = await this.ca.issue(this.names, this.#options.lifetime);
    this.#store.set(this.names, issued, { source: 'internal' });
    this.#current = issued;
    this.#options.log.info({ names: this.names, notAfter: issued.notAfter.toISOString() }, 'local certificate issued');
    this.#schedule(issued);
    return issued;
  }

  /** The leaf being served (for listeners that need a no-SNI default). */
  get current(): IssuedCertificate | undefined {
    return this.#current;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  #schedule(issued: IssuedCertificate): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    const lifetime = issued.notAfter.getTime() - issued.notBefore.getTime();
    const due = issued.notAfter.getTime() - lifetime / 3;
    // setTimeout holds 32-bit ms; a longer wait is cut and re-armed by refresh().
    const delay = Math.min(Math.max(due - Date.now(), 1_000), 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.refresh().catch((err: unknown) => {
        // The current leaf keeps serving; try again in a minute.
        this.#options.log.error({ err }, 'local certificate renewal failed');
        this.#timer = setTimeout(() => void this.refresh().catch(() => undefined), 60_000);
        this.#timer.unref();
      });
    }, delay);
    this.#timer.unref();
  }
}

function serial(): string {
  // Positive (top bit clear) 128-bit serial, as RFC 5280 §4.1.2.2 wants.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
}

