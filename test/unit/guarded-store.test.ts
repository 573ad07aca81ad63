// The guard's timeout and breaker, around a MemoryStore whose calls can be
// made to hang or fail.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { GuardedStore } from "../../src/adapters/store/guarded-store.js";
import { StoreErrorCode } from "../../src/ports/store-error.js";
import { eventually } from "../helpers/eventually.js";

class FlakyStore extends MemoryStore {
  constructor() {
    super({ dedupWindowMs: 60_000 });
  }
  mode: "ok" | "hang" | "fail" = "ok";
  override read(room: string, after: bigint, limit: number) {
    if (this.mode === "hang") return new Promise<never>(() => undefined);
    if (this.mode === "fail") return Promise.reject(new Error("boom"));
    return super.read(room, after, limit);
  }
}

test("guarded store - a hanging call times out as unavailable", async () => {
  const inner = new FlakyStore();
  const store = new GuardedStore(inner, { timeoutMs: 50 });
  inner.mode = "hang";
  await assert.rejects(store.read("r", 0n, 1), {
    name: "StoreError",
    code: StoreErrorCode.Timeout,
  });
});

test("guarded store - repeated failures open the breaker, which refuses fast and then recovers", async () => {
  const inner = new FlakyStore();
  const store = new GuardedStore(inner, { timeoutMs: 1000, failures: 3, halfOpenAfterMs: 100 });
  inner.mode = "fail";
  for (let i = 0; i < 3; i++)
    await assert.rejects(store.read("r", 0n, 1), {
      name: "StoreError",
      code: StoreErrorCode.Failed,
    });
  assert.equal(store.healthy, false);
  inner.mode = "ok";
  // Open: refused without calling the store, even though it works again.
  await assert.rejects(store.read("r", 0n, 1), {
    name: "StoreError",
    code: StoreErrorCode.Unavailable,
  });
  await eventually(async () => {
    await store.read("r", 0n, 1);
    return true;
  });
  assert.equal(store.healthy, true);
});
