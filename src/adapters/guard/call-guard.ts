// A timeout and a circuit breaker around calls to one backend, shared by the
// store guard (guarded-store.ts) and the broker guard (guarded-broker.ts), so
// a dead dependency answers quickly with an error instead of hanging
// publishes, joins and handshakes. The breaker half-opens by itself (one trial
// call after `halfOpenAfterMs`), so service recovers when the backend returns.
//
// Hand-written rather than cockatiel: a profile of the many-rooms benchmark
// showed cockatiel's timeout policy (an AbortController per call, aborted on
// completion, which builds a DOMException) at over 20 % of the server's CPU.
// Calls share one timer: all have the same timeout, so their deadlines come
// in the order the calls were made, and a queue with one timer armed for its
// oldest deadline times them out (a timer per call was a visible share of a
// publish).

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
  /** Calls in the order made, from #head on: settled ones leave from the front. */
  #waiting: Waiting[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

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
      const waiting: Waiting = {
        deadline: performance.now() + this.#timeoutMs,
        settled: false,
        expire: () => {
          done(false);
          reject(this.#errors.timedOut(what, this.#timeoutMs));
        },
      };
      const done = (ok: boolean) => {
        waiting.settled = true;
        this.#dropSettled();
        this.#observe?.(what, (performance.now() - started) / 1000);
        if (trial) this.#trialInFlight = false;
        if (ok) {
          this.#failures = 0;
        } else if (++this.#failures >= this.#failuresToOpen) {
          this.#openUntil = Date.now() + this.#halfOpenAfterMs;
        }
      };
      this.#wait(waiting);
      let pending: Promise<T>;
      try {
        pending = around === undefined ? fn() : around(what, fn);
      } catch (err) {
        pending = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      pending.then(
        (value) => {
          if (waiting.settled) return;
          done(true);
          resolve(value);
        },
        (err: unknown) => {
          if (waiting.settled) return;
          done(false);
          reject(this.#errors.failed(what, err));
        },
      );
    });
  }

  #wait(waiting: Waiting): void {
    if (this.#waiting.push(waiting) === 1) this.#timer?.ref();
    if (this.#timer === undefined) this.#timer = this.#arm(this.#timeoutMs);
  }

  #arm(ms: number): NodeJS.Timeout {
    return setTimeout(() => this.#expire(), Math.max(1, Math.ceil(ms)));
  }

  /** Times out every call past its deadline, then waits for the next one. */
  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    const waiting = this.#waiting;
    while (this.#head < waiting.length) {
      const first = waiting[this.#head]!;
      if (!first.settled && first.deadline > now) break;
      this.#head++;
      if (!first.settled) first.expire();
    }
    this.#dropSettled();
    if (this.#head < waiting.length) this.#timer = this.#arm(waiting[this.#head]!.deadline - now);
  }

  /** Forgets the settled calls at the front; the queue is empty once all have settled. */
  #dropSettled(): void {
    const waiting = this.#waiting;
    while (this.#head < waiting.length && waiting[this.#head]!.settled) this.#head++;
    if (this.#head === waiting.length) {
      waiting.length = 0;
      this.#head = 0;
      // Armed for a call that settled: it must not hold the process open.
      this.#timer?.unref();
    } else if (this.#head > 1024 && this.#head * 2 > waiting.length) {
      waiting.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

interface Waiting {
  /** performance.now() after which the call has timed out. */
  readonly deadline: number;
  settled: boolean;
  /** Rejects the call with the timeout error. */
  readonly expire: () => void;
}

/** Errors made by an open breaker (weak: nothing is kept alive by being here). */
const refusals = new WeakSet<Error>();
