import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkPrefix,
  controlSubject,
  decodeRoomToken,
  encodeRoomToken,
  roomSubject,
} from "../../src/adapters/broker/room-subject.js";

const ALPHABET = "ABCZabcz019_-.:@";

/** Every id of length 1..3 over a small alphabet holding every special character. */
function allShortIds(): string[] {
  const out: string[] = [];
  const grow = (prefix: string, depth: number): void => {
    for (const c of ALPHABET) {
      out.push(prefix + c);
      if (depth > 1) grow(prefix + c, depth - 1);
    }
  };
  grow("", 3);
  return out;
}

const TRICKY = [
  "a",
  "a.b",
  "a_b",
  "a_db",
  "a__b",
  "a:b",
  "a_cb",
  "a@b",
  "a_ab",
  "_",
  "__",
  "_d",
  "_c",
  "_a",
  ".",
  "..",
  ":",
  "@",
  "a.",
  ".a",
  "@x",
  "x@",
  "a-b",
  "A",
  "x".repeat(128),
  "._:@".repeat(32),
];

void describe("room-subject", () => {
  void it("room-subject - the encoding is injective and round-trips", () => {
    const ids = [...allShortIds(), ...TRICKY];
    const seen = new Map<string, string>();
    for (const id of ids) {
      const token = encodeRoomToken(id);
      const clash = seen.get(token);
      assert.equal(
        clash === undefined || clash === id,
        true,
        `${id} and ${String(clash)} share ${token}`,
      );
      seen.set(token, id);
      assert.equal(decodeRoomToken(token), id);
    }
  });

  void it("room-subject - tokens hold only characters safe in one NATS token", () => {
    for (const id of [...allShortIds(), ...TRICKY]) {
      const token = encodeRoomToken(id);
      assert.match(token, /^[A-Za-z0-9_-]+$/, `token for ${id}`);
      assert.ok(!/[.*> \t\r\n]/.test(token));
    }
  });

  void it("room-subject - plain ids stay readable", () => {
    assert.equal(encodeRoomToken("lobby-42"), "lobby-42");
    assert.equal(encodeRoomToken("team.alpha:chat@eu"), "team_dalpha_cchat_aeu");
  });

  void it("room-subject - ids outside the protocol alphabet are refused", () => {
    for (const bad of ["", "a b", "a*", "a>", "a/b", "é", "x".repeat(129), "a\n"]) {
      assert.throws(() => encodeRoomToken(bad), { name: "BrokerError", code: "invalid_name" });
    }
  });

  void it("room-subject - malformed tokens are refused", () => {
    for (const bad of ["_", "a_", "_x", "a_b"]) {
      assert.throws(() => decodeRoomToken(bad), { name: "BrokerError", code: "invalid_name" });
    }
  });

  void it("room-subject - subjects are prefix.room.token and prefix.control", () => {
    assert.equal(roomSubject("roomcast", "a.b"), "roomcast.room.a_db");
    assert.equal(roomSubject("app.prod", "x"), "app.prod.room.x");
    assert.equal(controlSubject("roomcast"), "roomcast.control");
    assert.equal(roomSubject("roomcast", "control").split(".").length, 3);
  });

  void it("room-subject - prefixes with wildcards or empty tokens are refused", () => {
    for (const bad of ["", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b"]) {
      assert.throws(() => checkPrefix(bad), { name: "BrokerError", code: "invalid_name" });
    }
    assert.equal(checkPrefix("roomcast.eu-1"), "roomcast.eu-1");
  });
});
