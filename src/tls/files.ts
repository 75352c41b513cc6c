// Certificates from PEM files (`tls.certificates`): loaded into the store at start, again on
// reload (SIGHUP), and when the files change if `tls.watch` is on. On a reload a bad file refuses
// the reload; on a file-watch refresh it keeps the previous certificates in service and the
// problem is logged (a half-written renewal must not take a site down).
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, basename, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { TlsConfig } from '../config/schema/tls.js';
import { namesOf, type CertificatePem, type CertificateStore } from './store.js';

const SOURCE = 'files';

interface Loaded {
  cert: Buffer;
  key: Buffer;
  names: string[];
}

export class CertificateFiles {
  readonly #store: CertificateStore;
  #entries: TlsConfig['certificates'] = [];
  /** By "cert\0key" path pair. */
  #loaded = new Map<string, Loaded>();
  #watchers: FSWatcher[] = [];
  #debounce: NodeJS.Timeout | undefined;
  #log: Logger | undefined;

  constructor(store: CertificateStore) {
    this.#store = store;
  }

  /**
   * Loads the configured files into the store, replacing the previous set. Throws (store
   * unchanged) when a file cannot be used: at start and on reload that refuses the config.
   */
  apply(tls: TlsConfig, log: Logger): void {
    this.#log = log;
    const next = new Map<string, Loaded>();
    const pending: { key: string; pem: Loaded; isDefault: boolean; names: string[] | undefined }[] = [];
    for (const entry of tls.certificates) {
      const id = `${entry.cert}\0${entry.key}`;
      const cert = readFileSync(entry.cert);
      const key = readFileSync(entry.key);
      const prev = this.#loaded.get(id);
      const pem: Loaded = prev && prev.cert.equals(cert) && prev.key.equals(key) ? prev : { cert, key, names: [] };
      next.set(id, pem);
      pending.push({ key: id, pem, isDefault: entry.default, names: entry.names });
    }
    // Build every context first (a bad one throws before anything changes), then swap.
    this.#swap(pending, next);
    this.#entries = tls.certificates;
    this.#watch(tls.watch);
    if (tls.certificates.length > 0) {
      log.info({ certificates: this.#store.list().filter((c) => c.source === SOURCE).map((c) => ({ names: c.names, key: c.keyType, not_after: c.notAfter.toISOString(), default: c.isDefault })) }, 'certificate files loaded');
    }
  }

  /** Re-reads the files (file watch); on failure keeps serving what was loaded and logs why. */
  refresh(): void {
    const pending: { key: string; pem: Loaded; isDefault: boolean; names: string[] | undefined }[] = [];
    const next = new Map<string, Loaded>();
    let changed = false;
    try {
      for (const entry of this.#entries) {
        const id = `${entry.cert}\0${entry.key}`;
        const cert = readFileSync(entry.cert);
        const key = readFileSync(entry.key);
        const prev = this.#loaded.get(id);
        const same = prev !== undefined && prev.cert.equals(cert) && prev.key.equals(key);
        if (!same) changed = true;
        const pem = same ? prev : { cert, key, names: [] };
        next.set(id, pem);
        pending.push({ key: id, pem, isDefault: entry.default, names: entry.names });
      }
      if (!changed) return;
      this.#swap(pending, next);
      this.#log?.info({ certificates: this.#store.list().filter((c) => c.source === SOURCE).map((c) => c.names.join(',')) }, 'certificate files reloaded');
    } catch (err) {
      this.#log?.error({ code: (err as NodeJS.ErrnoException).code, reason: safeReason(err) }, 'certificate files changed but cannot be loaded; still serving the previous certificates');
    }
  }

  close(): void {
    clearTimeout(this.#debounce);
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
  }

  #swap(pending: { pem: Loaded; isDefault: boolean; names: string[] | undefined }[], next: Map<string, Loaded>): void {
    // Names that no file covers any more are removed only after every new certificate was accepted.
    const previousNames = new Set<string>();
    for (const c of this.#store.list()) if (c.source === SOURCE) for (const n of c.names) previousNames.add(n);
    const stored = new Set<string>();
    const hasDefault = pending.some((p) => p.isDefault);
    // Files for the same names (an RSA and an ECDSA certificate for one site) share one context:
    // OpenSSL then picks per client, ECDSA for those that support it.
    const groups = new Map<string, { names: string[]; pems: CertificatePem[]; items: Loaded[]; isDefault: boolean }>();
    pending.forEach((p, i) => {
      const names = (p.names ?? namesOf(p.pem.cert)).map((n) => n.toLowerCase()).sort();
      const id = names.join(',');
      const g = groups.get(id) ?? { names, pems: [], items: [], isDefault: false };
      g.pems.push({ cert: p.pem.cert, key: p.pem.key });
      g.items.push(p.pem);
      // The first file is the default unless one says `default: true` (nginx's first server).
      g.isDefault ||= p.isDefault || (!hasDefault && i === 0);
      groups.set(id, g);
    });
    for (const g of groups.values()) {
      const names = this.#store.set(g.names, g.pems, { source: SOURCE, default: g.isDefault });
      for (const item of g.items) item.names = names;
      for (const n of names) stored.add(n);
    }
    const gone = [...previousNames].filter((n) => !stored.has(n));
    if (gone.length > 0) this.#store.delete(gone);
    if (pending.length === 0) this.#store.deleteBy(SOURCE);
    this.#loaded = next;
    this.#warnExpiry();
  }

  /** File certificates are renewed by something else: say so in the log before they lapse. */
  #warnExpiry(): void {
    const now = Date.now();
    for (const c of this.#store.list()) {
      if (c.source !== SOURCE) continue;
      const days = Math.floor((c.notAfter.getTime() - now) / 86_400_000);
      if (days < 0) this.#log?.error({ names: c.names, not_after: c.notAfter.toISOString() }, 'certificate has expired: clients will refuse it');
      else if (days < 14) this.#log?.warn({ names: c.names, not_after: c.notAfter.toISOString(), days_left: days }, 'certificate expires soon');
    }
  }

  #watch(enabled: boolean): void {
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    if (!enabled) return;
    // Watch directories, not files: renewals usually replace a file (rename) or a symlink,
    // which a watch on the old inode would miss.
    const dirs = new Map<string, Set<string>>();
    for (const e of this.#entries) {
      for (const f of [e.cert, e.key]) {
        const p = resolve(f);
        const set = dirs.get(dirname(p)) ?? new Set<string>();
        set.add(basename(p));
        dirs.set(dirname(p), set);
      }
    }
    for (const [dir, files] of dirs) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name !== null && !files.has(name.toString()) && !name.toString().startsWith('..')) return;
          clearTimeout(this.#debounce);
          // Cert and key are usually written one after the other: wait for both.
          this.#debounce = setTimeout(() => this.refresh(), 250);
          this.#debounce.unref();
        });
        w.on('error', (err) => this.#log?.warn({ dir, code: (err as NodeJS.ErrnoException).code }, 'certificate watch failed'));
        this.#watchers.push(w);
      } catch (err) {
        this.#log?.warn({ dir, code: (err as NodeJS.ErrnoException).code }, 'cannot watch certificate directory');
      }
    }
  }
}

/** An error's message without anything that could be key material. */
function safeReason(err: unknown): string {
  const msg = (err as Error).message ?? String(err);
  return msg.includes('-----') ? 'invalid PEM data' : msg.split('\n')[0]!.slice(0, 200);
}
