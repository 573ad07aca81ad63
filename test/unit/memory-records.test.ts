// The memory store's off-heap records: every string reads back exactly as
// written (UTF-8, and UTF-16 for strings UTF-8 cannot carry), the history and
// the dedup keys agree with a plain array and Map through drops, expiry and
// colliding hashes, and chunks go back to the pool once nothing in them lives.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { NewMessage } from "../../src/ports/store.js";
import {
  CHUNK_BYTES,
  DedupKeys,
  HistoryLog,
  chunkPool,
} from "../../src/adapters/store/memory-records.js";

/** A small seeded generator, so a failure repeats. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const message = (i: number, extra: Partial<NewMessage> = {}): NewMessage => ({
  messageId: `m${i}`,
  senderId: `s${i % 7}`,
  sentAt: "2026-12-01T00:00:00.000Z",
  content: "x".repeat(i % 300),
  ...extra,
});

const stored = (m: NewMessage, offset: bigint) => ({ ...m, room: "r", offset });

test("memory records - a message reads back field for field, optional fields only when set", () => {
  const log = new HistoryLog();
  const plain = message(1);
  const full = message(2, {
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    tracestate: "rojo=00f067aa0ba902b7",
    userId: "alice",
    content: "héllo wörld ✓ 🎉",
  });
  // A lone surrogate cannot be UTF-8: the record is kept as UTF-16 instead.
  const wide = message(3, { content: "bad \ud800 half", messageId: "id-\udfff" });
  const empty = message(4, { content: "", senderId: "", userId: "" });
  // Larger than a pooled chunk: a chunk of its own.
  const large = message(5, { content: "é".repeat(CHUNK_BYTES) });
  for (const m of [plain, full, wide, empty, large, plain]) log.append(m, 1000);
  assert.equal(log.length, 6);
  assert.deepEqual(log.message(0, "r", 1n), stored(plain, 1n));
  assert.deepEqual(log.message(1, "r", 2n), stored(full, 2n));
  assert.deepEqual(log.message(2, "r", 3n), stored(wide, 3n));
  assert.deepEqual(log.message(3, "r", 4n), stored(empty, 4n));
  assert.deepEqual(log.message(4, "r", 5n), stored(large, 5n));
  assert.deepEqual(log.message(5, "r", 6n), stored(plain, 6n));
  assert.ok(!("traceparent" in log.message(0, "r", 1n)));
  assert.throws(() => log.message(6, "r", 7n), RangeError);
});

test("memory records - history agrees with an array through appends and drops", () => {
  const random = rng(17);
  const log = new HistoryLog();
  const model: { m: NewMessage; at: number }[] = [];
  for (let i = 0; i < 20_000; i++) {
    const m = message(i, random() < 0.1 ? { userId: `u${i}`, content: `ü${i}` } : {});
    log.append(m, i);
    model.push({ m, at: i });
    if (random() < 0.3) {
      const n = Math.floor(random() * 5);
      log.drop(n);
      model.splice(0, n);
    }
    if (i % 997 === 0 || i === 19_999) {
      assert.equal(log.length, model.length);
      for (let k = 0; k < model.length; k += Math.max(1, Math.floor(model.length / 50))) {
        assert.deepEqual(log.message(k, "r", BigInt(k)), stored(model[k]!.m, BigInt(k)));
        assert.equal(log.storedAt(k), model[k]!.at);
      }
    }
  }
  log.drop(log.length);
  assert.equal(log.length, 0);
  log.append(message(1), 1);
  assert.deepEqual(log.message(0, "r", 9n), stored(message(1), 9n));
});

for (const [name, hash] of [
  ["its own hash", undefined],
  ["every id colliding", () => 7],
] as const) {
  test(`memory records - dedup keys agree with a Map through expiry (${name})`, () => {
    const random = rng(5);
    const keys = new DedupKeys(hash);
    const model = new Map<string, { offset: bigint; expires: number }>();
    const count = hash === undefined ? 30_000 : 1_500;
    let now = 0;
    for (let i = 1; i <= count; i++) {
      now += random() * 3;
      keys.expire(now);
      for (const [id, k] of model) if (k.expires <= now) model.delete(id);
      assert.equal(keys.size, model.size);
      // Mostly new ids, some repeats (live or expired), some not UTF-8.
      const id =
        random() < 0.2
          ? `id-${Math.floor(random() * i)}`
          : random() < 0.05
            ? `w-\ud800${i}`
            : `id-${i}`;
      const seen = keys.offset(id);
      assert.equal(seen, model.get(id)?.offset, `lookup of ${JSON.stringify(id)} at ${i}`);
      if (seen === undefined) {
        keys.add(id, BigInt(i), now + 100);
        model.set(id, { offset: BigInt(i), expires: now + 100 });
      }
    }
    for (const [id, k] of model) assert.equal(keys.offset(id), k.offset);
    assert.equal(keys.offset("never-added"), undefined);
    keys.expire(now + 1000);
    assert.equal(keys.size, 0);
    for (const id of model.keys()) assert.equal(keys.offset(id), undefined);
  });
}

test("memory records - chunks go back to the pool, and wholly free slabs are let go", () => {
  const perSlab = (1 << 20) / CHUNK_BYTES;
  const inUse = ({ slabs, free }: { slabs: number; free: number }): number =>
    slabs * perSlab - free;
  const before = chunkPool();
  const logs = Array.from({ length: 600 }, () => new HistoryLog());
  const keys = Array.from({ length: 600 }, () => new DedupKeys());
  for (let i = 0; i < 60_000; i++) {
    logs[i % 600]!.append(message(i, { content: "y".repeat(100) }), i);
    keys[i % 600]!.add(`key-${i}`, BigInt(i), 1000);
  }
  const full = chunkPool();
  assert.ok(full.slabs >= before.slabs + 3, `${JSON.stringify(full)}`);
  // Half by dropping and expiring, half by clearing (a closed store).
  for (const log of logs.slice(0, 300)) log.drop(log.length);
  for (const k of keys.slice(0, 300)) k.expire(1000);
  for (const log of logs.slice(300)) log.clear();
  for (const k of keys.slice(300)) k.clear();
  const after = chunkPool();
  assert.equal(inUse(after), inUse(before), "every chunk taken is free again");
  assert.ok(after.slabs <= before.slabs + 2, `${JSON.stringify(after)} kept`);
  assert.equal(logs[0]!.length, 0);
  assert.equal(keys[599]!.size, 0);
  assert.equal(keys[599]!.offset("key-599"), undefined);
});
