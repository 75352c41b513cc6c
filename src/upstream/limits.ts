// Overload protection per target. With pipelining off, every request in flight either holds one
// of the pool's `max_connections` connections or waits in the pool's queue; so the pool size caps
// connections and `inflight < max_connections + max_pending` caps the queue. A request that would
// go beyond is answered 503 with Retry-After at once instead of waiting without bound.

export interface LimitsConfig {
  maxConnections: number;
  /** Requests allowed to wait for a connection; 0: none wait. */
  maxPending: number;
}

/** The in-flight count a target may not reach. */
export function capacityOf(limits: LimitsConfig): number {
  return limits.maxConnections + limits.maxPending;
}
