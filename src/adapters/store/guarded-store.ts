// Every store call gets a timeout and goes through one circuit breaker (the
// CallGuard the broker guard shares, see ../guard/call-guard.ts), so a dead
// store answers quickly with a StoreError instead of hanging publishes and
// handshakes. No retries here: a client retries its publish with the same
// message id (which the store de-duplicates), and the timers retry on their
// next tick.
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
import { CallGuard, type BreakerOptions, type GuardErrors } from "../guard/call-guard.js";

export type GuardOptions = BreakerOptions;

const storeErrors: GuardErrors = {
  refused: (what) =>
    new StoreError(StoreErrorCode.Unavailable, `store ${what} refused: circuit open`),
  timedOut: (what, ms) =>
    new StoreError(StoreErrorCode.Timeout, `store ${what} timed out after ${ms} ms`),
  failed: (what, err) =>
    err instanceof StoreError
      ? err
      : new StoreError(StoreErrorCode.Failed, `store ${what} failed`, { cause: err }),
};

export class GuardedStore implements Store {
  readonly #inner: Store;
  readonly #guard: CallGuard;

  constructor(inner: Store, options: GuardOptions) {
    this.#inner = inner;
    this.#guard = new CallGuard(storeErrors, options);
  }

  get capabilities(): StoreCapabilities {
    return this.#inner.capabilities;
  }

  /** False while the breaker is open (the store failed repeatedly). */
  get healthy(): boolean {
    return this.#guard.healthy;
  }

  #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.#guard.call(what, fn);
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
