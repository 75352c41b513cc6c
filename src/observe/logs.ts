// The error log (pino, levelled) and the access log, owned by the running Portico and rebuilt
// only when their config changes.
import pino, { type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { AccessLog } from './access-log.js';
import { destinationReady, flush, isFile, openDestination, type Destination } from './destination.js';

export class Logs {
  log: Logger;
  access: AccessLog | undefined;
  #errorDest: Destination;
  #key: string;
  #errorPath: string;

  constructor(config: Config['log']) {
    this.#key = JSON.stringify(config);
    this.#errorPath = config.error.path;
    this.#errorDest = openDestination(config.error.path);
    this.log = pino({ level: config.error.level, base: { name: 'portico' }, timestamp: pino.stdTimeFunctions.isoTime }, this.#errorDest);
    this.access = config.access.enabled ? new AccessLog(config.access.format, config.access.path) : undefined;
  }

  /** Returns the Logs to use for `config`: this one when unchanged, else a new one (the caller closes this one later). */
  update(config: Config['log']): Logs {
    return JSON.stringify(config) === this.#key ? this : new Logs(config);
  }

  /** Resolves once the error log file is open, so nothing is left opening at shutdown. */
  ready(): Promise<void> {
    return destinationReady(this.#errorDest);
  }

  reopen(): void {
    if (isFile(this.#errorPath)) this.#errorDest.reopen();
    void this.access?.reopen();
  }

  /** Resolves once every pending access log line is written. */
  async close(): Promise<void> {
    await this.access?.close();
    flush(this.#errorDest);
    if (isFile(this.#errorPath)) this.#errorDest.end();
  }
}
