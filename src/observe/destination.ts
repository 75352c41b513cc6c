// The error log's destination: stdout, stderr or a file, written asynchronously through pino's
// SonicBoom. Files are reopened on SIGUSR1 for logrotate. (The access log uses batch-writer.ts.)
import pino from 'pino';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

export type Destination = ReturnType<typeof pino.destination>;

/** The error log's destination: written promptly (errors are rare; the access log has its own writer). */
export function openDestination(path: string): Destination {
  const dest = path === 'stdout' ? 1 : path === 'stderr' ? 2 : path;
  if (typeof dest === 'string') {
    // SonicBoom opens asynchronously; checking here makes an unwritable path fail start or
    // reload with a clear error instead of later. (Logs.ready() then waits for SonicBoom's open.)
    mkdirSync(dirname(dest), { recursive: true });
    closeSync(openSync(dest, 'a', 0o640));
  }
  const boom = pino.destination({ dest, sync: false, mkdir: typeof dest === 'string' });
  // A log that stops being writable (disk full, file system gone) must never take the proxy down.
  let reported = false;
  boom.on('error', (err: Error) => {
    if (reported) return;
    reported = true;
    try { process.stderr.write(`portico: cannot write the error log ${path}: ${err.message}\n`); } catch { /* nowhere left */ }
  });
  return boom;
}

/** Resolves once the destination is open (at once for stdout/stderr). */
export function destinationReady(dest: Destination): Promise<void> {
  if ((dest as Destination & { fd: number }).fd >= 0) return Promise.resolve();
  return new Promise((resolve) => {
    dest.once('ready', () => resolve());
    dest.once('error', () => resolve());
  });
}

export function isFile(path: string): boolean {
  return path !== 'stdout' && path !== 'stderr';
}

export function flush(dest: Destination): void {
  try { dest.flushSync(); } catch { /* not yet open or already closed */ }
}
