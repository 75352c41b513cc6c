// ACME state on disk: the account key, the account URL, and one certificate + key per name set.
//
// Layout (one directory per ACME directory URL, so staging and production never mix):
//   <storage>/<ca-id>/account.key        PEM private key            0600
//   <storage>/<ca-id>/account.json       { url, email }             0600
//   <storage>/<ca-id>/certs/<name>/cert.pem   chain, leaf first     0600
//   <storage>/<ca-id>/certs/<name>/key.pem    private key           0600
// Directories are 0700. Every file is written to a temporary name and renamed, so a crash never
// leaves a half-written key behind, and is created with mode 0600 (not chmod'ed afterwards) so
// there is no moment where another user could read it.
import { mkdir, open, readFile, rename, chmod, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';

/** Writes `data` to `file` with mode 0600, atomically (temp file + rename). */
export async function writePrivateFile(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    // The umask cannot widen 0600, but a pre-existing umask of 0 and odd filesystems can surprise: be explicit.
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Creates `dir` (and parents) with mode 0700 and makes sure the last level is 0700. */
export async function makePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** The file's text, or undefined when it does not exist. */
export async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface StoredAccount {
  key: string;
  url?: string | undefined;
  email?: string | undefined;
}

export interface StoredCertificatePair {
  cert: string;
  key: string;
}

/** A short, stable, file-system-safe id for an ACME directory URL ("acme-v02.api.letsencrypt.org-1a2b3c4d"). */
export function directoryId(directoryUrl: string): string {
  let host = 'acme';
  try { host = new URL(directoryUrl).host; } catch { /* the schema validated it; keep the fallback */ }
  const hash = createHash('sha256').update(directoryUrl).digest('hex').slice(0, 8);
  return `${host.replace(/[^A-Za-z0-9.-]/g, '_')}-${hash}`;
}

/** A certificate's directory name: its first name, wildcards spelled "_wildcard_.example.com". */
export function certificateDirName(names: readonly string[]): string {
  const first = (names[0] ?? 'unnamed').toLowerCase().replace(/^\*\./, '_wildcard_.');
  return first.replace(/[^a-z0-9._-]/g, '_');
}

export class AcmeStorage {
  readonly root: string;

  constructor(storage: string, directoryUrl: string) {
    this.root = join(storage, directoryId(directoryUrl));
  }

  async loadAccount(): Promise<StoredAccount | undefined> {
    const key = await readOptional(join(this.root, 'account.key'));
    if (key === undefined) return undefined;
    const meta = await readOptional(join(this.root, 'account.json'));
    const parsed = meta ? (JSON.parse(meta) as { url?: string; email?: string }) : {};
    return { key, url: parsed.url, email: parsed.email };
  }

  async saveAccountKey(key: string): Promise<void> {
    await makePrivateDir(this.root);
    await writePrivateFile(join(this.root, 'account.key'), key);
  }

  async saveAccountMeta(url: string, email: string | undefined): Promise<void> {
    await makePrivateDir(this.root);
    await writePrivateFile(join(this.root, 'account.json'), `${JSON.stringify({ url, email }, null, 2)}\n`);
  }

  certificateDir(names: readonly string[]): string {
    return join(this.root, 'certs', certificateDirName(names));
  }

  async loadCertificate(names: readonly string[]): Promise<StoredCertificatePair | undefined> {
    const dir = this.certificateDir(names);
    const [cert, key] = await Promise.all([readOptional(join(dir, 'cert.pem')), readOptional(join(dir, 'key.pem'))]);
    return cert !== undefined && key !== undefined ? { cert, key } : undefined;
  }

  /**
   * Key, then chain. A crash in between leaves a pair that does not match: loading it then fails
   * the store's key check and the manager orders a new certificate, which is the safe outcome.
   */
  async saveCertificate(names: readonly string[], pair: StoredCertificatePair): Promise<void> {
    const dir = this.certificateDir(names);
    await makePrivateDir(join(this.root, 'certs'));
    await makePrivateDir(dir);
    await writePrivateFile(join(dir, 'key.pem'), pair.key);
    await writePrivateFile(join(dir, 'cert.pem'), pair.cert);
  }
}
