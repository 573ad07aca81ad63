// The SDK's pure parts: backoff bounds, close-code classes, both codecs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay, CloseAction, closeAction, Room, type PresenceEvent } from "../src/index.js";
import { codecFor } from "../src/codec.js";

test("client backoff - full jitter stays within [0, min(max, initial × 2^attempt))", () => {
  const opts = { initialDelayMs: 100, maxDelayMs: 5_000 };
  for (let attempt = 0; attempt < 70; attempt++) {
    const cap = Math.min(5_000, 100 * 2 ** attempt);
    assert.equal(
      backoffDelay(attempt, opts, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(attempt, opts, () => 0.999_999),
      Math.floor(0.999_999 * cap),
    );
    const d = backoffDelay(attempt, opts);
    assert.ok(d >= 0 && d < cap, `attempt ${attempt}: ${d}`);
  }
});

test("client backoff - the mean grows until it reaches the cap", () => {
  const opts = { initialDelayMs: 100, maxDelayMs: 1_600 };
  const mean = (attempt: number) => {
    let sum = 0;
    for (let i = 0; i < 2_000; i++) sum += backoffDelay(attempt, opts);
    return sum / 2_000;
  };
  const [m0, m2, m8] = [mean(0), mean(2), mean(8)];
  assert.ok(m0 > 35 && m0 < 65, `attempt 0 mean ${m0}`);
  assert.ok(m2 > 160 && m2 < 240, `attempt 2 mean ${m2}`);
  assert.ok(m8 > 700 && m8 < 900, `attempt 8 mean ${m8} (cap 1600)`);
});

test("client close codes - reconnect, new token or stop, by class", () => {
  for (const code of [4000, 4002, 4499, 1001, 1012, 1013, 1006, 1005, 1011]) {
    assert.equal(closeAction(code), CloseAction.Reconnect, String(code));
  }
  assert.equal(closeAction(4501), CloseAction.NewToken);
  for (const code of [4500, 4502, 4999, 1008, 1003, 1007, 1009]) {
    assert.equal(closeAction(code), CloseAction.Stop, String(code));
  }
});

test("client codecs - JSON and protobuf carry the same envelope", () => {
  const envelope = {
    message: { target: "room-1", content: "héllo", message_id: "m1", offset: "42" },
  };
  for (const protocol of ["json", "protobuf"] as const) {
    const codec = codecFor(protocol);
    const frame = codec.encode(envelope);
    const bytes = typeof frame === "string" ? frame : frame.buffer.slice(frame.byteOffset);
    assert.deepEqual(codec.decode(bytes), [envelope], protocol);
  }
});

test("client codecs - a binary frame may carry several envelopes", () => {
  const codec = codecFor("protobuf");
  const a = codec.encode({ room_left: { room_id: "a" } }) as Uint8Array;
  const b = codec.encode({ room_left: { room_id: "b" } }) as Uint8Array;
  const both = new Uint8Array([...a, ...b]);
  assert.deepEqual(codec.decode(both), [
    { room_left: { room_id: "a" } },
    { room_left: { room_id: "b" } },
  ]);
});

test("client presence bookkeeping - state replaces, diffs add and remove", () => {
  const room = new Room(
    "r",
    { presence: true },
    {
      send: () => true,
      generation: () => 1,
      memberId: () => "m1",
      stopped: () => false,
      forget: () => {},
    },
  );
  const events: PresenceEvent[] = [];
  room.on("presence", (e) => events.push(e));
  room.presenceState([{ member_id: "m1", user_id: "alice" }, { member_id: "m2" }]);
  room.presenceDiff([{ member_id: "m3", user_id: "carol" }], [{ member_id: "m2" }]);
  assert.deepEqual(room.presence, [
    { memberId: "m1", userId: "alice" },
    { memberId: "m3", userId: "carol" },
  ]);
  assert.deepEqual(
    events.map((e) => [e.joined.length, e.left.length]),
    [
      [2, 0],
      [1, 1],
    ],
  );
});
