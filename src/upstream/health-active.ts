// Active health checks: a probe per target every `interval` (an HTTP request or a TCP connect),
// `fall` failures in a row take the target out of rotation, `rise` successes bring it back.
// One check per target of an upstream, however many routes use it; the check lives on the
// Target, so it survives a reload that keeps the target and its check config.
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import type { Target } from './target.js';

export interface ActiveHealthConfig {
  /** "http": GET `path`; "tcp": a connect is enough. */
  kind: 'http' | 'tcp';
  path: string;
  interval: number;
  timeout: number;
  rise: number;
  fall: number;
  statusMin: number;
  statusMax: number;
  /** Text the response body must contain. */
  body: string | undefined;
  host: string | undefined;
  headers: Record<string, string>;
}

/** Bodies are read only as far as this when looking for `body` text. */
const MAX_BODY = 64 * 1024;

/**
 * Probes open a fresh connection each time (`reset: true`): reusing one would keep reporting a
 * target healthy whose listener no longer accepts connections.
 */
const tcpAgent = new Agent({ pipelining: 0 });
const unixAgents = new Map<string, Agent>();
/** https:// targets with upstreams.<name>.tls (private CA, servername): probes verify as requests do. */
const tlsAgents = new Map<string, Agent>();

function dispatcherFor(target: Target): Agent {
  const socketPath = target.address.socketPath;
  const tls = target.address.protocol === 'https:' ? target.tls : undefined;
  if (socketPath === undefined && tls !== undefined) {
    let agent = tlsAgents.get(tls.key);
    if (agent === undefined) {
      agent = new Agent({ pipelining: 0, connect: { ...tls.connect }, ...(tls.allowH2 ? { allowH2: true } : {}) });
      tlsAgents.set(tls.key, agent);
    }
    return agent;
  }
  if (socketPath === undefined) return tcpAgent;
  let agent = unixAgents.get(socketPath);
  if (agent === undefined) {
    agent = new Agent({ pipelining: 0, connect: { socketPath } });
    unixAgents.set(socketPath, agent);
  }
  return agent;
}

export class ActiveHealthCheck {
  readonly target: Target;
  readonly config: ActiveHealthConfig;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #stopped = false;
  #successes = 0;
  #failures = 0;
  /** Last failure, for the log line and the programmatic API. */
  lastError = '';
  checks = 0;

  constructor(target: Target, config: ActiveHealthConfig) {
    this.target = target;
    this.config = config;
  }

  /** Starts probing at once, then every interval. Idempotent. */
  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    void this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    const started = Date.now();
    let error = '';
    try {
      error = this.config.kind === 'tcp' ? await this.#tcp() : await this.#http();
    } catch (err) {
      error = (err as { code?: string }).code ?? (err as Error).message;
    }
    if (this.#stopped) return;
    this.checks++;
    this.#record(error);
    this.#timer = setTimeout(() => void this.#tick(), Math.max(0, this.config.interval - (Date.now() - started)));
    this.#timer.unref();
  }

  #record(error: string): void {
    const t = this.target;
    if (error === '') {
      this.#failures = 0;
      this.#successes++;
      if (!t.activeUp && this.#successes >= this.config.rise) t.setActive(true, 'check passed');
    } else {
      this.lastError = error;
      this.#successes = 0;
      this.#failures++;
      if (t.activeUp && this.#failures >= this.config.fall) t.setActive(false, error);
    }
  }

  async #http(): Promise<string> {
    const c = this.config;
    const t = this.target;
    const res = await request(t.address.origin + c.path, {
      method: 'GET',
      dispatcher: dispatcherFor(t),
      reset: true,
      headers: { host: c.host ?? t.address.host, 'user-agent': 'portico-health-check', ...c.headers },
      headersTimeout: c.timeout,
      bodyTimeout: c.timeout,
      signal: AbortSignal.timeout(c.timeout),
    });
    const ok = res.statusCode >= c.statusMin && res.statusCode <= c.statusMax;
    if (c.body === undefined || !ok) {
      await res.body.dump();
      return ok ? '' : `status ${res.statusCode}`;
    }
    let text = '';
    for await (const chunk of res.body) {
      text += (chunk as Buffer).toString('utf8');
      if (text.includes(c.body)) { res.body.destroy(); return ''; }
      if (text.length > MAX_BODY) break;
    }
    res.body.destroy();
    return 'body text not found';
  }

  #tcp(): Promise<string> {
    const t = this.target;
    const addr = t.address;
    return new Promise((resolve) => {
      const socket = addr.socketPath !== undefined ? connect(addr.socketPath) : connect(addr.port, addr.hostname);
      const done = (error: string) => { clearTimeout(timer); socket.destroy(); resolve(error); };
      const timer = setTimeout(() => done('connect timeout'), this.config.timeout);
      socket.once('connect', () => done(''));
      socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    });
  }
}

/** The part of the config that identifies a check: a change makes a new Target (and check). */
export function activeHealthKey(config: ActiveHealthConfig | undefined): string {
  return config === undefined ? '-' : JSON.stringify(config);
}
