// The compiled, immutable form of a config: what the request path reads. A reload builds a new
// Plan and swaps one reference; requests in flight keep the Plan they started with.
import type { BlockList } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './schema.js';
import type { Router } from '../router/router.js';
import type { PathOptions } from '../router/path.js';
import type { Action } from '../handlers/types.js';
import type { Upstream } from '../upstream/upstream.js';
import type { Target } from '../upstream/target.js';
import type { AccessLog } from '../observe/access-log.js';

export interface ServerSettings {
  /** Peers whose forwarding headers are believed; undefined when none are trusted. */
  trustedProxies: BlockList | undefined;
  /** Unix-socket peers are trusted when trusted_proxies lists "unix". */
  trustUnixPeers: boolean;
  via: boolean;
  forwarded: boolean;
  hideResponseHeaders: Set<string>;
  /** Lower-case header name, or undefined when request ids are off. */
  requestIdHeader: string | undefined;
  paths: PathOptions;
  maxBodySize: number;
}

export interface CompiledRoute {
  name: string;
  index: number;
  /** The handler chain and action, composed. */
  run: Action;
}

export interface Plan {
  generation: number;
  config: Config;
  settings: ServerSettings;
  router: Router<CompiledRoute>;
  upstreams: ReadonlyMap<string, Upstream>;
  /** Every target pool the plan uses, by key. */
  targets: ReadonlyMap<string, Target>;
  log: Logger;
  access: AccessLog | undefined;
}
