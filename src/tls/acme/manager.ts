// The ACME manager: keeps one certificate per managed name valid, from an RFC 8555 CA, through
// the `acme-client` library.
//
// Per name: load the stored certificate (serve it at once if still valid), order a new one when
// there is none or when a third of its lifetime is left, answer the CA's challenge (http-01 on the
// plain listener, tls-alpn-01 on the HTTPS listener), store the result (0600) and swap it into the
// CertificateStore — new handshakes get it, open connections keep theirs, nothing restarts.
// A failed order is retried with exponential backoff (retry.min doubling up to retry.max, with
// jitter so many names do not hit the CA in lockstep); the old certificate, if any, keeps
// serving meanwhile. Names are independent: one name failing validation delays no other.
import { EventEmitter } from 'node:events';
import { Agent as HttpsAgent } from 'node:https';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as acme from 'acme-client';
import type { CertificateStore } from '../store.js';
import type { AcmeConfig } from '../../config/schema/acme.js';
import { AcmeStorage } from './storage.js';
import { Http01Responder } from './http-01.js';
import { TlsAlpn01Responder } from './tls-alpn-01.js';

/** The log levels the manager uses (pino's Logger fits). Keys and key authorizations are never passed. */
export interface AcmeLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AcmeIssuedEvent {
  name: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
  /** "stored" when loaded from disk at start, "ordered" when just obtained from the CA. */
  origin: 'stored' | 'ordered';
}

export interface AcmeFailedEvent {
  name: string;
  attempt: number;
  error: Error;
  /** When the next attempt starts. */
  retryAt: Date;
}

interface AcmeEvents {
  issued: [AcmeIssuedEvent];
  failed: [AcmeFailedEvent];
}

/** Where ACME state lives unless `tls.acme.storage` says otherwise. */
export function defaultAcmeStorage(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'portico', 'acme');
}

interface Managed {
  name: string;
  current: { notBefore: number; notAfter: number } | undefined;
  timer: NodeJS.Timeout | undefined;
  failures: number;
  running: Promise<void> | undefined;
}

export interface AcmeManagerOptions {
  config: AcmeConfig;
  store: CertificateStore;
  log: AcmeLog;
}

export class AcmeManager {
  readonly http01 = new Http01Responder();
  readonly tlsAlpn01 = new TlsAlpn01Responder();
  readonly events = new EventEmitter<AcmeEvents>();
  readonly storage: AcmeStorage;
  readonly #config: AcmeConfig;
  readonly #store: CertificateStore;
  readonly #log: AcmeLog;
  readonly #managed = new Map<string, Managed>();
  #client: Promise<acme.Client> | undefined;
  /** Re-registration after "account does not exist" happens once per manager, not in a loop. */
  #reregistered = false;
  #stopped = false;

  constructor(options: AcmeManagerOptions) {
    this.#config = options.config;
    this.#store = options.store;
    this.#log = options.log;
    this.storage = new AcmeStorage(options.config.storage ?? defaultAcmeStorage(), options.config.directory);
  }

