// The local limiter: one Map of tats in this process. It backs the
// per-connection and per-IP limits always, and every limit when
// RATE_LIMIT_DISTRIBUTED is off or its backend is down. Keys at rest are
// swept every `sweepIntervalMs`, so a flood of one-off client addresses costs
// memory for at most one burst window plus one sweep interval.
import type { Clock, Decision, Rate, RateLimiter } from "../../ports/rate-limiter.js";
import { gcra } from "./gcra.js";

export interface MemoryLimiterOptions {
  readonly now?: Clock;
  readonly sweepIntervalMs?: number;
}

export class MemoryLimiter implements RateLimiter {
  readonly capabilities = { shared: false };
  readonly #tats = new Map<string, number>();
  readonly #now: Clock;
  readonly #sweepIntervalMs: number;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(opts: MemoryLimiterOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#sweepIntervalMs = opts.sweepIntervalMs ?? 10_000;
  }

  open(): Promise<void> {
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.sweep(), this.#sweepIntervalMs);
      this.#sweeper.unref();
    }
    return Promise.resolve();
  }

  take(key: string, rate: Rate): Promise<Decision> {
    return Promise.resolve(this.takeNow(key, rate));
  }

  /** The synchronous form, for callers on a hot path that know the limiter is local. */
  takeNow(key: string, rate: Rate): Decision {
    const step = gcra(this.#tats.get(key), this.#now(), rate);
    if (step.allowed) this.#tats.set(key, step.tat);
    return step;
  }

  refund(key: string, rate: Rate): Promise<void> {
    const tat = this.#tats.get(key);
    if (tat !== undefined) {
      const back = tat - rate.intervalMs;
      if (back <= this.#now()) this.#tats.delete(key);
      else this.#tats.set(key, back);
    }
    return Promise.resolve();
  }

  /** Drops keys at rest. */
  sweep(): void {
    const now = this.#now();
    for (const [key, tat] of this.#tats) if (tat <= now) this.#tats.delete(key);
  }

  /** Keys held (for tests of the sweep). */
  keys(): IterableIterator<string> {
    return this.#tats.keys();
  }

  close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#tats.clear();
    return Promise.resolve();
  }
}
