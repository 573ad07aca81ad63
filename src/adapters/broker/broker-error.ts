// The one error class the broker adapters throw. Callers (the router, /readyz)
// branch on `code`, never on message text; `cause` keeps the client library's
// own error for logs.
import { CodedError } from "../../ports/coded-error.js";

export const BrokerErrorCode = {
  /** The adapter is not open yet, or already closed. */
  NotOpen: "not_open",
  /** The connection to the broker server is down (the adapter is reconnecting). */
  Disconnected: "disconnected",
  /** The first connection could not be made. */
  ConnectFailed: "connect_failed",
  /** A publish, subscribe or unsubscribe failed at the broker. */
  OperationFailed: "operation_failed",
  /** A call did not complete within BROKER_TIMEOUT (it may still complete later). */
  Timeout: "timeout",
  /** The circuit breaker is open after repeated failures: the call was not made. */
  CircuitOpen: "circuit_open",
  /** A room id outside the protocol's alphabet, or a bad prefix. */
  InvalidName: "invalid_name",
} as const;

export type BrokerErrorCode = (typeof BrokerErrorCode)[keyof typeof BrokerErrorCode];

export class BrokerError extends CodedError<BrokerErrorCode> {
  override readonly name = "BrokerError";
}
