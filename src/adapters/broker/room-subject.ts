// How a room id becomes one token of a broker subject (NATS) or channel (Redis).
//
// Room ids are 1-128 characters of A-Z a-z 0-9 _ - . : @ (protocol/room-id.ts). In
// NATS `.` separates tokens and `*` / `>` are wildcards, so an id used raw could
// span tokens ("a.b") or reach another room's subscribers. We escape instead of
// base64-encoding so subjects stay readable in `nats sub` / `redis-cli` and in
// server monitoring:
//   `_` -> `__`   `.` -> `_d`   `:` -> `_c`   `@` -> `_a`
// Every other allowed character stays as it is. The output alphabet is
// A-Z a-z 0-9 _ - (safe in one NATS token, literal in Redis). Injective because
// `_` never appears unescaped in the output: reading left to right, `_` always
// starts a two-character escape, so `decodeRoomToken` recovers the id exactly.
// `:` and `@` are legal in NATS subjects but are escaped anyway, keeping the
// token to the plainest alphabet every broker and tool accepts.
// Redis keeps the same encoding so one room has one name everywhere.
import { isValidRoomId } from "../../protocol/room-id.js";
import { BrokerError, BrokerErrorCode } from "./broker-error.js";

const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

const ESCAPE: Readonly<Record<string, string>> = { _: "__", ".": "_d", ":": "_c", "@": "_a" };
const UNESCAPE: Readonly<Record<string, string>> = { _: "_", d: ".", c: ":", a: "@" };

/** Encodes a room id into one subject token; throws BrokerError for ids outside the alphabet. */
export function encodeRoomToken(room: string): string {
  if (!isValidRoomId(room)) {
    throw new BrokerError(BrokerErrorCode.InvalidName, "room id is outside the allowed alphabet");
  }
  return room.replace(/[_.:@]/g, (c) => ESCAPE[c] ?? c);
}

/** Inverse of encodeRoomToken (for tools and tests); throws on a malformed token. */
export function decodeRoomToken(token: string): string {
  let out = "";
  for (let i = 0; i < token.length; i++) {
    const c = token.charAt(i);
    if (c !== "_") {
      out += c;
      continue;
    }
    const next = UNESCAPE[token.charAt(i + 1)];
    if (next === undefined) {
      throw new BrokerError(BrokerErrorCode.InvalidName, "malformed room token");
    }
    out += next;
    i++;
  }
  return out;
}

/** Checks a subject prefix: dot-separated tokens of A-Z a-z 0-9 _ - (no wildcards). */
export function checkPrefix(prefix: string): string {
  if (!PREFIX.test(prefix)) {
    throw new BrokerError(BrokerErrorCode.InvalidName, `invalid broker prefix "${prefix}"`);
  }
  return prefix;
}

/** The subject (NATS) or channel (Redis) carrying one room's traffic. */
export function roomSubject(prefix: string, room: string): string {
  return `${prefix}.room.${encodeRoomToken(room)}`;
}

/** The node-control subject or channel; outside the `.room.` namespace, so no room id reaches it. */
export function controlSubject(prefix: string): string {
  return `${prefix}.control`;
}
