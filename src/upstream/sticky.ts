// Sticky sessions by cookie. The cookie value is an HMAC of the upstream and target identity
// under a secret key: opaque (it does not reveal the address) and unforgeable (a client cannot
// name an arbitrary or unlisted address). The valid values are computed once per plan, so
// checking a cookie is one Map lookup; anything else is ignored and the request re-balanced.
import { createHmac, randomBytes } from 'node:crypto';
import type { Target } from './target.js';
import { cookieValue } from './request-keys.js';

/**
 * Used when the config gives no `sticky.key`: generated once per process, so cookies stay valid
 * across reloads but not across restarts or between several Portico instances (give a key then).
 */
const PROCESS_KEY = randomBytes(32);

export interface StickyConfig {
  cookie: string;
  key: string | undefined;
  maxAge: number;
  sameSite: 'Lax' | 'Strict' | 'None';
  /** true/false, or 'auto': Secure when the request came over HTTPS. */
  secure: boolean | 'auto';
}

export class StickyCookies {
  readonly name: string;
  readonly #byValue = new Map<string, Target>();
  readonly #value = new Map<Target, string>();
  /** Set-Cookie header values, without and with Secure. */
  readonly #plain = new Map<Target, string>();
  readonly #secure = new Map<Target, string>();
  readonly #secureMode: boolean | 'auto';

  constructor(config: StickyConfig, upstream: string, targets: readonly Target[]) {
    this.name = config.cookie;
    this.#secureMode = config.secure;
    const key = config.key !== undefined ? Buffer.from(config.key, 'utf8') : PROCESS_KEY;
    let attrs = '; Path=/; HttpOnly; SameSite=' + config.sameSite;
    if (config.maxAge > 0) attrs += `; Max-Age=${Math.floor(config.maxAge / 1000)}`;
    for (const t of targets) {
      const value = createHmac('sha256', key).update(`portico-sticky\n${upstream}\n${t.address.url}`).digest('base64url').slice(0, 22);
      this.#byValue.set(value, t);
      this.#value.set(t, value);
      this.#plain.set(t, `${config.cookie}=${value}${attrs}`);
      this.#secure.set(t, `${config.cookie}=${value}${attrs}; Secure`);
    }
  }

  /** The cookie value the request carries (not yet checked), or undefined. */
  read(rawHeaders: readonly string[]): string | undefined {
    return cookieValue(rawHeaders, this.name);
  }

  /** The target a genuine cookie names; undefined for a forged, stale or tampered one. */
  targetFor(value: string): Target | undefined {
    return this.#byValue.get(value);
  }

  /** The Set-Cookie value to send when the request did not already carry `target`'s cookie. */
  setCookieFor(target: Target, carried: string | undefined, https: boolean): string | undefined {
    if (carried !== undefined && this.#value.get(target) === carried) return undefined;
    const secure = this.#secureMode === 'auto' ? https : this.#secureMode;
    return (secure ? this.#secure : this.#plain).get(target);
  }
}
