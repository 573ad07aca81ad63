// One error class for store adapter failures; the driver's error is the cause.
export class StoreError extends Error {
  override readonly name = "StoreError";
}
