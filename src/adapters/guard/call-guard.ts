// A timeout and a circuit breaker around calls to one backend, shared by the
// store guard (guarded-store.ts) and the broker guard (guarded-broker.ts), so
// a dead dependency answers quickly with an error instead of hanging
// publishes, joins and handshakes. The breaker half-opens by itself (one trial
// call after `halfOpenAfterMs`), so service recovers when the backend returns.
//
// Hand-written rather than cockatiel: a profile of the many-rooms benchmark
// showed cockatiel's timeout policy (an AbortController per call, aborted on
// completion, which builds a DOMException) at over 20 % of the server's CPU.
// This is one timer per call and a counter.

export interface BreakerOptions {
  readonly timeoutMs: number;
  /** Consecutive failures that open the breaker. Default 3. */
  readonly failures?: number;
  /** How long the breaker stays open before letting one call through. Default 1000 ms. */
  readonly halfOpenAfterMs?: number;
  /** Hears each call that ran (not one refused by the open breaker): its name and duration. */
  readonly observe?: (operation: string, seconds: number) => void;
  /** Runs each call, e.g. inside a trace span; absent, the call runs as it is. */
  readonly around?: <T>(operation: string, call: () => Promise<T>) => Promise<T>;
}

/** How a guard names its failures: each backend throws its own coded error class. */
export interface GuardErrors {
  /** The breaker is open: the call was not made. */
  refused(operation: string): Error;
  /** The call did not settle within the timeout (it may still complete later). */
  timedOut(operation: string, timeoutMs: number): Error;
  /** The call failed; an error already of the backend's class passes through as it is. */
  failed(operation: string, err: unknown): Error;
}

export class CallGuard {
  readonly #errors: GuardErrors;
  readonly #timeoutMs: number;
  readonly #failuresToOpen: number;
  readonly #halfOpenAfterMs: number;
  #failures = 0;
  /** While open: when the next trial call may go through. */
  #openUntil = 0;
  #trialInFlight = false;
  readonly #observe: ((operation: string, seconds: number) => void) | undefined;
  readonly #around: (<T>(operation: string, call: () => Promise<T>) => Promise<T>) | undefined;

  constructor(
    errors: GuardErrors,
    { timeoutMs, failures = 3, halfOpenAfterMs = 1000, observe, around }: BreakerOptions,
  ) {
    this.#errors = errors;
    this.#observe = observe;
    this.#around = around;
    this.#timeoutMs = timeoutMs;
    this.#failuresToOpen = failures;
    this.#halfOpenAfterMs = halfOpenAfterMs;
  }

  /** False while the breaker is open (the backend failed repeatedly). */
  get healthy(): boolean {
    return this.#failures < this.#failuresToOpen;
  }

  /** Closes the breaker, e.g. when the client library reports it reconnected. */
  reset(): void {
    this.#failures = 0;
    this.#openUntil = 0;
  }

  /** Whether `err` came from the open breaker (no call was made; retrying now is pointless). */
  refusedByBreaker(err: unknown): boolean {
    return err instanceof Error && refusals.has(err);
  }

  call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let trial = false;
    if (!this.healthy) {
      if (this.#trialInFlight || Date.now() < this.#openUntil) {
        const refused = this.#errors.refused(what);
        refusals.add(refused);
        return Promise.reject(refused);
      }
      trial = this.#trialInFlight = true;
    }
    const started = this.#observe === undefined ? 0 : performance.now();
    const around = this.#around;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const done = (ok: boolean) => {
        settled = true;
        clearTimeout(timer);
        this.#observe?.(what, (performance.now() - started) / 1000);
        if (trial) this.#trialInFlight = false;
        if (ok) {
          this.#failures = 0;
        } else if (++this.#failures >= this.#failuresToOpen) {
          this.#openUntil = Date.now() + this.#halfOpenAfterMs;
        }
      };
      const timer = setTimeout(() => {
        if (settled) return;
        done(false);
        reject(this.#errors.timedOut(what, this.#timeoutMs));
      }, this.#timeoutMs);
      let pending: Promise<T>;
      try {
        pending = around === undefined ? fn() : around(what, fn);
      } catch (err) {
        pending = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      pending.then(
        (value) => {
          if (settled) return;
          done(true);
          resolve(value);
        },
        (err: unknown) => {
          if (settled) return;
          done(false);
          reject(this.#errors.failed(what, err));
        },
      );
    });
  }
}

/** Errors made by an open breaker (weak: nothing is kept alive by being here). */
const refusals = new WeakSet<Error>();
