// Room: offset order, duplicates, gaps filled (or skipped) from the store, and
// the switch from replay to live (issue 19) under every ordering of the
// store's head, the room's delivered offset and the broker's arrivals.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { Room, type JoinHooks, type Position, type Seat } from "../../src/core/room.js";
import { silentLogger } from "../../src/observability/logging.js";
import { CloseCode, ErrorCode } from "../../src/protocol/errors.js";
import { eventually } from "../helpers/eventually.js";
import { RecordingOutlet } from "../helpers/recording-outlet.js";
import { GatedStore, deferred, fill, range, settle, stored } from "../helpers/core.js";

const R = "room-1";

function newRoom(store: MemoryStore, opts: { gapWaitMs?: number; replayLimit?: number } = {}) {
  return new Room(R, {
    store,
    gapWaitMs: opts.gapWaitMs ?? 20,
    replayLimit: opts.replayLimit ?? 100,
    log: silentLogger(),
  });
}

/** Starts the room where the store stands (as Rooms does), or at `head`. */
async function started(room: Room, store: MemoryStore, head?: bigint): Promise<string> {
  const page = await store.read(R, 0n, 0);
  room.start(head ?? page.head, page.epoch);
  return page.epoch;
}

const noHooks: JoinHooks = { seated: () => undefined, persist: () => Promise.resolve() };

function offsets(outlet: RecordingOutlet): bigint[] {
  return outlet.kinds("message").map((m) => m.offset ?? -1n);
}

function joined(outlet: RecordingOutlet) {
  return outlet.kinds("roomJoined").map((j) => ({ offset: j.offset, recovered: j.recovered }));
}

test("room - emits in offset order whatever order offers arrive in", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  await fill(store, R, 6);
  const room = newRoom(store, { gapWaitMs: 60_000 });
  await started(room, store, 0n);
  const outlet = new RecordingOutlet();
  await room.join(outlet, undefined, noHooks);
  const all = await stored(store, R, 0n, 6n);
  for (const i of [3, 1, 5, 0, 4, 2]) room.offer(all[i]!);
  assert.deepEqual(offsets(outlet), range(1n, 6n));
  assert.equal(room.delivered, 6n);
  room.close();
});

test("room - duplicates at or below the delivered offset, or pending twice, are dropped", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  await fill(store, R, 5);
  const room = newRoom(store, { gapWaitMs: 60_000 });
  await started(room, store, 0n);
  const outlet = new RecordingOutlet();
  await room.join(outlet, undefined, noHooks);
  const all = await stored(store, R, 0n, 5n);
  room.offer(all[0]!);
  room.offer(all[1]!);
  room.offer(all[0]!);
  room.offer(all[1]!);
  room.offer(all[4]!);
  room.offer(all[4]!);
  room.offer(all[3]!);
  room.offer(all[2]!);
  room.offer(all[2]!);
  assert.deepEqual(offsets(outlet), range(1n, 5n));
  room.close();
});

test("room - offers at or below the start head are dropped", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  await fill(store, R, 4);
  const room = newRoom(store, { gapWaitMs: 60_000 });
  const all = await stored(store, R, 0n, 4n);
  // Arrivals before start (subscribed, head not read yet) wait in pending.
  room.offer(all[1]!);
  room.offer(all[3]!);
  await started(room, store, 2n);
  const outlet = new RecordingOutlet();
  await room.join(outlet, undefined, noHooks);
  room.offer(all[2]!);
  assert.deepEqual(offsets(outlet), [3n, 4n]);
  room.close();
});

