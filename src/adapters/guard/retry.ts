// Retries for idempotent calls only (a broker subscribe, never a publish):
// capped exponential backoff with full jitter, so nodes that failed together do
// not retry in lockstep, and a retry budget, so that while a backend is down
// retries add a bounded fraction of load instead of multiplying it (the
// retry-storm problem; Finagle's RetryBudget and gRPC's retry throttling work
// the same way).

export interface RetryBudgetOptions {
  /** Retries earned per first attempt, e.g. 0.1: at most one retry per ten calls, over time. */
  readonly ratio: number;
  /** Retries always allowed per second, however few calls were made. Default 10. */
  readonly minPerSecond?: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

/** A token bucket of retries: each first attempt deposits `ratio`, each retry withdraws one. */
export class RetryBudget {
  readonly #ratio: number;
  readonly #minPerSecond: number;
  readonly #now: () => number;
  /** Earned from calls; capped so a long quiet spell cannot bank a storm. */
  #earned = 0;
  /** The per-second floor, refilling continuously up to minPerSecond. */
  #reserve: number;
  #refilledAt: number;

  constructor({ ratio, minPerSecond = 10, now = Date.now }: RetryBudgetOptions) {
    this.#ratio = ratio;
    this.#minPerSecond = minPerSecond;
    this.#now = now;
    this.#reserve = minPerSecond;
    this.#refilledAt = now();
  }

  /** Records a first attempt. */
  deposit(): void {
    this.#earned = Math.min(this.#earned + this.#ratio, Math.max(1, this.#ratio * 1000));
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryWithdraw(): boolean {
    const now = this.#now();
    this.#reserve = Math.min(
      this.#minPerSecond,
      this.#reserve + ((now - this.#refilledAt) / 1000) * this.#minPerSecond,
    );
    this.#refilledAt = now;
    // A hair under 1: ten deposits of 0.1 sum to 0.9999999999999999.
    if (this.#earned >= 1 - 1e-9) {
      this.#earned -= 1;
      return true;
    }
    if (this.#reserve >= 1) {
      this.#reserve -= 1;
      return true;
    }
    return false;
  }
}

export interface RetryOptions {
  /** Attempts in all, the first included; 1 means no retry. */
  readonly attempts: number;
  /** Backoff before the first retry; doubles per retry, capped at maxDelayMs, fully jittered. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly budget: RetryBudget;
  /** Whether a failure is worth retrying (e.g. not when the breaker refused the call). */
  readonly retryable?: (err: unknown) => boolean;
  /** Hears each retry about to be made. */
  readonly onRetry?: (attempt: number, err: unknown) => void;
  /** Random source in [0, 1), for tests. */
  readonly random?: () => number;
}

/** Runs `fn` until it succeeds, the attempts or the budget run out, or a failure is not retryable. */
export async function retrying<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const random = options.random ?? Math.random;
  options.budget.deposit();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (
        attempt >= options.attempts ||
        options.retryable?.(err) === false ||
        !options.budget.tryWithdraw()
      ) {
        throw err;
      }
      options.onRetry?.(attempt, err);
      const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, Math.round(random() * cap)));
    }
  }
}
