// Every store call gets a timeout and goes through one circuit breaker, so a
// dead store answers quickly with a StoreError instead of hanging
// publishes and handshakes. The breaker half-opens by itself (one trial call
// after `halfOpenAfterMs`), so service recovers when the store returns.
//
// Hand-written rather than cockatiel: a profile of the many-rooms benchmark
// showed cockatiel's timeout policy (an AbortController per call, aborted on
// completion, which builds a DOMException) at over 20 % of the server's CPU.
// This is one timer per call and a counter.
import type {
  AppendResult,
  HistoryPage,
  NewMessage,
  SessionRecord,
  SessionRoom,
  Store,
  StoreCapabilities,
  TrimPolicy,
} from "../../ports/store.js";
import { StoreError, StoreErrorCode } from "../../ports/store-error.js";

export interface GuardOptions {
  readonly timeoutMs: number;
  /** Consecutive failures that open the breaker. */
  readonly failures?: number;
  /** How long the breaker stays open before letting one call through. */
  readonly halfOpenAfterMs?: number;
  /** Hears each call that ran (not one refused by the open breaker): its name and duration. */
  readonly observe?: (operation: string, seconds: number) => void;
  /** Runs each call, e.g. inside a trace span; absent, the call runs as it is. */
  readonly around?: <T>(operation: string, call: () => Promise<T>) => Promise<T>;
}

export class GuardedStore implements Store {
  readonly #inner: Store;
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
    inner: Store,
    { timeoutMs, failures = 3, halfOpenAfterMs = 1000, observe, around }: GuardOptions,
  ) {
    this.#inner = inner;
    this.#observe = observe;
    this.#around = around;
    this.#timeoutMs = timeoutMs;
    this.#failuresToOpen = failures;
    this.#halfOpenAfterMs = halfOpenAfterMs;
  }

  get capabilities(): StoreCapabilities {
    return this.#inner.capabilities;
  }

  /** False while the breaker is open (the store failed repeatedly). */
  get healthy(): boolean {
    return this.#failures < this.#failuresToOpen;
  }

  #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let trial = false;
    if (!this.healthy) {
      if (this.#trialInFlight || Date.now() < this.#openUntil) {
        return Promise.reject(
          new StoreError(StoreErrorCode.Unavailable, `store ${what} refused: circuit open`),
        );
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
        reject(
          new StoreError(
            StoreErrorCode.Timeout,
            `store ${what} timed out after ${this.#timeoutMs} ms`,
          ),
        );
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
          reject(
            err instanceof StoreError
              ? err
              : new StoreError(StoreErrorCode.Failed, `store ${what} failed`, { cause: err }),
          );
        },
      );
    });
  }

  open(): Promise<void> {
    return this.#inner.open();
  }
  append(room: string, message: NewMessage): Promise<AppendResult> {
    return this.#call("append", () => this.#inner.append(room, message));
  }
  read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    return this.#call("read", () => this.#inner.read(room, afterOffset, limit));
  }
  createSession(session: SessionRecord, tokenHash: string, expiresAt: number): Promise<void> {
    return this.#call("createSession", () =>
      this.#inner.createSession(session, tokenHash, expiresAt),
    );
  }
  resumeSession(
    tokenHash: string,
    newTokenHash: string,
    expiresAt: number,
    userId: string,
  ): Promise<SessionRecord | undefined> {
    return this.#call("resumeSession", () =>
      this.#inner.resumeSession(tokenHash, newTokenHash, expiresAt, userId),
    );
  }
  saveSession(memberId: string, rooms: readonly SessionRoom[], expiresAt: number): Promise<void> {
    return this.#call("saveSession", () => this.#inner.saveSession(memberId, rooms, expiresAt));
  }
  revokeUserSessions(userId: string): Promise<void> {
    return this.#call("revokeUserSessions", () => this.#inner.revokeUserSessions(userId));
  }
  trim(policy: TrimPolicy): Promise<number> {
    return this.#call("trim", () => this.#inner.trim(policy));
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
