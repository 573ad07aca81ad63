// Which StoreErrorCode a failure of `pg` is. Connection-level failures (the
// server down, restarting or unreachable, the pool unable to connect) are
// `unavailable`; conflicts with a concurrent writer that escape the
// statements are `conflict`; timeouts are `timeout`; the rest `failed`.
import pg from "pg";
import { StoreError, StoreErrorCode } from "../../ports/store-error.js";
import { SOCKET_UNAVAILABLE } from "./socket-errors.js";

/** The driver's error as a StoreError; `what` names the failed call. */
export function toStoreError(what: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = errorCode(err);
  return new StoreError(
    postgresErrorCode(err),
    `postgres ${what} failed${code === "" ? "" : ` (${code})`}`,
    { cause: err },
  );
}

/** SQLSTATE of a server error, or the errno code of a socket error ('' for neither). */
function errorCode(err: unknown): string {
  if (err instanceof Error && "code" in err && typeof err.code === "string") return err.code;
  // Node 20's happy-eyeballs connect fails with an AggregateError of one error per address.
  if (err instanceof AggregateError) return errorCode(err.errors[0]);
  return "";
}

// pg and pg-pool give their own connection-level errors no code, only these
// messages (pg 8.23, pg-pool 3.14): the connection dropped, a connect timed
// out, or the pool was ended under a pending call.
const DRIVER_UNAVAILABLE =
  /^(Connection terminated|timeout expired$|timeout exceeded when trying to connect|Client was closed|Client has encountered a connection error|Cannot use a pool after calling end)/;

export function postgresErrorCode(err: unknown): StoreErrorCode {
  const code = errorCode(err);
  if (err instanceof pg.DatabaseError) {
    // Class 08 connection exceptions; 57P01-57P03 admin or crash shutdown,
    // server starting up; 53300 too many connections.
    if (/^(08|57P0[123]$|53300$)/.test(code)) return StoreErrorCode.Unavailable;
    // statement_timeout, which is STORE_TIMEOUT.
    if (code === "57014") return StoreErrorCode.Timeout;
    // Serialization failure, deadlock, unique violation: a conflict with a
    // concurrent writer that the statements did not absorb.
    if (code === "40001" || code === "40P01" || code === "23505") return StoreErrorCode.Conflict;
    return StoreErrorCode.Failed;
  }
  if (SOCKET_UNAVAILABLE.has(code)) return StoreErrorCode.Unavailable;
  // postgres-primary.ts: no host of a multi-host POSTGRES_URL is a writable primary.
  if (err instanceof Error && err.name === "PrimaryNotFoundError")
    return StoreErrorCode.Unavailable;
  if (err instanceof Error) {
    // query_timeout: the server stopped answering a running query.
    if (err.message === "Query read timeout") return StoreErrorCode.Timeout;
    if (DRIVER_UNAVAILABLE.test(err.message)) return StoreErrorCode.Unavailable;
  }
  return StoreErrorCode.Failed;
}
