// A bounded, seeded fuzz of one real node on both subprotocols: valid
// envelopes of every client kind, mutated (wrong types, huge numbers, deep
// nesting, both spellings, unknown kinds, long strings, U+0000, bad room ids
// and sent_at) and then damaged as bytes (bit flips, truncation, duplication,
// splicing, random bytes). Connections are used in turn; one closed by policy
// is replaced (sometimes by resuming its session). The node must only ever
// answer with documented error and close codes, never `internal` (nor
// `unavailable`: the store is healthy), keep answering /healthz within a
// bound, log no error, and still be alive at the end.
//
// FUZZ_SEED (decimal or 0x hex) replays a run; FUZZ_FRAMES sets the frames per
// store (default 3000); FUZZ_MS the time budget per store (default 10 s).
// Regressions the fuzzer found are separate named tests at the end.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { after, before, describe, test, type TestContext } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { envelope, protoCodec } from "../../src/protocol/codec.js";
import { closeReasons, errorDescriptions, ErrorCode } from "../../src/protocol/errors.js";
import {
  AckSchema,
  EnvelopeSchema,
  ErrorSchema,
  JoinRoomSchema,
  LeaveRoomSchema,
  MessageSchema,
  RefreshSchema,
  RoomJoinedSchema,
  SessionSchema,
  StreamPositionSchema,
  type Envelope,
} from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";
import { makeTempDir, removeTempDir } from "../../tools/process-harness.js";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const JSON_PROTOCOL = "roomcast.v1.json";
const PROTO_PROTOCOL = "roomcast.v1.proto";

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = raw.startsWith("0x") ? Number.parseInt(raw.slice(2), 16) : Number.parseInt(raw, 10);
  if (!Number.isFinite(n)) throw new Error(`${name}=${raw} is not a number`);
  return n;
}

const SEED = envInt("FUZZ_SEED", Math.floor(Math.random() * 2 ** 32)) >>> 0;
const FRAMES = envInt("FUZZ_FRAMES", 3000);
const BUDGET_MS = envInt("FUZZ_MS", 10_000);
/** Every /healthz answer must come within this. */
const HEALTH_BOUND_MS = 1000;
const HEALTH_POLL_MS = 100;
/** The answer to a sync probe must come within this. */
const SYNC_TIMEOUT_MS = 5000;
const MAX_FRAME = 65_536;

console.log(`fuzz seed ${SEED} (FUZZ_SEED=${SEED} replays it), ${FRAMES} frames per store`);

// ---- codes the node may use ----------------------------------------------------

const errorsDoc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
const docErrorCodes = new Set([...errorsDoc.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((m) => m[1]));
const docCloseCodes = new Set(
  [...errorsDoc.matchAll(/^\|\s*(\d{4})\s*\|/gm)].map((m) => Number(m[1])),
);
/** Documented, but a fuzzed client on a healthy node must never see them. */
const FORBIDDEN_ERRORS: ReadonlySet<string> = new Set([ErrorCode.Internal, ErrorCode.Unavailable]);
const FORBIDDEN_CLOSES: ReadonlySet<number> = new Set([1011]);

// ---- a small seeded PRNG (mulberry32) -------------------------------------------

class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number, ascii = false): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(ascii ? 128 : 256);
    return out;
  }
  text(max: number): string {
    const alphabet = 'abcxyz 019_-.:@"\\/{}[]ü€😀\n\t';
    const chars = [...alphabet];
    let s = "";
    for (let n = this.int(max + 1); n > 0; n--) s += this.pick(chars);
    return s;
  }
}

// ---- value pools ---------------------------------------------------------------