test("room - a gap waits gapWaitMs, then is read from the store", async () => {
  const store = new GatedStore();
  await fill(store, R, 6);
  const room = newRoom(store, { gapWaitMs: 100 });
  await started(room, store, 0n);
  const outlet = new RecordingOutlet();
  await room.join(outlet, undefined, noHooks);
  const all = await stored(store, R, 0n, 6n);
  const reads = store.reads;
  const offeredAt = Date.now();
  room.offer(all[4]!);
  room.offer(all[5]!);
  // Offsets 5 and 6 are held; the store is not read at once (checked below by time).
  assert.deepEqual(offsets(outlet), []);
  assert.equal(store.reads, reads);
  await eventually(() => offsets(outlet).length === 6);
  assert.deepEqual(offsets(outlet), range(1n, 6n));
  assert.deepEqual(joined(outlet), [{ offset: 0n, recovered: false }]);
  // One read, and not before the wait was over (timers may fire a little early).
  assert.equal(store.reads, reads + 1);
  assert.ok(store.readAt.at(-1)! - offeredAt >= 95);
  room.close();
});

test("room - a gap the broker fills before the wait ends needs no store read", async () => {
  const store = new GatedStore();
  await fill(store, R, 3);
  const room = newRoom(store, { gapWaitMs: 60_000 });
  await started(room, store, 0n);
  const outlet = new RecordingOutlet();
  await room.join(outlet, undefined, noHooks);
  const all = await stored(store, R, 0n, 3n);
  const reads = store.reads;
  room.offer(all[2]!);
  room.offer(all[0]!);
  room.offer(all[1]!);
  assert.deepEqual(offsets(outlet), range(1n, 3n));
  await settle();
  assert.equal(store.reads, reads);
  room.close();
});

test("room - a trimmed gap is skipped: each live member gets room_joined{recovered:false} at the new position", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  await fill(store, R, 10);
  const room = newRoom(store, { gapWaitMs: 10 });
  await started(room, store, 0n);
  const a = new RecordingOutlet();
  const b = new RecordingOutlet();
  await room.join(a, undefined, noHooks);
  await room.join(b, undefined, noHooks);
  const all = await stored(store, R, 0n, 10n);
  room.offer(all[0]!);
  room.offer(all[1]!);
  // 3..7 never arrive and are trimmed before the room reads the gap.
  assert.equal(await store.trim({ maxPerRoom: 3, maxAgeMs: 3_600_000 }), 7);
  room.offer(all[9]!);
  for (const outlet of [a, b]) {
    await eventually(() => offsets(outlet).at(-1) === 10n);
    assert.deepEqual(offsets(outlet), [1n, 2n, 8n, 9n, 10n]);
    assert.deepEqual(joined(outlet), [
      { offset: 0n, recovered: false },
      { offset: 7n, recovered: false },
    ]);
    // The notice comes right before the stream continues.
    const kinds = outlet.envelopes.map((e) => e.kind.case);
    assert.deepEqual(kinds.slice(-4), ["roomJoined", "message", "message", "message"]);
  }
  assert.equal(room.delivered, 10n);
  room.close();
});

test("room - catchUp reads what was missed up to the store's head, over several pages", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const room = newRoom(store, { gapWaitMs: 60_000 });
  await started(room, store);
  const outlet = new RecordingOutlet();
  await room.join(outlet, undefined, noHooks);
  // Published while this node's broker was down: only in the store.
  await fill(store, R, 2500);
  await room.catchUp();
  assert.equal(room.delivered, 2500n);
  assert.deepEqual(offsets(outlet), range(1n, 2500n));
  await room.catchUp();
  assert.equal(offsets(outlet).length, 2500);
  room.close();
});

// ---- join: replay and the switch to live (issue 19) -------------------------

type Phase = "before" | "read" | "persist" | "after";
const phases: readonly Phase[] = ["before", "read", "persist", "after"];

