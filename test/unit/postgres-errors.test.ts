// The PostgreSQL adapter's error codes, from errors shaped as `pg`, pg-pool
// and Node's sockets report them (no server needed; the store contract's
// outage test checks a real one).
import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import { postgresErrorCode, toStoreError } from "../../src/adapters/store/postgres-errors.js";
import { StoreError, StoreErrorCode } from "../../src/ports/store-error.js";

function serverError(sqlstate: string): pg.DatabaseError {
  const err = new pg.DatabaseError("server said no", 0, "error");
  err.code = sqlstate;
  return err;
}

function socketError(errno: string): Error {
  return Object.assign(new Error(`connect ${errno} 127.0.0.1:5432`), { code: errno });
}

test("postgres errors - connection-level failures are unavailable", () => {
  const failures: unknown[] = [
    socketError("ECONNREFUSED"),
    socketError("ECONNRESET"),
    new AggregateError([socketError("ECONNREFUSED"), socketError("ECONNREFUSED")]),
    serverError("57P01"),
    serverError("57P03"),
    serverError("08006"),
    serverError("08001"),
    serverError("53300"),
    new Error("Connection terminated unexpectedly"),
    new Error("timeout exceeded when trying to connect"),
    new Error("Connection terminated due to connection timeout"),
    new Error("Cannot use a pool after calling end on the pool"),
  ];
  for (const err of failures) assert.equal(postgresErrorCode(err), StoreErrorCode.Unavailable);
});

test("postgres errors - serialization, deadlock and unique conflicts are conflict", () => {
  for (const sqlstate of ["40001", "40P01", "23505"])
    assert.equal(postgresErrorCode(serverError(sqlstate)), StoreErrorCode.Conflict);
});

test("postgres errors - statement and query timeouts are timeout", () => {
  assert.equal(postgresErrorCode(serverError("57014")), StoreErrorCode.Timeout);
  assert.equal(postgresErrorCode(new Error("Query read timeout")), StoreErrorCode.Timeout);
});

test("postgres errors - anything else is failed", () => {
  for (const err of [serverError("42P01"), serverError("22P02"), new TypeError("x"), "text"])
    assert.equal(postgresErrorCode(err), StoreErrorCode.Failed);
});

test("postgres errors - toStoreError keeps a StoreError and wraps the rest with its cause", () => {
  const own = new StoreError(StoreErrorCode.Unavailable, "closed");
  assert.equal(toStoreError("read", own), own);
  const cause = socketError("ECONNREFUSED");
  const wrapped = toStoreError("read", cause);
  assert.equal(wrapped.name, "StoreError");
  assert.equal(wrapped.code, StoreErrorCode.Unavailable);
  assert.equal(wrapped.cause, cause);
});
