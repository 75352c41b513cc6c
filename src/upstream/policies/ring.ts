// A consistent-hash ring shared by the hash and ip_hash policies. Each target owns many points
// (virtual nodes, proportional to its weight) placed by hashing its address, so the ring does
// not depend on which other targets exist: adding or removing one target moves only the keys
// that land on its points, about 1/N of them. A key whose target is out of rotation walks on to
// the next point whose target is in rotation, so only that target's keys move.
import type { Target } from '../target.js';

const POINTS_PER_WEIGHT = 160;

/** FNV-1a over UTF-16 code units, finished with murmur3's mixer for an even spread. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class HashRing {
  readonly #points: Uint32Array;
  readonly #owners: Target[];

  /** Built once per plan from every target of the upstream (in rotation or not) and its configured weight. */
  constructor(targets: readonly Target[], weights: readonly number[]) {
    const pairs: [number, Target][] = [];
    for (let k = 0; k < targets.length; k++) {
      const t = targets[k]!;
      const n = POINTS_PER_WEIGHT * Math.max(1, Math.round(weights[k] ?? 1));
      for (let i = 0; i < n; i++) pairs.push([hashString(`${t.address.url}#${i}`), t]);
    }
    pairs.sort((a, b) => a[0] - b[0]);
    this.#points = Uint32Array.from(pairs, (p) => p[0]);
    this.#owners = pairs.map((p) => p[1]);
  }

  /** The first target in rotation at or after `hash` on the ring. */
  lookup(hash: number): Target | undefined {
    const points = this.#points;
    const n = points.length;
    if (n === 0) return undefined;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    for (let k = 0; k < n; k++) {
      const t = this.#owners[(lo + k) % n]!;
      if (t.inRotation) return t;
    }
    return undefined;
  }
}