const ROOMS = ["fz-0", "fz-1", "fz-2", "fz-3", "A.b:c@d_e-f", "r".repeat(128)];
const BAD_ROOMS = [
  "",
  "r".repeat(129),
  "room 1",
  "ro*m",
  ">",
  "a/b",
  "fz-0\u0000",
  "ünï",
  "\ud800",
  "fz.*",
  "$SYS",
  "\n",
];
const GOOD_SENT_AT = [
  "2024-03-05T10:20:30Z",
  "2024-03-05t10:20:30.123456789+01:00",
  "2016-12-31T23:59:60Z",
  "2024-02-29T00:00:00-23:59",
];
const BAD_SENT_AT = [
  "1",
  "2024",
  "2024-03-05",
  "Tue Mar 05 2024",
  "2024-03-05 10:20:30Z",
  "2024-02-30T00:00:00Z",
  "2023-02-29T00:00:00Z",
  "2024-03-05T24:00:00Z",
  "2024-03-05T10:20:60Z",
  "2024-03-05T10:20:30",
  "2024-03-05T10:20:30+24:00",
  "2024-03-05T10:20:30.Z",
  "+12024-03-05T10:20:30Z",
  `2024-03-05T10:20:30.${"1".repeat(5000)}Z`,
  "2024-03-05T10:20:30Z\u0000",
  "",
];
const GOOD_JSON_OFFSETS: readonly unknown[] = [
  "0",
  "1",
  "2",
  "42",
  0,
  1,
  1e2,
  null,
  "18446744073709551615",
  "000000000000000000000000000000001",
  9007199254740991,
];
const BAD_JSON_OFFSETS: readonly unknown[] = [
  "18446744073709551616",
  "-1",
  "0x10",
  " 5",
  "+5",
  "1e2",
  "1.0",
  "",
  "9".repeat(5000),
  -1,
  1.5,
  9007199254740992,
  1e308,
  -0.5,
  true,
  {},
  [],
  [1],
];
const PROTO_OFFSETS = [0n, 1n, 2n, 42n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
const HUGE: readonly unknown[] = [
  1e308,
  -1e308,
  2 ** 64,
  -(2 ** 63),
  Number.MAX_SAFE_INTEGER + 2,
  "18446744073709551616",
  "340282366920938463463374607431768211456",
  0.1,
  -0,
];
const ODD_KEYS = [
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "prototype",
  "",
  "JOIN_ROOM",
  "join_room ",
  "$typeName",
  "kind",
  "case",
  "value",
];
const SERVER_KINDS = ["session", "room_joined", "room_left", "error"];
const CLIENT_KINDS = ["join_room", "leave_room", "message", "ack", "refresh"] as const;

const camel = (s: string): string => s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

// ---- JSON frames ---------------------------------------------------------------

type JsonObject = Record<string, unknown>;

function spell(rng: Rng, snake: string): string {
  return rng.chance(0.5) ? snake : camel(snake);
}

function jsonEnvelope(rng: Rng): JsonObject {
  const kind = rng.pick(CLIENT_KINDS);
  const f: JsonObject = {};
  switch (kind) {
    case "join_room":
      f[spell(rng, "room_id")] = rng.pick(ROOMS);
      if (rng.chance(0.4)) {
        f["since"] = { offset: rng.pick(GOOD_JSON_OFFSETS), epoch: rng.pick(["", "e1"]) };
      }
      break;
    case "leave_room":
      f[spell(rng, "room_id")] = rng.pick(ROOMS);
      break;
    case "message":
      f["target"] = rng.pick(ROOMS);
      f["content"] = rng.text(40);
      if (rng.chance(0.5)) f[spell(rng, "message_id")] = `m-${rng.int(20)}`;
      if (rng.chance(0.4)) f[spell(rng, "sent_at")] = rng.pick(GOOD_SENT_AT);
      if (rng.chance(0.2)) {
        f["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
      }
      if (rng.chance(0.2)) f["tracestate"] = "rojo=00f067aa0ba902b7";
      break;
    case "ack":
      f[spell(rng, "room_id")] = rng.pick(ROOMS);
      f["offset"] = rng.pick(GOOD_JSON_OFFSETS);
      break;
    case "refresh":
      f["token"] = rng.text(20);
      break;
  }
  return { [spell(rng, kind)]: f };
}

/** Every (object, key) in the tree, the envelope's own keys included. */
function slots(v: unknown, out: [JsonObject, string][] = []): [JsonObject, string][] {
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    const obj = v as JsonObject;
    for (const k of Object.keys(obj)) {
      out.push([obj, k]);
      slots(obj[k], out);
    }
  }
  return out;
}

function objects(v: unknown): JsonObject[] {
  const out: JsonObject[] = [];
  const visit = (x: unknown): void => {
    if (typeof x !== "object" || x === null || Array.isArray(x)) return;
    out.push(x as JsonObject);
    for (const y of Object.values(x)) visit(y);
  };
  visit(v);
  return out;
}

/**
 * Deep nesting is spliced into the text after JSON.stringify (see deepen):
 * as a value it would overflow the stack of this very process first.
 */
function nested(rng: Rng, depth: number): string {
  return `@deep:${depth}:${rng.pick(["array", "object"])}:${rng.pick(["1", "x", "null", "empty"])}`;
}

const LEAVES: Record<string, string> = { "1": "1", x: '"x"', null: "null", empty: "{}" };

function deepen(text: string): string {
  return text.replace(
    /"@deep:(\d+):(array|object):(\w+)"/g,
    (_m, n: string, kind: string, leaf: string) => {
      const depth = Number(n);
      const inner = LEAVES[leaf] ?? "1";
      return kind === "array"
        ? `${"[".repeat(depth)}${inner}${"]".repeat(depth)}`
        : `${'{"a":'.repeat(depth)}${inner}${"}".repeat(depth)}`;
    },
  );
}

function wrongValue(rng: Rng): unknown {
  return rng.pick<unknown>([
    0,
    -1,
    1.5,
    true,
    false,
    null,
    "",
    "x",
    [],
    ["fz-0"],
    {},
    { room_id: "fz-0" },
    rng.pick(HUGE),
  ]);
}

/** Replaces the first string leaf named one of `names` (or a random slot) with `value`. */
function setField(rng: Rng, env: JsonObject, names: readonly string[], value: unknown): void {
  const all = slots(env);
  const named = all.filter(([, k]) => names.includes(k));
  const target = named.length > 0 ? rng.pick(named) : all.length > 0 ? rng.pick(all) : undefined;
  if (target === undefined) return;
  target[0][target[1]] = value;
}

function mutateJson(rng: Rng, env: JsonObject): unknown {
  const all = slots(env);
  const slot = all.length > 0 ? rng.pick(all) : undefined;
  const strings = all.filter(([o, k]) => typeof o[k] === "string");
  switch (rng.int(16)) {
    case 0:
      if (slot) slot[0][slot[1]] = wrongValue(rng);
      return env;
    case 1:
      if (slot) slot[0][slot[1]] = rng.pick(HUGE);
      return env;
    case 2:
      if (slot) slot[0][slot[1]] = nested(rng, 1 + rng.int(rng.chance(0.2) ? 15_000 : 200));
      return env;
    case 3: {
      // Both spellings of one field (or of the kind itself).
      const spelled = all.filter(([, k]) => k.includes("_") || /[A-Z]/.test(k));
      if (spelled.length === 0) return env;
      const [o, k] = rng.pick(spelled);
      const other = k.includes("_") ? camel(k) : k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      o[other] = rng.chance(0.5) ? o[k] : wrongValue(rng);
      return env;
    }
    case 4: {
      const inner = Object.values(env)[0] ?? {};
      return { [rng.pick([...ODD_KEYS, "teleport", ...SERVER_KINDS])]: inner };
    }
    case 5: {
      // A second kind in the same envelope.
      const second = jsonEnvelope(rng);
      return { ...env, ...second };
    }
    case 6: {
      const o = rng.pick(objects(env));
      o[rng.pick([...ODD_KEYS, "extra", "since", "offset"])] = wrongValue(rng);
      return env;
    }
    case 7:
      if (strings.length > 0) {
        const [o, k] = rng.pick(strings);
        o[k] = "x".repeat(rng.pick([129, 513, 4096, 60_000, 70_000]));
      }
      return env;
    case 8:
      if (strings.length > 0) {
        const [o, k] = rng.pick(strings);
        const s = String(o[k]);
        const at = rng.int(s.length + 1);
        o[k] = `${s.slice(0, at)}\u0000${s.slice(at)}`;
      }
      return env;
    case 9:
      setField(rng, env, ["room_id", "roomId", "target"], rng.pick(BAD_ROOMS));
      return env;
    case 10: {
      const m = { target: rng.pick(ROOMS), content: "c" } as JsonObject;
      m[spell(rng, "sent_at")] = rng.pick(BAD_SENT_AT);
      return { message: m };
    }
    case 11:
      setField(rng, env, ["offset"], rng.pick(BAD_JSON_OFFSETS));
      return env;
    case 12:
      return rng.pick<unknown>([[env], null, "join_room", 42, true, {}, { join_room: null }]);
    case 13:
      return { [rng.pick(SERVER_KINDS)]: rng.pick<unknown>([{}, { code: "x" }, null]) };
    case 14: {
      // A join whose since is present but odd.
      const join: JsonObject = { room_id: rng.pick(ROOMS) };
      join["since"] = rng.pick<unknown>([
        null,
        {},
        { offset: rng.pick(BAD_JSON_OFFSETS) },
        { offset: "18446744073709551615", epoch: "" },
        { offset: "9223372036854775808", epoch: rng.pick(["", "other"]) },
        { epoch: 5 },
        "1",
      ]);
      return { [spell(rng, "join_room")]: join };
    }
    default:
      setField(rng, env, ["message_id", "messageId"], rng.pick(["", "i".repeat(129)]));
      return env;
  }
}

/** Text-level damage JSON.stringify cannot produce. */
function tweakJsonText(rng: Rng, text: string): string {
  switch (rng.int(6)) {
    case 0:
      // A repeated key: the last one wins.
      return text.replace(/"(room_id|roomId|target)":/, '"$1":"fz-9","$1":');
    case 1:
      return `\ufeff${text}`;
    case 2:
      return `  ${text}\n`;
    case 3:
      return `${text}${rng.pick(["x", "}", ",", "{}", "\u0000"])}`;
    case 4:
      return text.replace(/"(\d+)"/, "$1");
    default:
      return text.replace(/\\u0000/g, "\u0000");
  }
}

// ---- protobuf frames -----------------------------------------------------------

function maybe<T>(rng: Rng, p: number, value: () => T): T | undefined {
  return rng.chance(p) ? value() : undefined;
}

function protoEnvelope(rng: Rng, hostile: boolean): Envelope {
  const room = (): string => (hostile && rng.chance(0.3) ? rng.pick(BAD_ROOMS) : rng.pick(ROOMS));
  const str = (s: string): string =>
    hostile && rng.chance(0.2)
      ? rng.pick([`${s}\u0000`, "x".repeat(rng.pick([129, 513, 5000])), ""])
      : s;
  const offset = (): bigint =>
    hostile ? rng.pick(PROTO_OFFSETS) : rng.pick(PROTO_OFFSETS.slice(0, 4));
  const kinds = hostile ? 9 : 5;
  switch (rng.int(kinds)) {
    case 0: {
      const value = create(JoinRoomSchema, { roomId: room() });
      if (rng.chance(0.4)) {
        value.since = create(StreamPositionSchema, {
          offset: offset(),
          epoch: rng.pick(["", "e1"]),
        });
      }
      return envelope({ case: "joinRoom", value });
    }
    case 1:
      return envelope({ case: "leaveRoom", value: create(LeaveRoomSchema, { roomId: room() }) });
    case 2: {
      const value = create(MessageSchema, { target: room(), content: str(rng.text(40)) });
      const messageId = maybe(rng, 0.5, () => str(`m-${rng.int(20)}`));
      if (messageId !== undefined) value.messageId = messageId;
      const sentAt = maybe(rng, 0.4, () =>
        hostile && rng.chance(0.5) ? rng.pick(BAD_SENT_AT) : rng.pick(GOOD_SENT_AT),
      );
      if (sentAt !== undefined) value.sentAt = sentAt;
      const tp = maybe(rng, 0.2, () =>
        str("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
      );
      if (tp !== undefined) value.traceparent = tp;
      const ts = maybe(rng, 0.2, () => str("rojo=00f067aa0ba902b7"));
      if (ts !== undefined) value.tracestate = ts;
      // Server-only fields a client has no business setting.
      if (hostile && rng.chance(0.2)) value.offset = offset();
      if (hostile && rng.chance(0.2)) value.senderId = "someone-else";
      return envelope({ case: "message", value });
    }
    case 3:
      return envelope({
        case: "ack",
        value: create(AckSchema, { roomId: room(), offset: offset() }),
      });
    case 4:
      return envelope({ case: "refresh", value: create(RefreshSchema, { token: str("t") }) });
    case 5:
      return envelope({ case: "session", value: create(SessionSchema, { token: "t" }) });
    case 6:
      return envelope({ case: "error", value: create(ErrorSchema, { code: "internal" }) });
    case 7:
      return envelope({
        case: "roomJoined",
        value: create(RoomJoinedSchema, { roomId: room(), offset: offset() }),
      });
    default:
      return create(EnvelopeSchema);
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function delimitRaw(body: readonly number[] | Uint8Array): Uint8Array {
  return Uint8Array.from([...varint(body.length), ...body]);
}

/** Hand-made envelope bodies and framings protobuf-es would never write. */
function rawProtoPiece(rng: Rng): Uint8Array {
  const join = toBinary(EnvelopeSchema, protoEnvelope(rng, false));
  switch (rng.int(10)) {
    case 0: // an unknown top-level field (15, 100 or 536870911) as varint
      return delimitRaw([...varint(rng.pick([15, 100, 536_870_911]) * 8), 1]);
    case 1: {
      // Two kinds in one envelope.
      const second = toBinary(EnvelopeSchema, protoEnvelope(rng, false));
      return delimitRaw([...join, ...second]);
    }
    case 2: // a wire type that does not exist (6 or 7)
      return delimitRaw([(1 << 3) | rng.pick([6, 7]), 0]);
    case 3: // join_room sent as a varint instead of a message
      return delimitRaw([(1 << 3) | 0, 5]);
    case 4: // a length running past the end
      return Uint8Array.from([0x05, 0x0a]);
    case 5: // a truncated or over-long length varint
      return Uint8Array.from(
        rng.pick([
          [0xff],
          [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
          [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
        ]),
      );
    case 6: // an ack whose offset varint is 11 bytes long
      return delimitRaw([
        (4 << 3) | 2,
        15,
        (1 << 3) | 2,
        2,
        0x66,
        0x7a,
        (3 << 3) | 0,
        ...Array<number>(10).fill(0xff),
        0x01,
      ]);
    case 7: // an empty envelope (no kind)
      return Uint8Array.from([0x00]);
    case 8: // a group start tag (deprecated wire type 3) left open
      return delimitRaw([(1 << 3) | 3, 0x0a]);
    default: // the same kind twice: merged
      return delimitRaw([...join, ...join]);
  }
}

// ---- byte damage ---------------------------------------------------------------

function mutateBytes(rng: Rng, b: Uint8Array, other: Uint8Array, ascii: boolean): Uint8Array {
  const at = (n: number): number => rng.int(n + 1);
  switch (rng.int(7)) {
    case 0: {
      const out = Uint8Array.from(b);
      for (let n = 1 + rng.int(8); n > 0 && out.length > 0; n--) {
        out[rng.int(out.length)]! ^= 1 << rng.int(ascii ? 7 : 8);
      }
      return out;
    }
    case 1:
      return b.subarray(0, at(b.length));
    case 2:
      return concat([b, b]);
    case 3:
      return concat([b.subarray(0, at(b.length)), other.subarray(at(other.length))]);
    case 4: {
      const i = at(b.length);
      return concat([b.subarray(0, i), rng.bytes(1 + rng.int(16), ascii), b.subarray(i)]);
    }
    case 5: {
      const out = Uint8Array.from(b);
      const i = rng.int(Math.max(1, out.length));
      out.set(rng.bytes(Math.min(out.length - i, 1 + rng.int(8)), ascii), i);
      return out;
    }
    default:
      return rng.bytes(rng.int(65), ascii);
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}

// ---- one fuzz frame ---------------------------------------------------------------

interface FuzzFrame {
  readonly data: Uint8Array;
  /** Sent as a binary WebSocket frame (else text). */
  readonly binary: boolean;
}

const utf8 = new TextEncoder();

function jsonFrame(rng: Rng): FuzzFrame {
  if (rng.chance(0.004)) return { data: rng.bytes(1 + rng.int(32)), binary: true }; // 1003
  let value: unknown = jsonEnvelope(rng);
  if (rng.chance(0.55)) value = mutateJson(rng, value as JsonObject);
  if (rng.chance(0.15)) value = mutateJson(rng, objects(value)[0] ?? {});
  let text = deepen(JSON.stringify(value) ?? "null");
  if (rng.chance(0.15)) text = tweakJsonText(rng, text);
  let data: Uint8Array = utf8.encode(text);
  if (rng.chance(0.25)) {
    const other = utf8.encode(JSON.stringify(jsonEnvelope(rng)));
    data = mutateBytes(rng, data, other, rng.chance(0.7));
  }
  return { data, binary: false };
}

function protoFrame(rng: Rng): FuzzFrame {
  if (rng.chance(0.004))
    return { data: utf8.encode('{"join_room":{"room_id":"fz-0"}}'), binary: false }; // 1003
  if (rng.chance(0.003)) return { data: new Uint8Array(8193), binary: true }; // 1008
  if (rng.chance(0.004)) {
    const big = protoCodec.encode(
      envelope({
        case: "message",
        value: create(MessageSchema, { target: "fz-0", content: "x".repeat(MAX_FRAME) }),
      }),
    );
    return { data: big, binary: true }; // 1009
  }
  const pieces: Uint8Array[] = [];
  for (let n = 1 + (rng.chance(0.3) ? rng.int(4) : 0); n > 0; n--) {
    pieces.push(
      rng.chance(0.2)
        ? rawProtoPiece(rng)
        : protoCodec.encode(protoEnvelope(rng, rng.chance(0.45))),
    );
  }
  let data = concat(pieces);
  if (rng.chance(0.3)) {
    data = mutateBytes(rng, data, protoCodec.encode(protoEnvelope(rng, false)), false);
  }
  return { data, binary: true };
}

function describeFrame(f: FuzzFrame): string {
  const head = Buffer.from(f.data.subarray(0, 160));
  const shown = f.binary ? head.toString("hex") : JSON.stringify(head.toString("utf8"));
  return `${f.binary ? "binary" : "text"}(${f.data.length} B) ${shown}${f.data.length > 160 ? "…" : ""}`;
}

// ---- the run -------------------------------------------------------------------------

interface Health {
  readonly path: string;
  readonly ms: number;
  readonly status: number | string;
}

/** Polls /healthz and /readyz until `signal` aborts, recording each answer and its latency. */
async function pollHealth(base: string, signal: AbortSignal, out: Health[]): Promise<void> {
  while (!signal.aborted) {
    for (const path of ["/healthz", "/readyz"]) {
      const started = performance.now();
      let status: number | string;
      try {
        const res = await fetch(base + path, { signal: AbortSignal.timeout(HEALTH_BOUND_MS * 5) });
        await res.arrayBuffer();
        status = res.status;
      } catch (err) {
        status = err instanceof Error ? err.message : String(err);
      }
      out.push({ path, ms: performance.now() - started, status });
    }
    await delay(HEALTH_POLL_MS, undefined, { signal }).catch(() => undefined);
  }
}

interface Stats {
  frames: number;
  connections: number;
  resumed: number;
  readonly errors: Map<string, number>;
  readonly closes: Map<number, number>;
  /** Frames the fuzzed connections received, by kind: how deep the fuzz got. */
  readonly replies: Map<string, number>;
}

function count<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

class Fuzzer {
  readonly #server: ServerProcess;
  readonly #rng: Rng;
  readonly #label: string;
  readonly stats: Stats = {
    frames: 0,
    connections: 0,
    resumed: 0,
    errors: new Map(),
    closes: new Map(),
    replies: new Map(),
  };
  /** The last bursts sent, for failure messages. */
  readonly #recent: string[] = [];
  #sync = 0;

  constructor(server: ServerProcess, seed: number, label: string) {
    this.#server = server;
    this.#rng = new Rng(seed);
    this.#label = label;
  }

  context(): string {
    return `seed=${SEED} (FUZZ_SEED=${SEED}), store ${this.#label}; last frames sent:\n  ${this.#recent.join("\n  ")}`;
  }

  async run(frames: number, deadline: number): Promise<void> {
    let token: string | undefined;
    let turn = 0;
    while (this.stats.frames < frames && Date.now() < deadline) {
      const proto = turn++ % 2 === 1;
      const rng = this.#rng;
      const protocols = proto
        ? rng.pick([[PROTO_PROTOCOL], [PROTO_PROTOCOL, JSON_PROTOCOL]])
        : rng.pick([[JSON_PROTOCOL], [], ["x.unknown", JSON_PROTOCOL]]);
      const resume = token !== undefined && rng.chance(0.3);
      const c = await TestClient.connect(this.#server.wsUrl, {
        protocols,
        ...(resume && token !== undefined && { session: token }),
      });
      const session = await c.next("session");
      token = session["token"] as string;
      this.stats.connections++;
      if (session["resumed"] === true) this.stats.resumed++;
      this.#recent.push(
        `-- connection ${this.stats.connections} ${proto ? "proto" : "json"}${resume ? " (resume)" : ""}`,
      );
      try {
        await this.#fuzzConnection(c, proto, frames, deadline);
      } finally {
        c.ws.terminate();
        for (const f of c.frames)
          for (const kind of Object.keys(f)) count(this.stats.replies, kind);
      }
    }
  }

  async #fuzzConnection(
    c: TestClient,
    proto: boolean,
    frames: number,
    deadline: number,
  ): Promise<void> {
    // Most connections start in a couple of rooms, so that fuzzed publishes,
    // acks and leaves reach past the membership check.
    for (let n = this.#rng.chance(0.8) ? 2 : 0; n > 0; n--) {
      const roomId = this.#rng.pick(ROOMS);
      c.ws.send(
        proto
          ? protoCodec.encode(
              envelope({ case: "joinRoom", value: create(JoinRoomSchema, { roomId }) }),
            )
          : JSON.stringify({ join_room: { room_id: roomId } }),
      );
    }
    let checked = 0;
    const check = (): void => {
      const errors = c.all("error");
      for (; checked < errors.length; checked++) {
        const code = String(errors[checked]!["code"]);
        count(this.stats.errors, code);
        assert.ok(
          Object.hasOwn(errorDescriptions, code) && docErrorCodes.has(code),
          `undocumented error code ${JSON.stringify(code)}; ${this.context()}`,
        );
        assert.ok(
          !FORBIDDEN_ERRORS.has(code),
          `error ${code} (${JSON.stringify(errors[checked])}); ${this.context()}`,
        );
      }
    };
    while (this.stats.frames < frames && Date.now() < deadline) {
      const burst: FuzzFrame[] = [];
      for (let n = 1 + this.#rng.int(4); n > 0; n--) {
        burst.push(proto ? protoFrame(this.#rng) : jsonFrame(this.#rng));
      }
      for (const f of burst) {
        this.#remember(describeFrame(f));
        c.ws.send(f.data, { binary: f.binary });
        this.stats.frames++;
      }
      // A probe the node answers after everything before it: leaving a room
      // never joined is `not_joined` with the room as ref, and no bad frame.
      const ref = `sync-${++this.#sync}`;
      c.ws.send(
        proto
          ? protoCodec.encode(
              envelope({ case: "leaveRoom", value: create(LeaveRoomSchema, { roomId: ref }) }),
            )
          : JSON.stringify({ leave_room: { room_id: ref } }),
      );
      try {
        await c.next("error", SYNC_TIMEOUT_MS, (e) => e["ref"] === ref);
      } catch (err) {
        check();
        if (c.ws.readyState !== c.ws.CLOSED) {
          assert.fail(`no answer within ${SYNC_TIMEOUT_MS} ms (${String(err)}); ${this.context()}`);
        }
        const closed = await c.closed;
        count(this.stats.closes, closed.code);
        this.#remember(`-- closed ${closed.code} ${JSON.stringify(closed.reason)}`);
        assert.ok(
          docCloseCodes.has(closed.code) && Object.hasOwn(closeReasons, closed.code),
          `undocumented close code ${closed.code} ${JSON.stringify(closed.reason)}; ${this.context()}`,
        );
        assert.ok(!FORBIDDEN_CLOSES.has(closed.code), `close ${closed.code}; ${this.context()}`);
        return;
      }
      check();
    }
  }

  #remember(line: string): void {
    this.#recent.push(line);
    if (this.#recent.length > 12) this.#recent.splice(0, this.#recent.length - 12);
  }
}

/** Log records that mean the node hit a fault: level error or worse, or an unexpected error. */
function faultRecords(logs: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return logs.filter(
    (r) =>
      (typeof r["level"] === "number" && r["level"] >= 50) ||
      (typeof r["msg"] === "string" && /unexpected|uncaught|unhandled/i.test(r["msg"])),
  );
}

test("fuzz - docs/errors.md lists every registry code the fuzz checks against", () => {
  for (const code of Object.keys(errorDescriptions)) assert.ok(docErrorCodes.has(code), code);
  for (const code of Object.keys(closeReasons)) assert.ok(docCloseCodes.has(Number(code)), code);
});

const stores: { name: string; env: (dir: string) => Record<string, string> }[] = [
  { name: "memory", env: () => ({ STORE: "memory" }) },
  { name: "sqlite", env: (dir) => ({ STORE: "sqlite", SQLITE_PATH: `${dir}/fuzz.sqlite` }) },
];

for (const [index, store] of stores.entries()) {
  describe(`fuzz - ${store.name}`, () => {
    let server: ServerProcess;
    let dir: string;

    before(async () => {
      dir = await makeTempDir("fuzz");
      server = await startServer(store.env(dir));
    });
    after(async () => {
      await server.stop();
      await removeTempDir(dir);
    });

    test("random and mutated frames on both subprotocols get only documented codes; the node stays up", async (t: TestContext) => {
      // Each store gets its own stream, both derived from the one seed.
      const fuzzer = new Fuzzer(server, (SEED + index * 0x9e3779b9) >>> 0, store.name);
      t.diagnostic(`seed ${SEED}`);
      // A well-behaved member of every room, to see the node's output stay ordered.
      const observer = await TestClient.connect(server.wsUrl);
      for (const room of ROOMS) {
        observer.send({ join_room: { room_id: room } });
        await observer.next("room_joined", 5000, (j) => j["room_id"] === room);
      }
      const health: Health[] = [];
      const stop = new AbortController();
      const polling = pollHealth(server.httpUrl, stop.signal, health);
      const started = Date.now();
      try {
        await fuzzer.run(FRAMES, started + BUDGET_MS);
      } finally {
        stop.abort();
        await polling;
      }
      const s = fuzzer.stats;
      t.diagnostic(
        `${s.frames} frames on ${s.connections} connections (${s.resumed} resumed) in ${Date.now() - started} ms; ` +
          `replies ${JSON.stringify(Object.fromEntries(s.replies))}; errors ${JSON.stringify(Object.fromEntries(s.errors))}; closes ${JSON.stringify(Object.fromEntries(s.closes))}; ` +
          `${health.length} health probes, slowest ${Math.round(Math.max(...health.map((h) => h.ms)))} ms`,
      );

      // (3) responsive throughout; the store never looked unhealthy.
      assert.ok(health.length >= 2, `no health probe answered; seed=${SEED}`);
      for (const h of health) {
        assert.equal(h.status, 200, `${h.path} answered ${h.status}; ${fuzzer.context()}`);
        assert.ok(h.ms < HEALTH_BOUND_MS, `${h.path} took ${Math.round(h.ms)} ms; seed=${SEED}`);
      }
      // (4) alive, and no fault in its logs.
      assert.equal(server.child.exitCode, null, `server exited; seed=${SEED}`);
      assert.equal(server.child.signalCode, null, `server was killed; seed=${SEED}`);
      const faults = faultRecords(server.logs);
      assert.deepEqual(faults, [], `server logged faults; seed=${SEED}`);

      // The observer stayed connected, got no error, and saw every room in offset order.
      assert.equal(observer.ws.readyState, observer.ws.OPEN, `observer closed; seed=${SEED}`);
      assert.deepEqual(observer.all("error"), [], `observer got errors; seed=${SEED}`);
      for (const room of ROOMS) {
        const offsets = observer
          .all("message")
          .filter((m) => m["target"] === room)
          .map((m) => BigInt(String(m["offset"])));
        offsets.forEach((o, i) =>
          assert.equal(o, BigInt(i + 1), `${room}: offsets ${offsets.join(",")}; seed=${SEED}`),
        );
      }
      observer.ws.terminate();
      assert.ok(s.frames > 0);
    });
  });
}

// ---- regressions the fuzzer found ------------------------------------------------
//
// A join whose since.offset is above 2^63 − 1 (legal: offsets are uint64, up
// to 18446744073709551615) reaches the SQL stores as an out-of-range int64.
// SQLite (better-sqlite3 RangeError) and PostgreSQL (22003) refuse it, the
// guard counts that as a store failure and the client gets `unavailable`
// instead of `offset_out_of_range`. Three in a row open the store's breaker:
// for a second the node is not ready, every publish on it is `unavailable` and
// new handshakes get 503. The memory store answers correctly (the control).
// First seen with FUZZ_SEED=333470093 (sqlite); minimal frames:
//   JSON   {"join_room":{"room_id":"r","since":{"offset":"9223372036854775808"}}}
//   binary 120a100a0172120b0880808080808080808001
const HUGE_SINCE = { join_room: { room_id: "r", since: { offset: "9223372036854775808" } } };
const HUGE_SINCE_BINARY = Buffer.from("120a100a0172120b0880808080808080808001", "hex");

let regressionPg: PostgresServer | undefined;
const regressionStores: {
  name: string;
  available: () => boolean;
  env: (dir: string) => Promise<Record<string, string>>;
}[] = [
  { name: "memory", available: () => true, env: () => Promise.resolve({ STORE: "memory" }) },
  {
    name: "sqlite",
    available: () => true,
    env: (dir) => Promise.resolve({ STORE: "sqlite", SQLITE_PATH: `${dir}/regression.sqlite` }),
  },
  {
    name: "postgres",
    available: postgresAvailable,
    env: async () => {
      regressionPg ??= await startPostgres();
      return {
        STORE: "postgres",
        POSTGRES_URL: await regressionPg.createDatabase(`fuzz_${Date.now()}`),
      };
    },
  },
];

for (const store of regressionStores) {
  describe(`fuzz regression - ${store.name}`, { skip: !store.available() }, () => {
    let dir: string;
    const servers: ServerProcess[] = [];
    const clients: TestClient[] = [];

    /** A fresh node per test: a test that opens the breaker must not leak into the next. */
    async function node(): Promise<ServerProcess> {
      const server = await startServer(await store.env(dir));
      servers.push(server);
      return server;
    }
    async function client(server: ServerProcess, protocols: string[] = []): Promise<TestClient> {
      const [c] = await TestClient.open(server.wsUrl, { protocols });
      clients.push(c);
      return c;
    }

    before(async () => {
      dir = await makeTempDir("fuzz-regression");
    });
    after(async () => {
      for (const c of clients) c.ws.terminate();
      for (const s of servers) await s.stop();
      await regressionPg?.close();
      regressionPg = undefined;
      await removeTempDir(dir);
    });

    test("a join with since.offset above 2^63-1 is offset_out_of_range, in JSON and binary", async () => {
      const server = await node();
      const json = await client(server);
      json.send(HUGE_SINCE);
      const e = await json.next("error");
      assert.equal(e["code"], ErrorCode.OffsetOutOfRange, JSON.stringify(e));
      assert.equal(e["ref"], "r");

      const binary = await client(server, [PROTO_PROTOCOL]);
      binary.ws.send(HUGE_SINCE_BINARY);
      const b = await binary.next("error");
      assert.equal(b["code"], ErrorCode.OffsetOutOfRange, JSON.stringify(b));
    });

    test("a join with the largest offset and another epoch succeeds with recovered false", async () => {
      const server = await node();
      const c = await client(server);
      c.send({
        join_room: { room_id: "r", since: { offset: "18446744073709551615", epoch: "other" } },
      });
      const answer = await eventually(() => c.frames.find((f) => !("session" in f)));
      assert.equal(answer["room_joined"]?.["recovered"], false, JSON.stringify(answer));
    });

    test("three joins with a huge since.offset leave the node ready and other members publishing", async () => {
      const server = await node();
      const holder = await client(server);
      holder.send({ join_room: { room_id: "r" } });
      await holder.next("room_joined");
      const attacker = await client(server);
      for (let i = 0; i < 3; i++) attacker.send(HUGE_SINCE);
      for (let i = 0; i < 3; i++) await attacker.next("error");
      const ready = await fetch(`${server.httpUrl}/readyz`);
      assert.equal(ready.status, 200, await ready.text());
      holder.send({ message: { target: "r", content: "still here" } });
      const ack = await holder.next("ack");
      assert.equal(ack["offset"], "1");
      assert.deepEqual(holder.all("error"), []);
    });
  });
}

// A close by `ws` itself (1007 invalid UTF-8, 1009 too big) while the outlet
// still holds frames queued for the next flush: the flush writes them to a
// socket ws has already ended, Node destroys it (write after end), and a
// client still sending gets a reset and can lose the close frame: it sees
// 1006 instead of 1007. Seen as a 1006 once in ~60 fuzz runs of 8000 frames
// (FUZZ_SEED=3187189623, memory; not replayable: it is a race). Reduced: one TCP write of two
// masked text frames, "x" (malformed JSON, whose bad_request is queued at
// once) then 0xFF (invalid UTF-8), while the client keeps writing. Without
// the first frame no close frame is lost; with it a few percent are.
function maskedFrame(opcode: number, payload: Uint8Array | string): Buffer {
  const data = Buffer.from(payload);
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const head =
    data.length < 126
      ? Buffer.from([0x80 | opcode, 0x80 | data.length])
      : Buffer.from([0x80 | opcode, 0x80 | 126, data.length >> 8, data.length & 0xff]);
  return Buffer.concat([head, mask, data.map((b, i) => b ^ mask[i % 4]!)]);
}

/** Opens a raw WebSocket, sends `frames` in one write, keeps writing; resolves with what came back. */
async function rawCloseRace(port: number, frames: Buffer): Promise<Buffer> {
  const sock = createConnection({ port, host: "127.0.0.1" });
  sock.on("error", () => undefined); // a reset is what this looks for, via the bytes
  const chunks: Buffer[] = [];
  sock.on("data", (d: Buffer) => chunks.push(d));
  const closed = new Promise<void>((resolve) => sock.once("close", () => resolve()));
  await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
  sock.write(
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  await eventually(() => Buffer.concat(chunks).includes("\r\n\r\n"));
  sock.write(frames);
  const filler = Buffer.concat(Array.from({ length: 500 }, () => maskedFrame(1, "z".repeat(2000))));
  const pump = setInterval(() => {
    if (!sock.destroyed) sock.write(filler);
  }, 1);
  try {
    await Promise.race([closed, delay(3000)]);
  } finally {
    clearInterval(pump);
    sock.destroy();
  }
  const all = Buffer.concat(chunks);
  return all.subarray(all.indexOf("\r\n\r\n") + 4);
}

/** The close code of the first close frame among server frames, or undefined. */
function closeCodeIn(frames: Buffer): number | undefined {
  let rest = frames;
  while (rest.length >= 2) {
    let len = rest[1]! & 0x7f;
    let off = 2;
    if (len === 126) [len, off] = [rest.readUInt16BE(2), 4];
    else if (len === 127) [len, off] = [Number(rest.readBigUInt64BE(2)), 10];
    if ((rest[0]! & 0x0f) === 0x8)
      return rest.length >= off + 2 ? rest.readUInt16BE(off) : undefined;
    rest = rest.subarray(off + len);
  }
  return undefined;
}

describe("fuzz regression - close race", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer({ STORE: "memory" });
  });
  after(async () => {
    await server.stop();
  });

  test("invalid UTF-8 right after a malformed frame always reaches the client as close 1007", async () => {
    const frames = Buffer.concat([maskedFrame(1, "x"), maskedFrame(1, Buffer.from([0xff]))]);
    const seen = new Map<string, number>();
    const deadline = Date.now() + 8000;
    for (let i = 0; i < 60 && Date.now() < deadline; i++) {
      const code = String(closeCodeIn(await rawCloseRace(server.port, frames)) ?? "none");
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()], ["1007"], `close frames seen: ${JSON.stringify([...seen])}`);
  });
});