  /** Names under management. */
  get names(): string[] {
    return [...this.#managed.keys()];
  }

  /**
   * Starts managing `names`: stored certificates are loaded into the store before this resolves;
   * orders for missing or expiring ones start in the background (watch `events`).
   */
  async manage(names: readonly string[]): Promise<void> {
    await configureHttps(this.#config.ca_bundle);
    for (const raw of names) {
      const name = raw.toLowerCase();
      if (this.#managed.has(name) || this.#stopped) continue;
      const m: Managed = { name, current: undefined, timer: undefined, failures: 0, running: undefined };
      this.#managed.set(name, m);
      await this.#loadStored(m);
      this.#schedule(m);
    }
  }

  /** Renews `name` now (admin action; also what tests use to force a renewal). */
  renew(name: string): Promise<void> {
    const m = this.#managed.get(name.toLowerCase());
    if (m === undefined) return Promise.reject(new Error(`"${name}" is not managed by ACME`));
    if (m.timer) clearTimeout(m.timer);
    return this.#run(m);
  }

  /** Resolves when every name has a certificate in the store (or rejects after `timeoutMs`). */
  async ready(timeoutMs = 120_000): Promise<void> {
    const missing = () => [...this.#managed.values()].filter((m) => m.current === undefined);
    if (missing().length === 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.events.off('issued', check); reject(new Error(`no certificate yet for ${missing().map((m) => m.name).join(', ')}`)); }, timeoutMs);
      const check = () => { if (missing().length === 0) { clearTimeout(timer); this.events.off('issued', check); resolve(); } };
      this.events.on('issued', check);
    });
  }

  /** Stops timers. Orders in flight finish (their result is still stored) but nothing new starts. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const m of this.#managed.values()) if (m.timer) clearTimeout(m.timer);
    await Promise.allSettled([...this.#managed.values()].map((m) => m.running));
  }

  async #loadStored(m: Managed): Promise<void> {
    let pair;
    try {
      pair = await this.storage.loadCertificate([m.name]);
    } catch (err) {
      this.#log.warn({ name: m.name, err: errorInfo(err) }, 'acme: cannot read the stored certificate; ordering a new one');
      return;
    }
    if (pair === undefined) return;
    try {
      const leaf = new X509Certificate(pair.cert);
      const notAfter = Date.parse(leaf.validTo);
      if (notAfter <= Date.now()) {
        this.#log.info({ name: m.name, notAfter: new Date(notAfter).toISOString() }, 'acme: stored certificate has expired');
        return;
      }
      this.#store.set([m.name], pair, { source: 'acme' });
      m.current = { notBefore: Date.parse(leaf.validFrom), notAfter };
      this.#log.info({ name: m.name, notAfter: new Date(notAfter).toISOString() }, 'acme: stored certificate loaded');
      this.events.emit('issued', { name: m.name, notBefore: new Date(m.current.notBefore), notAfter: new Date(notAfter), fingerprint256: leaf.fingerprint256, origin: 'stored' });
    } catch (err) {
      // A mismatched or damaged pair (e.g. a crash between writing key and chain): order afresh.
      this.#log.warn({ name: m.name, err: errorInfo(err) }, 'acme: stored certificate unusable; ordering a new one');
    }
  }

  /** Renewal is due when a third of the lifetime is left (Let's Encrypt's own advice for 90-day certs). */
  #renewAt(m: Managed): number {
    if (m.current === undefined) return Date.now();
    const { notBefore, notAfter } = m.current;
    return notAfter - (notAfter - notBefore) / 3;
  }

  #schedule(m: Managed, at = this.#renewAt(m)): void {
    if (this.#stopped) return;
    if (m.timer) clearTimeout(m.timer);
    // setTimeout holds 32-bit ms (~24.8 days); a longer wait wakes up early and re-schedules.
    const delay = Math.min(Math.max(at - Date.now(), 0), 2 ** 31 - 1);
    m.timer = setTimeout(() => {
      m.timer = undefined;
      if (Date.now() < at) this.#schedule(m, at);
      else void this.#run(m);
    }, delay);
    m.timer.unref();
  }

