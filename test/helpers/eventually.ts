// Waiting on a condition instead of sleeping: polls `check` until it returns
// without throwing (and not undefined/false), or fails with the last error.
// The loop is the process harness's, which also waits for servers to be ready.
import { waitFor, type WaitOptions } from "../../tools/process-harness.js";

export type EventuallyOptions = Omit<WaitOptions, "signal">;

export async function eventually<T>(
  check: () => T | Promise<T>,
  options: EventuallyOptions = {},
): Promise<Exclude<T, false | undefined>> {
  return await waitFor(check, options);
}
