import assert from "node:assert/strict";
import { test } from "node:test";
import type { Seat } from "../../src/core/room.js";
import { Seats } from "../../src/core/seats.js";

/** A seat needs only its room's id here. */
const seat = (id: string): Seat => ({ room: { id } }) as unknown as Seat;

test("seats: one room held, found, replaced and left", () => {
  const seats = new Seats();
  assert.equal(seats.size, 0);
  assert.equal(seats.get("a"), undefined);
  const a = seat("a");
  seats.set(a);
  assert.equal(seats.size, 1);
  assert.equal(seats.get("a"), a);
  assert.equal(seats.has("b"), false);
  const a2 = seat("a");
  seats.set(a2);
  assert.equal(seats.size, 1);
  assert.equal(seats.get("a"), a2);
  assert.equal(seats.delete("b"), false);
  assert.equal(seats.delete("a"), true);
  assert.equal(seats.size, 0);
  assert.deepEqual(seats.ids(), []);
});

test("seats: several rooms keep the order they were joined in", () => {
  const seats = new Seats();
  for (const id of ["a", "b", "c"]) seats.set(seat(id));
  assert.deepEqual(seats.ids(), ["a", "b", "c"]);
  // The oldest leaves; later joins still come after the ones before them.
  assert.equal(seats.delete("a"), true);
  seats.set(seat("d"));
  assert.deepEqual(seats.ids(), ["b", "c", "d"]);
  const c2 = seat("c");
  seats.set(c2);
  assert.equal(seats.get("c"), c2);
  assert.deepEqual(seats.ids(), ["b", "c", "d"]);
  for (const id of ["b", "c", "d"]) assert.equal(seats.delete(id), true);
  assert.equal(seats.size, 0);
  seats.set(seat("e"));
  seats.set(seat("f"));
  assert.deepEqual(
    [...seats.values()].map((s) => s.room.id),
    ["e", "f"],
  );
  seats.clear();
  assert.equal(seats.size, 0);
  assert.equal(seats.has("e"), false);
});

test("seats: ids is a copy, so rooms can be left while walking it", () => {
  const seats = new Seats();
  for (const id of ["a", "b", "c"]) seats.set(seat(id));
  for (const id of seats.ids()) seats.delete(id);
  assert.equal(seats.size, 0);
});