// Store holds 1..10 before anything happens; 11..12 are appended at `append`.
// The room started at `start` (5: behind the store; 10: level with it) and the
// broker brings it (start, 10] at `offer` and 11..12 once they exist. A member
// joins with `since`; it must get room_joined once (recovered, at the head the
// replay read) and every offset after `since` exactly once, in order.
for (const start of [5n, 10n]) {
  for (const since of [0n, 3n, 7n]) {
    for (const append of phases) {
      for (const offer of phases) {
        test(`room - join handover: room at ${start}, since ${since}, 11..12 stored ${append}, broker arrives ${offer}`, async () => {
          const store = new GatedStore();
          const epoch = await fill(store, R, 10);
          const room = newRoom(store, { gapWaitMs: 60_000 });
          await started(room, store, start);
          let offered = start;
          let appended = false;
          const step = async (phase: Phase) => {
            if (phase === append) {
              await fill(store, R, 2);
              appended = true;
            }
            if (phases.indexOf(phase) >= phases.indexOf(offer)) {
              const upTo = appended ? 12n : 10n;
              for (const d of await stored(store, R, offered, upTo)) room.offer(d);
              offered = upTo;
            }
          };
          await step("before");
          const persisting = deferred();
          const persistStarted = deferred();
          const outlet = new RecordingOutlet();
          const reading = store.hold();
          const joining = room.join(
            outlet,
            { offset: since, epoch },
            {
              seated: () => undefined,
              persist: () => {
                persistStarted.resolve();
                return persisting.promise;
              },
            },
          );
          await reading;
          await step("read");
          store.release();
          await persistStarted.promise;
          await step("persist");
          persisting.resolve();
          const seat = await joining;
          assert.ok(seat !== undefined);
          await step("after");

          const head = append === "before" ? 12n : 10n;
          assert.deepEqual(joined(outlet), [{ offset: head, recovered: true }]);
          assert.equal(outlet.envelopes[0]?.kind.case, "roomJoined");
          assert.deepEqual(offsets(outlet), range(since + 1n, 12n));
          assert.equal(seat.sentUpTo, 12n);
          room.close();
        });
      }
    }
  }
}

test("room - plain join racing offers: room_joined at the live start, then every later offset once", async () => {
  for (const offer of ["before", "persist", "after"] as const) {
    const store = new MemoryStore({ dedupWindowMs: 60_000 });
    await fill(store, R, 6);
    const room = newRoom(store, { gapWaitMs: 60_000 });
    await started(room, store, 3n);
    const all = await stored(store, R, 0n, 6n);
    if (offer === "before") for (const d of all.slice(3)) room.offer(d);
    const persisting = deferred();
    const outlet = new RecordingOutlet();
    const joining = room.join(outlet, undefined, {
      seated: () => undefined,
      persist: () => persisting.promise,
    });
    if (offer === "persist") for (const d of all.slice(3)) room.offer(d);
    persisting.resolve();
    await joining;
    if (offer === "after") for (const d of all.slice(3)) room.offer(d);
    const liveFrom = offer === "before" ? 6n : 3n;
    assert.deepEqual(joined(outlet), [{ offset: liveFrom, recovered: false }], offer);
    assert.deepEqual(offsets(outlet), range(liveFrom + 1n, 6n), offer);
    room.close();
  }
});

test("room - seated hears of the seat before persist, and the seat saves its position", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const epoch = await fill(store, R, 4);
  const room = newRoom(store);
  await started(room, store);
  const order: string[] = [];
  let seen: Seat | undefined;
  const outlet = new RecordingOutlet();
  const seat = await room.join(
    outlet,
    { offset: 1n, epoch },
    {
      seated: (s) => {
        order.push("seated");
        seen = s;
      },
      persist: () => {
        order.push(`persist sent=${outlet.envelopes.length}`);
        return Promise.resolve();
      },
    },
  );
  assert.deepEqual(order, ["seated", "persist sent=0"]);
  assert.equal(seen, seat);
  assert.deepEqual(seat?.position(), { room: R, offset: 4n, epoch });
});

async function joinSince(
  store: MemoryStore,
  since: Position,
  replayLimit = 100,
): Promise<{ outlet: RecordingOutlet; room: Room }> {
  const room = newRoom(store, { replayLimit, gapWaitMs: 60_000 });
  await started(room, store);
  const outlet = new RecordingOutlet();
  const seat = await room.join(outlet, since, noHooks);
  assert.ok(seat !== undefined);
  return { outlet, room };
}

