// Which StoreErrorCode a failure of ioredis is. With the offline queue off, a
// command sent while the connection is down fails at once ("Stream isn't
// writeable", "Connection is closed"); those, socket errors and the replies
// of a server that cannot serve yet (LOADING, a cluster failing over) are
// `unavailable`; commandTimeout is `timeout`; the rest `failed`.
import { StoreError, StoreErrorCode } from "../../ports/store-error.js";
import { SOCKET_UNAVAILABLE } from "./socket-errors.js";

export function toRedisStoreError(what: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  return new StoreError(redisErrorCode(err), `redis ${what} failed`, { cause: err });
}

// ioredis 5.11 messages for a connection that is down, closing or never came up.
const DRIVER_UNAVAILABLE =
  /^(Connection is closed|Stream isn't writeable|Reached the max retries per request|None of startup nodes is available|Failed to refresh slots cache|connect ETIMEDOUT)/;

// Server replies meaning "not now": loading the AOF, a replica promoted or
// demoted, a cluster slot moving or failing over.
const REPLY_UNAVAILABLE = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)\b/;

export function redisErrorCode(err: unknown): StoreErrorCode {
  if (!(err instanceof Error)) return StoreErrorCode.Failed;
  const code = "code" in err && typeof err.code === "string" ? err.code : "";
  if (SOCKET_UNAVAILABLE.has(code)) return StoreErrorCode.Unavailable;
  if (err.message === "Command timed out") return StoreErrorCode.Timeout;
  if (DRIVER_UNAVAILABLE.test(err.message)) return StoreErrorCode.Unavailable;
  if (err.name === "ReplyError" && REPLY_UNAVAILABLE.test(err.message))
    return StoreErrorCode.Unavailable;
  if (err.name === "MaxRetriesPerRequestError" || err.name === "ClusterAllFailedError")
    return StoreErrorCode.Unavailable;
  return StoreErrorCode.Failed;
}
