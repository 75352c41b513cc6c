// The error log's destination: stdout, stderr or a file, written asynchronously through pino's
// SonicBoom. Files are reopened on SIGUSR1 for logrotate. (The access log uses batch-writer.ts.)
import pino from 'pino';

export type Destination = ReturnType<typeof pino.destination>;

/** The error log's destination: written promptly (errors are rare; the access log has its own writer). */
export function openDestination(path: string): Destination {
  const dest = path === 'stdout' ? 1 : path === 'stderr' ? 2 : path;
  return pino.destination({ dest, sync: false, mkdir: typeof dest === 'string' });
}

export function isFile(path: string): boolean {
  return path !== 'stdout' && path !== 'stderr';
}

export function flush(dest: Destination): void {
  try { dest.flushSync(); } catch { /* not yet open or already closed */ }
}
