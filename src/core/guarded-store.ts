// Every store call gets a timeout and goes through one circuit breaker, so a
// dead store answers quickly with StoreUnavailableError instead of hanging
// publishes and handshakes. The breaker half-opens by itself, so service
// recovers when the store returns.
import {
  ConsecutiveBreaker,
  TimeoutStrategy,
  circuitBreaker,
  handleAll,
  timeout,
  wrap,
  type IPolicy,
} from "cockatiel";
import type {
  AppendResult,
  HistoryPage,
  NewMessage,
  SessionRecord,
  SessionRoom,
  Store,
  StoreCapabilities,
  TrimPolicy,
} from "../ports/store.js";

export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
}

export interface GuardOptions {
  readonly timeoutMs: number;
  /** Consecutive failures that open the breaker. */
  readonly failures?: number;
  /** How long the breaker stays open before letting one call through. */
  readonly halfOpenAfterMs?: number;
}

export class GuardedStore implements Store {
  readonly #inner: Store;
  readonly #policy: IPolicy;
  #healthy = true;

  constructor(inner: Store, { timeoutMs, failures = 3, halfOpenAfterMs = 1000 }: GuardOptions) {
    this.#inner = inner;
    const breaker = circuitBreaker(handleAll, {
      halfOpenAfter: halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(failures),
    });
    breaker.onBreak(() => (this.#healthy = false));
    breaker.onReset(() => (this.#healthy = true));
    this.#policy = wrap(breaker, timeout(timeoutMs, TimeoutStrategy.Aggressive));
  }

  get capabilities(): StoreCapabilities {
    return this.#inner.capabilities;
  }

  /** False while the breaker is open (the store failed repeatedly). */
  get healthy(): boolean {
    return this.#healthy;
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.#policy.execute(fn);
    } catch (err) {
      throw new StoreUnavailableError(`store ${what} failed`, { cause: err });
    }
  }

  open(): Promise<void> {
    return this.#inner.open();
  }
  append(room: string, message: NewMessage, dedupWindowMs: number): Promise<AppendResult> {
    return this.#call("append", () => this.#inner.append(room, message, dedupWindowMs));
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
  ): Promise<SessionRecord | undefined> {
    return this.#call("resumeSession", () =>
      this.#inner.resumeSession(tokenHash, newTokenHash, expiresAt),
    );
  }
  saveSession(memberId: string, rooms: readonly SessionRoom[], expiresAt: number): Promise<void> {
    return this.#call("saveSession", () => this.#inner.saveSession(memberId, rooms, expiresAt));
  }
  trim(policy: TrimPolicy, dedupWindowMs: number): Promise<number> {
    return this.#call("trim", () => this.#inner.trim(policy, dedupWindowMs));
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
