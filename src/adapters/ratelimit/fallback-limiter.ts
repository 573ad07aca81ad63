// RATE_LIMIT_DISTRIBUTED's safety net: checks go to the shared limiter
// (Redis or the store) and, when it fails or is slower than `timeoutMs`, to
// a local limiter with the same limits, so publishing never stops because
// the limiter's backend is down. While down, the shared backend is probed
// again once per `retryMs` (one check, the others stay local), and the
// transitions are logged and reported through `onFallback`/`onRestore`
// (the hook a metric attaches to).
import type { Logger } from "../../observability/logging.js";
import type {
  Decision,
  Rate,
  RateLimiter,
  RateLimiterCapabilities,
} from "../../ports/rate-limiter.js";

export interface FallbackLimiterOptions {
  readonly timeoutMs: number;
  readonly retryMs: number;
  readonly log: Logger;
  /** Called when checks move to the local limiter (e.g. to count it in a metric). */
  readonly onFallback?: (err: unknown) => void;
  /** Called when checks move back to the shared limiter. */
  readonly onRestore?: () => void;
}

class LimiterTimeout extends Error {
  override readonly name = "LimiterTimeout";
}

export class FallbackLimiter implements RateLimiter {
  readonly #shared: RateLimiter;
  readonly #local: RateLimiter;
  readonly #opts: FallbackLimiterOptions;
  #down = false;
  #retryAt = 0;
  /** The shared limiter opened (a node may start while its backend is down). */
  #opened = false;

  constructor(shared: RateLimiter, local: RateLimiter, opts: FallbackLimiterOptions) {
    this.#shared = shared;
    this.#local = local;
    this.#opts = opts;
  }

  get capabilities(): RateLimiterCapabilities {
    return this.#shared.capabilities;
  }

  /** True while checks are answered by the local limiter. */
  get fallenBack(): boolean {
    return this.#down;
  }

  async open(): Promise<void> {
    await this.#local.open();
    try {
      await this.#shared.open();
      this.#opened = true;
    } catch (err) {
      // Starting without the backend is allowed: limits hold per node until it is back.
      this.#fail(err);
    }
  }

  async take(key: string, rate: Rate): Promise<Decision> {
    if (this.#down) {
      const now = Date.now();
      if (now < this.#retryAt) return this.#local.take(key, rate);
      this.#retryAt = now + this.#opts.retryMs; // this check is the probe
    }
    try {
      if (!this.#opened) {
        await this.#bounded(this.#shared.open());
        this.#opened = true;
      }
      const decision = await this.#bounded(this.#shared.take(key, rate));
      if (this.#down) this.#restore();
      return decision;
    } catch (err) {
      this.#fail(err);
      return this.#local.take(key, rate);
    }
  }

  async refund(key: string, rate: Rate): Promise<void> {
    if (this.#down || !this.#opened) return this.#local.refund(key, rate);
    try {
      await this.#bounded(this.#shared.refund(key, rate));
    } catch (err) {
      this.#fail(err);
    }
  }

  #bounded<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new LimiterTimeout(`no answer within ${this.#opts.timeoutMs} ms`)),
        this.#opts.timeoutMs,
      );
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  #fail(err: unknown): void {
    this.#retryAt = Date.now() + this.#opts.retryMs;
    if (this.#down) return;
    this.#down = true;
    this.#opts.log.warn(
      { err },
      "rate limiter backend failed: per-user and per-room limits now hold per node (local fallback)",
    );
    this.#opts.onFallback?.(err);
  }

  #restore(): void {
    this.#down = false;
    this.#opts.log.info("rate limiter backend is back: limits hold for the cluster again");
    this.#opts.onRestore?.();
  }

  async close(): Promise<void> {
    await Promise.all([this.#shared.close(), this.#local.close()]);
  }
}
