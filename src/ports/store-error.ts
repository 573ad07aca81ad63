// The one error a Store rejects with: the driver's error is the cause, and
// the code says what kind of failure it was, as BrokerError does for brokers.
// Callers map every StoreError to the wire's `unavailable` (retry later):
// a client can't tell a timeout from a refused connection, and neither is
// its fault.
import { CodedError } from "./coded-error.js";

export const StoreErrorCode = {
  /** The call did not finish within STORE_TIMEOUT. */
  Timeout: "timeout",
  /** The store is unreachable, closed, or the circuit breaker is open. */
  Unavailable: "unavailable",
  /**
   * The store refused the call as inconsistent (e.g. a missing row it
   * expected), or a concurrent writer's conflict escaped the adapter
   * (serialization failure, unique violation).
   */
  Conflict: "conflict",
  /** Any other failure reported by the driver. */
  Failed: "failed",
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

export class StoreError extends CodedError<StoreErrorCode> {
  override readonly name = "StoreError";
}