  #run(m: Managed): Promise<void> {
    m.running ??= this.#attempt(m).finally(() => { m.running = undefined; });
    return m.running;
  }

  async #attempt(m: Managed): Promise<void> {
    const renewing = m.current !== undefined;
    this.#log.info({ name: m.name, attempt: m.failures + 1, renewing }, renewing ? 'acme: renewal started' : 'acme: obtaining a certificate');
    try {
      await this.#obtain(m);
      m.failures = 0;
      this.#schedule(m);
    } catch (err) {
      m.failures++;
      const { min, max } = this.#config.retry;
      const base = Math.min(max, min * 2 ** (m.failures - 1));
      const wait = Math.round(base * (0.9 + Math.random() * 0.2));
      const retryAt = new Date(Date.now() + wait);
      const error = err instanceof Error ? err : new Error(String(err));
      this.#log.error({ name: m.name, attempt: m.failures, err: errorInfo(err), retryAt: retryAt.toISOString(), serving: renewing ? 'previous certificate' : 'none' },
        renewing ? 'acme: renewal failed; the current certificate keeps serving' : 'acme: could not obtain a certificate');
      this.events.emit('failed', { name: m.name, attempt: m.failures, error, retryAt });
      // The wait may run past the current certificate's expiry: a CA failing for that long is not
      // helped by asking faster, and the backoff keeps Portico within the CA's rate limits.
      this.#schedule(m, retryAt.getTime());
    }
  }

  async #obtain(m: Managed): Promise<void> {
    let client = await this.#account();
    let order: acme.Order;
    try {
      order = await client.createOrder({ identifiers: [{ type: 'dns', value: m.name }] });
    } catch (err) {
      // The stored account URL is unknown to the CA (a test CA restarted, an account deleted):
      // register the key again instead of failing every order from now on.
      if (!this.#reregistered && isUnknownAccount(err)) {
        this.#log.warn({ err: errorInfo(err) }, 'acme: the CA does not know the stored account; registering again');
        this.#reregistered = true;
        client = await this.#account(true);
        order = await client.createOrder({ identifiers: [{ type: 'dns', value: m.name }] });
      } else {
        throw err;
      }
    }
    this.#log.info({ name: m.name, order: order.url }, 'acme: order created');
    const authorizations = await client.getAuthorizations(order);
    for (const authz of authorizations) {
      if (authz.status === 'valid') {
        this.#log.debug({ name: m.name, identifier: authz.identifier.value }, 'acme: authorization already valid');
        continue;
      }
      await this.#solve(client, authz);
    }
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: m.name, altNames: [m.name] },
      this.#config.key_type === 'rsa' ? await acme.crypto.createPrivateRsaKey(2048) : await acme.crypto.createPrivateEcdsaKey('P-256'),
    );
    const finalized = await client.finalizeOrder(order, csr);
    this.#log.info({ name: m.name }, 'acme: order finalized');
    const chain = await client.getCertificate(finalized);
    const pair = { cert: chain, key: key.toString() };
    // Into the store first: if it refuses the pair, nothing bad was written to disk.
    this.#store.set([m.name], pair, { source: 'acme' });
    await this.storage.saveCertificate([m.name], pair);
    const leaf = new X509Certificate(chain);
    m.current = { notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo) };
    this.#log.info({ name: m.name, issuer: leaf.issuer.replace(/\n/g, ', '), notAfter: leaf.validTo, fingerprint256: leaf.fingerprint256 }, 'acme: certificate obtained and installed');
    this.events.emit('issued', { name: m.name, notBefore: new Date(m.current.notBefore), notAfter: new Date(m.current.notAfter), fingerprint256: leaf.fingerprint256, origin: 'ordered' });
  }

  async #solve(client: acme.Client, authz: acme.Authorization): Promise<void> {
    const name = authz.identifier.value;
    const offered = authz.challenges;
    const type = this.#config.challenges.find((t) => offered.some((c) => c.type === t));
    const challenge = offered.find((c) => c.type === type);
    if (type === undefined || challenge === undefined) {
      throw new Error(`the CA offers ${offered.map((c) => c.type).join(', ')} for ${name}; Portico is configured for ${this.#config.challenges.join(', ')}`);
    }
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    let remove: () => void;
    if (type === 'http-01') {
      const token = (challenge as { token: string }).token;
      this.http01.set(token, keyAuthorization);
      remove = () => this.http01.remove(token);
    } else {
      const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
      this.tlsAlpn01.set(name, cert, key);
      remove = () => this.tlsAlpn01.remove(name);
    }
    this.#log.info({ name, challenge: type }, 'acme: challenge ready, asking the CA to validate');
    try {
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
      this.#log.info({ name, challenge: type }, 'acme: challenge validated');
    } catch (err) {
      // Deactivate so the next attempt gets a fresh authorization instead of this failed one.
      await client.deactivateAuthorization(authz).catch(() => undefined);
      throw new Error(`${type} validation for ${name} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      remove();
    }
  }

  /** The ACME client with a registered account, created once (and again after a failure). */
  #account(forget = false): Promise<acme.Client> {
    if (forget) this.#client = undefined;
    this.#client ??= this.#register(forget).catch((err: unknown) => {
      this.#client = undefined;
      throw err;
    });
    return this.#client;
  }

  async #register(forget = false): Promise<acme.Client> {
    const config = this.#config;
    const stored = await this.storage.loadAccount();
    let accountKey = stored?.key;
    if (accountKey === undefined) {
      accountKey = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
      await this.storage.saveAccountKey(accountKey);
      this.#log.info({ storage: this.storage.root }, 'acme: account key created');
    }
    const known = !forget && stored?.url !== undefined && stored.email === config.email;
    const client = new acme.Client({
      directoryUrl: config.directory,
      accountKey,
      // Status polling: acme-client waits 5 s before its first re-poll by default; CAs usually
      // validate in well under a second, so start at 500 ms (doubling, ~2 minutes in total).
      backoffMin: 500,
      backoffMax: 15_000,
      backoffAttempts: 12,
      ...(known ? { accountUrl: stored.url } : {}),
      ...(config.eab ? { externalAccountBinding: { kid: config.eab.kid, hmacKey: config.eab.hmac_key } } : {}),
    });
    if (!known) {
      // newAccount with an existing key returns that account (RFC 8555 §7.3.1), so this is also
      // how a changed email is picked up.
      await client.createAccount({ termsOfServiceAgreed: true, ...(config.email ? { contact: [`mailto:${config.email}`] } : {}) });
      if (stored?.url !== undefined && config.email) await client.updateAccount({ contact: [`mailto:${config.email}`] });
      await this.storage.saveAccountMeta(client.getAccountUrl(), config.email);
      this.#log.info({ directory: config.directory, account: client.getAccountUrl() }, 'acme: account registered');
    }
    return client;
  }
}

let httpsConfigured: string | undefined;

/**
 * acme-client talks HTTP through one process-wide axios instance, so the CA bundle is set there
 * (the extra CAs are added to Node's roots, not instead of them). Its own retry on 5xx/429 is cut
 * to two quick attempts: the manager's backoff is the retry policy that matters.
 */
async function configureHttps(caBundle: string | undefined): Promise<void> {
  const key = caBundle ?? '';
  if (httpsConfigured === key) return;
  const settings = (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number; retryDefaultDelay: number } }).acmeSettings;
  settings.retryMaxAttempts = 2;
  settings.retryDefaultDelay = 1;
  acme.axios.defaults.httpsAgent = caBundle === undefined
    ? undefined
    : new HttpsAgent({ ca: [...rootCertificates, await readFile(caBundle, 'utf8')], keepAlive: true });
  httpsConfigured = key;
}

/** acme-client keeps only the problem's detail; match the wordings CAs use for an unknown account. */
function isUnknownAccount(err: unknown): boolean {
  const msg = String((err as { message?: unknown })?.message ?? '');
  return /accountDoesNotExist|account\b.*\b(does not exist|not found)|unable to find.*account|no existing account|unknown account/i.test(msg);
}

/** What goes into logs about an error: message and code, never request bodies (acme-client's errors carry none). */
function errorInfo(err: unknown): { message: string; code?: string } {
  const e = err as { message?: unknown; code?: unknown };
  return { message: String(e?.message ?? err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) };
}
