import assert from "node:assert/strict";
import { it } from "node:test";
import type { NewMessage } from "../../src/ports/store.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { CHUNK_BYTES, chunkPool } from "../../src/adapters/store/memory-records.js";
import { storeContract } from "./store.contract.js";

storeContract("memory store", (settings) => Promise.resolve(new MemoryStore(settings)), {
  capabilities: { durable: false, shared: false },
  // Every MemoryStore is a backend of its own.
  sharedBackend: false,
  fresh: () => Promise.resolve((settings) => Promise.resolve(new MemoryStore(settings))),
});

// Memory store only: HISTORY_SIZE bounds a room between trims too, exactly.
void it("store - a room keeps at most HISTORY_SIZE between trims, newest first kept", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000, maxPerRoom: 5 });
  await store.open();
  const message = (i: number): NewMessage => ({
    messageId: `m${i}`,
    senderId: "s",
    sentAt: "2026-01-01T00:00:00.000Z",
    content: `c${i}`,
  });
  for (let i = 1; i <= 23; i++) await store.append("room", message(i));
  const page = await store.read("room", 0n, 100);
  assert.equal(page.head, 23n);
  assert.equal(page.messages.length, 5);
  // Contiguous up to the head, and the oldest it reports is the first it returns.
  assert.deepEqual(
    page.messages.map((m) => m.offset),
    Array.from(
      { length: page.messages.length },
      (_, i) => 24n - BigInt(page.messages.length) + BigInt(i),
    ),
  );
  assert.equal(page.oldest, page.messages[0]?.offset);
  // Trimmed history does not forget ids: a retry of an early message is still a duplicate.
  const retry = await store.append("room", message(1));
  assert.deepEqual([retry.offset, retry.duplicate], [1n, true]);
  await store.trim({ maxPerRoom: 5, maxAgeMs: 60_000 });
  assert.equal((await store.read("room", 0n, 100)).messages.length, 5);
});

// Memory store only: its records live in a process-wide chunk pool, and a
// closed store gives its chunks back (tests and restarts open many stores).
void it("store - close gives the history's and dedup keys' chunks back to the pool", async () => {
  const inUse = (): number => {
    const { slabs, free } = chunkPool();
    return slabs * ((1 << 20) / CHUNK_BYTES) - free;
  };
  const before = inUse();
  const store = new MemoryStore({ dedupWindowMs: 60_000, maxPerRoom: 1000 });
  await store.open();
  for (let i = 0; i < 2000; i++) {
    await store.append(`room-${i % 20}`, {
      messageId: `m${i}`,
      senderId: "s",
      sentAt: "2026-01-01T00:00:00.000Z",
      content: "z".repeat(200),
    });
  }
  assert.ok(inUse() > before + 20, `${inUse()} chunks in use, ${before} before`);
  await store.close();
  assert.equal(inUse(), before);
});
