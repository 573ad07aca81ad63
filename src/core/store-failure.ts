// How a failed store call reaches a client: a StoreError (timeout, outage,
// open breaker) is `unavailable` with a retry hint; anything else is a bug
// and `internal`.
import { ErrorCode, WireError } from "../protocol/errors.js";
import { StoreError } from "../ports/store-error.js";

export const RETRY_AFTER_MS = 1000;

export function unavailable(err: unknown, ref: string): WireError {
  if (err instanceof WireError) return err;
  if (err instanceof StoreError) {
    return new WireError(ErrorCode.Unavailable, undefined, ref, RETRY_AFTER_MS, { cause: err });
  }
  return new WireError(ErrorCode.Internal, undefined, ref, undefined, { cause: err });
}
