import assert from "node:assert/strict";
import { test } from "node:test";
import { isValidRoomId } from "../../src/protocol/room-id.js";

test("room id - accepts every allowed character and 128 characters", () => {
  assert.ok(isValidRoomId("Az09_-.:@"));
  assert.ok(isValidRoomId("a".repeat(128)));
});

test("room id - rejects empty, too long and other characters", () => {
  for (const id of ["", "a".repeat(129), "a b", "a/b", "a*", "a>", "é", "a\n", "a#b", "a\u0000"]) {
    assert.equal(isValidRoomId(id), false, JSON.stringify(id));
  }
});
