// Waiting on a condition instead of sleeping: polls `check` until it returns
// without throwing (and not undefined/false), or fails with the last error.
import { setTimeout as delay } from "node:timers/promises";

export interface EventuallyOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

export async function eventually<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 20 }: EventuallyOptions = {},
): Promise<Exclude<T, false | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = new Error("condition never held");
  for (;;) {
    try {
      const value = await check();
      if (value !== false && value !== undefined) return value as Exclude<T, false | undefined>;
      last = new Error("condition returned " + String(value));
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`eventually: timed out after ${timeoutMs} ms`, { cause: last });
    }
    await delay(intervalMs);
  }
}
