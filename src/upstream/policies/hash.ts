// hash: the same key goes to the same target, on a consistent-hash ring (ring.ts). The key is a
// header, a cookie, a query parameter, or the URI (path and query). Requests without the key are
// spread at random.
import type { RequestContext } from '../../server/context.js';
import type { Target } from '../target.js';
import { cookieValue, headerValue, queryValue } from '../request-keys.js';
import { HashRing, hashString } from './ring.js';
import { pickRandom, type BalancingPolicy } from './policy.js';

export type HashSource = 'header' | 'cookie' | 'query' | 'uri';

/** Parses "header:X-User", "cookie:session", "query:id" or "uri". */
export function parseHashKey(spec: string): { source: HashSource; name: string } {
  if (spec === 'uri') return { source: 'uri', name: '' };
  const colon = spec.indexOf(':');
  const source = spec.slice(0, colon);
  const name = spec.slice(colon + 1);
  if (colon === -1 || name === '' || (source !== 'header' && source !== 'cookie' && source !== 'query')) {
    throw new Error(`expected "header:<name>", "cookie:<name>", "query:<name>" or "uri", got "${spec}"`);
  }
  return { source, name: source === 'header' ? name.toLowerCase() : name };
}

export class HashPolicy implements BalancingPolicy {
  readonly #ring: HashRing;
  readonly #source: HashSource;
  readonly #name: string;

  constructor(allTargets: readonly Target[], weights: readonly number[], spec: string) {
    this.#ring = new HashRing(allTargets, weights);
    const key = parseHashKey(spec);
    this.#source = key.source;
    this.#name = key.name;
  }

  pick(targets: readonly Target[], ctx: RequestContext): Target | undefined {
    const key = this.#key(ctx);
    if (key === undefined || key === '') return pickRandom(targets);
    return this.#ring.lookup(hashString(key));
  }

  #key(ctx: RequestContext): string | undefined {
    switch (this.#source) {
      case 'header': return headerValue(ctx.req.rawHeaders, this.#name);
      case 'cookie': return cookieValue(ctx.req.rawHeaders, this.#name);
      case 'query': return queryValue(ctx.query, this.#name);
      default: return ctx.path + ctx.query;
    }
  }
}
