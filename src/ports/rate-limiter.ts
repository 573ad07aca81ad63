// The RateLimiter port: GCRA (the generic cell rate algorithm) over keys.
// Adapters live in src/adapters/ratelimit/ and all pass
// test/contract/rate-limiter.contract.ts.
//
// GCRA keeps one number per key, its theoretical arrival time (`tat`): the
// moment the key would be back at rest. A request at `now` passes when
// max(tat, now) + interval - interval × burst <= now, and then moves tat to
// max(tat, now) + interval. From rest exactly `burst` requests pass at once,
// then one per `interval`; nothing refills in the background, and a key whose
// tat is in the past is equivalent to no key at all (so it may be dropped).

/** One limit: `burst` at once from rest, then one per `intervalMs`. */
export interface Rate {
  /** Milliseconds per request at the sustained rate (period / count); may be fractional. */
  readonly intervalMs: number;
  /** Requests that pass at once from rest; at least 1. */
  readonly burst: number;
}

/** The answer to one check. */
export interface Decision {
  readonly allowed: boolean;
  /** When refused: milliseconds until one more request would pass (> 0); 0 when allowed. */
  readonly retryAfterMs: number;
}

export interface RateLimiterCapabilities {
  /** The state is shared by every node using the same backend (Redis, PostgreSQL). */
  readonly shared: boolean;
}

/**
 * Guarantees every adapter keeps (the contract suite checks each):
 * - `take` is one atomic check-and-consume per key: concurrent takes on one
 *   key, from any number of processes sharing the backend, never let more
 *   through than burst + elapsed / interval.
 * - A refused take consumes nothing and answers `retryAfterMs` > 0, after
 *   which one take passes (on the backend's clock).
 * - Shared adapters use the backend's clock (Redis TIME, the database's
 *   clock), never the calling node's, so nodes with skewed clocks agree.
 * - Keys at rest cost nothing: they expire (TTL) or are swept.
 * - Errors (backend down, timeout) reject; they never answer "allowed".
 */
export interface RateLimiter {
  readonly capabilities: RateLimiterCapabilities;

  /** Connects and creates what the adapter needs (idempotent). */
  open(): Promise<void>;

  /** Checks `key` against `rate` and, when it passes, consumes one request. */
  take(key: string, rate: Rate): Promise<Decision>;

  /**
   * Gives back one request taken from `key` (when a later check of the same
   * request refused it, so the refused request consumes nothing overall).
   */
  refund(key: string, rate: Rate): Promise<void>;

  close(): Promise<void>;
}

/** Milliseconds since the epoch; adapters accept one to make time controllable in tests. */
export type Clock = () => number;
