// The memory store's dedup keys: expiry in insertion order, and a queue that
// does not keep the id strings of expired keys alive (a quiet room held up to
// a thousand of them before).
import assert from "node:assert/strict";
import { test } from "node:test";
import { DedupKeys } from "../../src/adapters/store/memory-store.js";

test("memory dedup keys - expired keys are forgotten and their ids let go", () => {
  const keys = new DedupKeys();
  for (let i = 0; i < 10; i++) keys.add(`m${i}`, BigInt(i + 1), 100 + i);
  keys.expire(104.5);
  assert.equal(keys.offset("m4"), undefined);
  assert.equal(keys.offset("m5"), 6n);
  assert.equal(keys.offset("m9"), 10n);
  // Five dead of ten: not yet more than half, so kept for now.
  assert.equal(keys.queued, 10);
  keys.expire(105);
  assert.equal(keys.offset("m5"), undefined);
  assert.equal(keys.queued, 4, "the dead front is cut once it is over half");
  keys.expire(1000);
  assert.equal(keys.offset("m9"), undefined);
  assert.equal(keys.queued, 0, "a room whose keys all expired keeps no ids");
  keys.add("again", 11n, 2000);
  assert.equal(keys.offset("again"), 11n);
});
