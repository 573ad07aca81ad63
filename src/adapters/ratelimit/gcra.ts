// The GCRA step for adapters that compute in this process (memory, SQLite's
// fallback path). Redis and PostgreSQL run the same arithmetic server-side;
// test/unit/gcra.test.ts pins it down.
import type { Rate } from "../../ports/rate-limiter.js";

export interface Step {
  readonly allowed: boolean;
  /** The key's new tat (unchanged when refused). */
  readonly tat: number;
  readonly retryAfterMs: number;
}

/** One check of a key whose stored tat is `tat` (0 or undefined: at rest) at `now`. */
export function gcra(tat: number | undefined, now: number, rate: Rate): Step {
  const base = Math.max(tat ?? 0, now);
  const allowAt = base + rate.intervalMs - rate.intervalMs * rate.burst;
  if (allowAt > now) return { allowed: false, tat: tat ?? 0, retryAfterMs: allowAt - now };
  return { allowed: true, tat: base + rate.intervalMs, retryAfterMs: 0 };
}

/** Whole milliseconds for the wire: at least 1 when refused. */
export function wireRetry(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}
