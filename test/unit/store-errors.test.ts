// The Redis and Spanner adapters' error codes, from errors shaped as ioredis,
// Node's sockets and the Spanner client report them (no server needed; the
// contract's and chaos suites' outage tests check a real Redis).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ReplyError } from "ioredis";
import { redisErrorCode, toRedisStoreError } from "../../src/adapters/store/redis-errors.js";
import { spannerErrorCode, toSpannerStoreError } from "../../src/adapters/store/spanner-errors.js";
import { StoreError, StoreErrorCode } from "../../src/ports/store-error.js";

// ioredis types ReplyError as `any`; this is its real constructor, typed.
const Reply = ReplyError as new (message: string) => Error;

function socketError(errno: string): Error {
  return Object.assign(new Error(`connect ${errno} 127.0.0.1:6379`), { code: errno });
}

test("redis errors - connection-level failures and not-now replies are unavailable", () => {
  const failures: unknown[] = [
    socketError("ECONNREFUSED"),
    socketError("ECONNRESET"),
    new Error("Connection is closed."),
    new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    new Reply("LOADING Redis is loading the dataset in memory"),
    new Reply("READONLY You can't write against a read only replica."),
    new Reply("CLUSTERDOWN The cluster is down"),
  ];
  for (const err of failures) assert.equal(redisErrorCode(err), StoreErrorCode.Unavailable);
});

test("redis errors - a command timeout is timeout, anything else failed", () => {
  assert.equal(redisErrorCode(new Error("Command timed out")), StoreErrorCode.Timeout);
  assert.equal(redisErrorCode(new Reply("ERR Error running script")), StoreErrorCode.Failed);
  assert.equal(redisErrorCode("not an error"), StoreErrorCode.Failed);
});

test("redis errors - the driver's error is the cause; a StoreError passes through", () => {
  const cause = socketError("ECONNREFUSED");
  const wrapped = toRedisStoreError("append", cause);
  assert.deepEqual(
    [wrapped.name, wrapped.code, wrapped.cause],
    ["StoreError", "unavailable", cause],
  );
  const own = new StoreError(StoreErrorCode.Timeout, "x");
  assert.equal(toRedisStoreError("read", own), own);
});

test("spanner errors - gRPC statuses map to store codes", () => {
  assert.equal(spannerErrorCode(14), StoreErrorCode.Unavailable);
  assert.equal(spannerErrorCode(4), StoreErrorCode.Timeout);
  assert.equal(spannerErrorCode(10), StoreErrorCode.Conflict);
  assert.equal(spannerErrorCode(5), StoreErrorCode.Failed);
  assert.equal(spannerErrorCode(undefined), StoreErrorCode.Failed);
  const cause = Object.assign(new Error("14 UNAVAILABLE: No connection established"), { code: 14 });
  const wrapped = toSpannerStoreError("append", cause);
  assert.deepEqual([wrapped.code, wrapped.cause], ["unavailable", cause]);
});