test("room - replay is all or nothing: within the limit everything, recovered true", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const epoch = await fill(store, R, 10);
  const { outlet, room } = await joinSince(store, { offset: 5n, epoch }, 5);
  assert.deepEqual(joined(outlet), [{ offset: 10n, recovered: true }]);
  assert.deepEqual(offsets(outlet), range(6n, 10n));
  room.close();
});

test("room - replay is all or nothing: an empty epoch means the same epoch", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  await fill(store, R, 4);
  const { outlet, room } = await joinSince(store, { offset: 2n, epoch: "" });
  assert.deepEqual(joined(outlet), [{ offset: 4n, recovered: true }]);
  assert.deepEqual(offsets(outlet), [3n, 4n]);
  room.close();
});

test("room - replay is all or nothing: more missed than replayLimit → recovered false, no replay", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const epoch = await fill(store, R, 10);
  const { outlet, room } = await joinSince(store, { offset: 4n, epoch }, 5);
  assert.deepEqual(joined(outlet), [{ offset: 10n, recovered: false }]);
  assert.deepEqual(offsets(outlet), []);
  // Live traffic follows from the head.
  await fill(store, R, 1);
  for (const d of await stored(store, R, 10n, 11n)) room.offer(d);
  assert.deepEqual(offsets(outlet), [11n]);
  room.close();
});

test("room - replay is all or nothing: another epoch → recovered false, no replay", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  await fill(store, R, 10);
  // An offset beyond the head is meaningless in another epoch: not an error.
  for (const offset of [3n, 50n]) {
    const { outlet, room } = await joinSince(store, { offset, epoch: "another-epoch" });
    assert.deepEqual(joined(outlet), [{ offset: 10n, recovered: false }]);
    assert.deepEqual(offsets(outlet), []);
    room.close();
  }
});

test("room - replay is all or nothing: trimmed past the position → recovered false, no replay", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const epoch = await fill(store, R, 10);
  await store.trim({ maxPerRoom: 3, maxAgeMs: 3_600_000 });
  const { outlet, room } = await joinSince(store, { offset: 2n, epoch });
  assert.deepEqual(joined(outlet), [{ offset: 10n, recovered: false }]);
  assert.deepEqual(offsets(outlet), []);
  room.close();
  // Right at the oldest kept message it still recovers.
  const again = await joinSince(store, { offset: 7n, epoch });
  assert.deepEqual(joined(again.outlet), [{ offset: 10n, recovered: true }]);
  assert.deepEqual(offsets(again.outlet), [8n, 9n, 10n]);
  again.room.close();
});

test("room - since beyond the head is refused with offset_out_of_range, and nothing is kept", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const epoch = await fill(store, R, 3);
  const room = newRoom(store);
  await started(room, store);
  const outlet = new RecordingOutlet();
  let persisted = false;
  await assert.rejects(
    room.join(
      outlet,
      { offset: 4n, epoch },
      {
        seated: () => undefined,
        persist: () => {
          persisted = true;
          return Promise.resolve();
        },
      },
    ),
    { name: "WireError", code: ErrorCode.OffsetOutOfRange },
  );
  assert.equal(persisted, false);
  await fill(store, R, 1);
  for (const d of await stored(store, R, 3n, 4n)) room.offer(d);
  assert.deepEqual(outlet.envelopes, []);
  room.close();
});

test("room - a rejected persist aborts the join: no room_joined, no traffic", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  await fill(store, R, 2);
  const room = newRoom(store);
  await started(room, store);
  const outlet = new RecordingOutlet();
  await assert.rejects(
    room.join(outlet, undefined, {
      seated: () => undefined,
      persist: () => Promise.reject(new Error("store down")),
    }),
  );
  await fill(store, R, 1);
  for (const d of await stored(store, R, 2n, 3n)) room.offer(d);
  assert.deepEqual(outlet.envelopes, []);
  room.close();
});

