// Which StoreErrorCode a failure of the Spanner client is, by gRPC status:
// UNAVAILABLE (the endpoint unreachable or restarting), CANCELLED and
// RESOURCE_EXHAUSTED are `unavailable`; DEADLINE_EXCEEDED is `timeout`;
// ABORTED (a transaction that kept losing to concurrent ones past the
// client's retries) and ALREADY_EXISTS are `conflict`; the rest `failed`.
import { StoreError, StoreErrorCode } from "../../ports/store-error.js";

const UNAVAILABLE = new Set([1, 8, 14]);

export function toSpannerStoreError(what: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code =
    typeof err === "object" && err !== null && "code" in err && typeof err.code === "number"
      ? err.code
      : undefined;
  return new StoreError(
    spannerErrorCode(code),
    `spanner ${what} failed${code === undefined ? "" : ` (grpc ${code})`}`,
    { cause: err },
  );
}

export function spannerErrorCode(code: number | undefined): StoreErrorCode {
  if (code === undefined) return StoreErrorCode.Failed;
  if (UNAVAILABLE.has(code)) return StoreErrorCode.Unavailable;
  if (code === 4) return StoreErrorCode.Timeout;
  if (code === 10 || code === 6) return StoreErrorCode.Conflict;
  return StoreErrorCode.Failed;
}