test("room - a replay larger than the outlet backlog waits for drain, then arrives in order", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const epoch = await fill(store, R, 10);
  const room = newRoom(store, { gapWaitMs: 60_000 });
  await started(room, store);
  // A peer that falls behind after every 3 messages.
  class Slow extends RecordingOutlet {
    override send(payload: Uint8Array): boolean {
      const ok = super.send(payload);
      if (this.kinds("message").length % 3 === 0) this.backlogged = true;
      return ok;
    }
  }
  const outlet = new Slow();
  outlet.backlogged = true;
  let done = false;
  const joining = room.join(outlet, { offset: 0n, epoch }, noHooks).then((seat) => {
    done = true;
    return seat;
  });
  await settle();
  // room_joined is sent; the replay waits for the backlog to drain.
  assert.deepEqual(joined(outlet), [{ offset: 10n, recovered: true }]);
  assert.deepEqual(offsets(outlet), []);
  // Live traffic arriving meanwhile is queued behind the replay.
  await fill(store, R, 2);
  for (const d of await stored(store, R, 10n, 12n)) room.offer(d);
  const seen: number[] = [];
  while (!done) {
    seen.push(offsets(outlet).length);
    outlet.drain();
    await settle();
    if (!done) assert.equal(outlet.backlogged, true);
  }
  assert.deepEqual(seen, [0, 3, 6, 9]);
  assert.ok((await joining) !== undefined);
  assert.deepEqual(offsets(outlet), range(1n, 12n));
  room.close();
});

test("room - a connection closed during the join is dropped, and nothing more is sent", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const epoch = await fill(store, R, 2);
  const room = newRoom(store);
  await started(room, store);
  const outlet = new RecordingOutlet();
  const persisting = deferred();
  const joining = room.join(
    outlet,
    { offset: 0n, epoch },
    { seated: () => undefined, persist: () => persisting.promise },
  );
  await settle();
  outlet.close(CloseCode.Normal);
  persisting.resolve();
  assert.equal(await joining, undefined);
  assert.deepEqual(outlet.envelopes, []);
  room.close();
});

test("room - a trimmed gap skipped while a member is still joining is announced to it too", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  await fill(store, R, 10);
  const room = newRoom(store, { gapWaitMs: 10 });
  await started(room, store, 2n);
  const all = await stored(store, R, 0n, 10n);
  await store.trim({ maxPerRoom: 3, maxAgeMs: 3_600_000 });
  const persisting = deferred();
  const outlet = new RecordingOutlet();
  const joining = room.join(outlet, undefined, {
    seated: () => undefined,
    persist: () => persisting.promise,
  });
  // 3..7 are gone from the store; the room skips them while the join waits.
  room.offer(all[9]!);
  await eventually(() => room.delivered === 10n);
  persisting.resolve();
  await joining;
  // Whatever room_joined says, the stream after it has no silent hole.
  const stream = outlet.envelopes.map((e) =>
    e.kind.case === "roomJoined" || e.kind.case === "message"
      ? `${e.kind.case} ${e.kind.value.offset}`
      : e.kind.case,
  );
  let position: bigint | undefined;
  for (const env of outlet.envelopes) {
    if (env.kind.case === "roomJoined") position = env.kind.value.offset;
    else if (env.kind.case === "message") {
      assert.equal(env.kind.value.offset, (position ?? -1n) + 1n, stream.join(", "));
      position = env.kind.value.offset;
    }
  }
  assert.equal(position, 10n);
  assert.deepEqual(joined(outlet), [
    { offset: 2n, recovered: false },
    { offset: 7n, recovered: false },
  ]);
  room.close();
});

test("room - a second join of a member that went live ahead of the room answers at its own position", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const epoch = await fill(store, R, 10);
  const room = newRoom(store, { gapWaitMs: 60_000 });
  await started(room, store, 5n);
  const outlet = new RecordingOutlet();
  const seat = await room.join(outlet, { offset: 0n, epoch }, noHooks);
  assert.ok(seat !== undefined);
  assert.equal(seat.sentUpTo, 10n);
  room.rejoined(seat);
  assert.equal(outlet.kinds("roomJoined").at(-1)?.offset, 10n);
  room.close();
});
