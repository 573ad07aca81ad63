import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import {
  create,
  createFileRegistry,
  fromJson,
  toBinary,
  toJson,
  type JsonValue,
} from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  StructSchema,
  TimestampSchema,
} from "@bufbuild/protobuf/wkt";
import {
  DecodeError,
  FrameTooLargeError,
  MAX_JSON_DEPTH,
  MAX_ENVELOPES_PER_FRAME,
  Subprotocol,
  delimit,
  encodeJsonText,
  envelope,
  jsonCodec,
  jsonDepthExceeds,
  messageJson,
  negotiate,
  plainPublish,
  protoCodec,
} from "../../src/protocol/codec.js";
import {
  AckSchema,
  EnvelopeSchema,
  JoinRoomSchema,
  LeaveRoomSchema,
  MessageSchema,
  type Envelope,
} from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";
import { UnsupportedSchemaError, findBadUint64, planFor } from "../../src/protocol/json-int64.js";

const text = (s: string) => new TextEncoder().encode(s);

describe("codec - json", () => {
  test("reads proto field names and lowerCamelCase alike", () => {
    const [a] = jsonCodec.decode(text('{"join_room":{"room_id":"r1"}}'));
    const [b] = jsonCodec.decode(text('{"joinRoom":{"roomId":"r1"}}'));
    assert.equal(a?.kind.case, "joinRoom");
    assert.deepEqual(a, b);
  });

  test("ignores unknown fields and leaves an unknown kind unset", () => {
    const [a] = jsonCodec.decode(text('{"join_room":{"room_id":"r1","extra":1},"x":2}'));
    assert.equal(a?.kind.case, "joinRoom");
    const [b] = jsonCodec.decode(text('{"teleport":{"to":"mars"}}'));
    assert.equal(b?.kind.case, undefined);
  });

  test("64-bit offsets: strings or numbers in, strings out", () => {
    const [a] = jsonCodec.decode(text('{"ack":{"room_id":"r","offset":"18446744073709551615"}}'));
    const [b] = jsonCodec.decode(text('{"ack":{"room_id":"r","offset":42}}'));
    assert.equal(a?.kind.case === "ack" && a.kind.value.offset, 18446744073709551615n);
    assert.equal(b?.kind.case === "ack" && b.kind.value.offset, 42n);
    const out = JSON.parse(encodeJsonText(b!)) as { ack: Record<string, unknown> };
    assert.equal(out.ack["offset"], "42");
    assert.equal(out.ack["room_id"], "r");
  });

  test("writes proto field names and explicit false/empty defaults", () => {
    const env = envelope({
      case: "session",
      value: {
        $typeName: "roomcast.v1.Session",
        token: "t",
        memberId: "m",
        rooms: [],
        resumed: false,
        protocol: "roomcast.v1",
      },
    });
    assert.deepEqual(JSON.parse(encodeJsonText(env)), {
      session: { token: "t", member_id: "m", rooms: [], resumed: false, protocol: "roomcast.v1" },
    });
  });

  for (const [name, frame] of [
    ["malformed JSON", "{"],
    ["an array", "[]"],
    ["null", "null"],
    ["a string", '"x"'],
    ["a wrong field type", '{"join_room":{"room_id":5}}'],
    ["a bad offset", '{"ack":{"room_id":"r","offset":"abc"}}'],
    ["two kinds at once", '{"join_room":{"room_id":"a"},"leave_room":{"room_id":"b"}}'],
  ] as const) {
    test(`rejects ${name} with DecodeError`, () => {
      assert.throws(() => jsonCodec.decode(text(frame)), DecodeError);
    });
  }

  test("rejects invalid UTF-8", () => {
    assert.throws(() => jsonCodec.decode(new Uint8Array([0x7b, 0xff, 0x7d])), DecodeError);
  });

  test("nesting: 32 levels decode, 33 and 10,000 are DecodeError, brackets in strings do not count", () => {
    const nested = (depth: number) =>
      `{"message":{"target":"r","content":"x","x":${"[".repeat(depth - 2)}${"]".repeat(depth - 2)}}}`;
    assert.equal([...jsonCodec.decode(text(nested(MAX_JSON_DEPTH)))].length, 1);
    assert.throws(() => jsonCodec.decode(text(nested(MAX_JSON_DEPTH + 1))), /deeper than 32/);
    assert.throws(() => jsonCodec.decode(text(nested(10_000))), DecodeError);
    assert.throws(() => jsonCodec.decode(text("[".repeat(60_000))), DecodeError);
    const brackets = `{"message":{"target":"r","content":"${"[{".repeat(100)}\\"[[["}}`;
    const [env] = [...jsonCodec.decode(text(brackets))];
    assert.equal(env?.kind.case, "message");
    assert.equal(jsonDepthExceeds(text('{"a":"\\"}'), 1), false);
  });

  test("__proto__ and constructor keys are ignored and pollute nothing", () => {
    const frame =
      '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},' +
      '"message":{"target":"r","content":"x","__proto__":{"offset":"9"},"constructor":1}}';
    const [env] = [...jsonCodec.decode(text(frame))];
    assert.equal(env?.kind.case, "message");
    assert.equal(env.kind.value.offset, undefined);
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"), false);
  });
});

describe("codec - json publish read directly", () => {
  const viaFromJson = (frame: string) =>
    fromJson(EnvelopeSchema, JSON.parse(frame) as JsonValue, { ignoreUnknownFields: true });
  const decoded = (frame: string) => [...jsonCodec.decode(text(frame))];

  test("a publish of string fields is built directly, equal to fromJson's", () => {
    const frames = [
      '{"message":{"target":"r","content":"hello"}}',
      '{"message":{}}',
      '{"message":{"content":"only"}}',
      '{"message":{"target":"r","content":"x","message_id":"m1","sent_at":"2024-03-05T10:20:30Z","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"k=v"}}',
      '{"message":{"target":"r","content":"x","messageId":"m1","sentAt":"s","senderId":"forged","userId":"forged"}}',
      '{"message":{"target":"r","content":"\\u00e9\\ud83d\\ude00 \\"quoted\\""}}',
      '{"message":{"target":"r","target":"s","content":"later key wins"}}',
    ];
    for (const frame of frames) {
      const direct = plainPublish(JSON.parse(frame) as object);
      assert.notEqual(direct, undefined, frame);
      assert.deepStrictEqual(direct, viaFromJson(frame), frame);
      assert.deepStrictEqual(decoded(frame), [viaFromJson(frame)], frame);
    }
  });

  test("anything else takes fromJson's path, with its result or its refusal", () => {
    const accepted = [
      '{"message":{"target":"r","content":"x","offset":"7"}}',
      '{"message":{"target":"r","content":"x","offset":7}}',
      '{"message":{"target":"r","content":"x","message_id":null}}',
      '{"message":{"target":"r","content":"x","unknown":1}}',
      '{"message":{"target":"r","content":"x"},"extra":true}',
      '{"message":null}',
      '{"join_room":{"room_id":"r"}}',
    ];
    for (const frame of accepted) {
      assert.equal(plainPublish(JSON.parse(frame) as object), undefined, frame);
      assert.deepStrictEqual(decoded(frame), [viaFromJson(frame)], frame);
    }
    const refused = [
      '{"message":{"target":"r","content":1}}',
      '{"message":{"target":["r"],"content":"x"}}',
      '{"message":{"target":"r","content":"x","message_id":"m","messageId":"m"}}',
      '{"message":{"target":"r","sentAt":"x","sent_at":"x"}}',
      '{"message":"text"}',
      '{"message":[]}',
    ];
    for (const frame of refused) {
      assert.equal(plainPublish(JSON.parse(frame) as object), undefined, frame);
      assert.throws(() => viaFromJson(frame), frame);
      assert.throws(() => decoded(frame), DecodeError, frame);
    }
  });
});

describe("codec - json fast path", () => {
  // encodeJsonText builds message and ack by hand; it must equal protojson.
  const reference = (env: ReturnType<typeof envelope>) =>
    JSON.stringify(
      toJson(EnvelopeSchema, env, { useProtoFieldName: true, alwaysEmitImplicit: true }),
    );
  const optional = [
    "messageId",
    "sentAt",
    "senderId",
    "traceparent",
    "tracestate",
    "userId",
  ] as const;

  test("message: every combination of optional fields", () => {
    for (let mask = 0; mask < 1 << (optional.length + 1); mask++) {
      const m = create(MessageSchema, { target: "r", content: mask % 3 === 0 ? "" : 'say "hi"\n' });
      optional.forEach((field, i) => {
        if (mask & (1 << i)) m[field] = `${field}-\u2028-${mask}`;
      });
      if (mask & (1 << optional.length)) m.offset = 18446744073709551615n;
      const env = envelope({ case: "message", value: m });
      assert.equal(encodeJsonText(env), reference(env), `mask ${mask}`);
      // The server API's history items (messageJson) must say the same.
      assert.equal(JSON.stringify({ message: messageJson(m) }), reference(env), `mask ${mask}`);
    }
  });

  test("message and ack: strings that need escaping are written as JSON.stringify writes them", () => {
    const strings = [
      "",
      "plain ascii",
      'say "hi"',
      "back\\slash",
      "tab\tnew\nline\u0000nul\u001fus\u007fdel",
      "\u2028\u2029 separators",
      "caf\u00e9 \u4e2d\u6587",
      "emoji \ud83d\ude00",
      "lone high \ud800 and low \udc00",
      "</script>",
    ];
    for (const s of strings) {
      const m = create(MessageSchema, {
        target: s,
        content: s,
        messageId: s,
        sentAt: s,
        senderId: s,
        offset: 1n,
        traceparent: s,
        tracestate: s,
        userId: s,
      });
      const message = envelope({ case: "message", value: m });
      assert.equal(encodeJsonText(message), reference(message), JSON.stringify(s));
      const ack = envelope({
        case: "ack",
        value: create(AckSchema, { roomId: s, messageId: s, offset: 9n, duplicate: true }),
      });
      assert.equal(encodeJsonText(ack), reference(ack), JSON.stringify(s));
    }
  });

  test("ack: with and without message_id and duplicate", () => {
    for (const init of [
      { roomId: "r", offset: 0n },
      { roomId: "r", offset: 42n, messageId: "m" },
      { roomId: "r", offset: 7n, messageId: "m", duplicate: false },
      { roomId: "r", offset: 7n, duplicate: true },
    ]) {
      const env = envelope({ case: "ack", value: create(AckSchema, init) });
      assert.equal(encodeJsonText(env), reference(env));
    }
  });
});

describe("codec - proto", () => {
  const msg = (content: string) =>
    envelope({ case: "message", value: create(MessageSchema, { target: "r", content }) });

  test("round-trips several envelopes in one frame", () => {
    const frame = Buffer.concat([protoCodec.encode(msg("a")), protoCodec.encode(msg("b"))]);
    const out = [...protoCodec.decode(frame)];
    assert.deepEqual(
      out.map((e) => (e.kind.case === "message" ? e.kind.value.content : "")),
      ["a", "b"],
    );
  });

  test("delimit of encoded bytes equals encode", () => {
    const env = msg("x");
    assert.deepEqual(delimit(toBinary(EnvelopeSchema, env)), protoCodec.encode(env));
  });

  test("rejects truncated and empty frames", () => {
    const good = protoCodec.encode(msg("hello"));
    assert.throws(() => protoCodec.decode(good.subarray(0, good.length - 2)), DecodeError);
    assert.throws(() => protoCodec.decode(new Uint8Array()), DecodeError);
  });
});

describe("codec - negotiate", () => {
  test("none offered is JSON", () => assert.equal(negotiate([]), Subprotocol.Json));
  test("picks the first supported in the client's order", () => {
    assert.equal(negotiate(["x", Subprotocol.Proto, Subprotocol.Json]), Subprotocol.Proto);
  });
  test("only unsupported is undefined", () => assert.equal(negotiate(["mqtt", "v2"]), undefined));
});

// ---- input rules (docs/protocol.md, "Input rules") ---------------------------

const decodeJson = (json: string): Envelope => {
  const [env, ...rest] = jsonCodec.decode(text(json));
  assert.equal(rest.length, 0);
  assert.ok(env !== undefined);
  return env;
};

/** The offset read from an ack and from a join_room's since, for one JSON value. */
function jsonOffsets(value: string): bigint[] {
  const ack = decodeJson(`{"ack":{"room_id":"r","offset":${value}}}`);
  const join = decodeJson(`{"join_room":{"room_id":"r","since":{"offset":${value},"epoch":"e"}}}`);
  assert.ok(ack.kind.case === "ack" && join.kind.case === "joinRoom");
  return [ack.kind.value.offset, join.kind.value.since?.offset ?? -1n];
}

describe("codec - offsets", () => {
  const accepted: [string, bigint][] = [
    ['"0"', 0n],
    ['"42"', 42n],
    ['"007"', 7n],
    ['"18446744073709551615"', 18446744073709551615n],
    ['"00000000000000000000018446744073709551615"', 18446744073709551615n],
    ["0", 0n],
    ["42", 42n],
    ["1e2", 100n],
    ["100.0", 100n],
    ["9007199254740991", 9007199254740991n],
    ["null", 0n],
  ];
  for (const [value, expected] of accepted) {
    test(`json accepts ${value} as ${expected}`, () => {
      assert.deepEqual(jsonOffsets(value), [expected, expected]);
    });
  }

  const refused = [
    '" 5 "',
    '"5 "',
    '"0x10"',
    '"1e2"',
    '"-1"',
    '""',
    '"+5"',
    '"5.0"',
    '"1_0"',
    '"\\u0663"',
    '"18446744073709551616"',
    '"000000000000000000000018446744073709551616"',
    "-1",
    "1.5",
    "9007199254740992",
    "1e20",
    "true",
    "{}",
    "[]",
  ];
  for (const value of refused) {
    test(`json refuses ${value} with DecodeError`, () => {
      assert.throws(
        () => jsonCodec.decode(text(`{"ack":{"room_id":"r","offset":${value}}}`)),
        DecodeError,
      );
      assert.throws(
        () => jsonCodec.decode(text(`{"joinRoom":{"roomId":"r","since":{"offset":${value}}}}`)),
        DecodeError,
      );
      // A client's message.offset is ignored by the server but read by the same rule.
      assert.throws(
        () => jsonCodec.decode(text(`{"message":{"target":"r","offset":${value}}}`)),
        DecodeError,
      );
    });
  }

  test("binary carries the same range: 0 to 2^64-1", () => {
    for (const offset of [0n, 42n, 9007199254740992n, 18446744073709551615n]) {
      const ack = envelope({ case: "ack", value: create(AckSchema, { roomId: "r", offset }) });
      const [out] = protoCodec.decode(protoCodec.encode(ack));
      assert.equal(out?.kind.case === "ack" && out.kind.value.offset, offset);
      const [viaJson] = jsonCodec.decode(jsonCodec.encode(ack));
      assert.equal(viaJson?.kind.case === "ack" && viaJson.kind.value.offset, offset);
    }
  });

  test("binary refuses a varint longer than 10 bytes", () => {
    // Ack{offset: <11-byte varint>} inside Envelope.ack (field 4).
    const ack = new Uint8Array([0x18, ...new Array<number>(10).fill(0xff), 0x01]);
    const env = new BinaryWriter().tag(4, WireType.LengthDelimited).bytes(ack).finish();
    assert.throws(() => [...protoCodec.decode(delimit(env))], DecodeError);
  });

  test("the JSON walk handles every field of the envelope schema", () => {
    const uint64 = (d: Parameters<typeof planFor>[0]): string[] =>
      planFor(d).flatMap((c) =>
        c.message === undefined
          ? [`${d.typeName}.${c.field.name}`]
          : uint64(c.message).map((f) => `${c.field.name}>${f}`),
      );
    assert.deepEqual(uint64(EnvelopeSchema).sort(), [
      "ack>roomcast.v1.Ack.offset",
      "join_room>since>roomcast.v1.StreamPosition.offset",
      "message>roomcast.v1.Message.offset",
      "room_joined>roomcast.v1.RoomJoined.offset",
    ]);
  });
});

test("codec - the JSON walk refuses schemas it would check wrongly", () => {
  const unsupported = (reason: UnsupportedSchemaError["reason"]) => (err: unknown) =>
    err instanceof UnsupportedSchemaError && err.reason === reason;
  assert.throws(() => planFor(StructSchema), unsupported("map"));
  assert.throws(() => planFor(TimestampSchema), unsupported("signed_int64")); // int64 seconds
  const file = create(FileDescriptorProtoSchema, {
    name: "t.proto",
    package: "t",
    syntax: "proto3",
    messageType: [
      {
        name: "Node",
        field: [
          {
            name: "child",
            jsonName: "child",
            number: 1,
            label: FieldDescriptorProto_Label.OPTIONAL,
            type: FieldDescriptorProto_Type.MESSAGE,
            typeName: ".t.Node",
          },
        ],
      },
    ],
  });
  const node = createFileRegistry(file, () => undefined).getMessage("t.Node");
  assert.ok(node !== undefined);
  assert.throws(() => planFor(node), unsupported("recursive"));
});

test("codec - the JSON walk checks repeated uint64 and repeated messages", () => {
  const field = (name: string, number: number, type: FieldDescriptorProto_Type, typeName = "") => ({
    name,
    jsonName: name,
    number,
    label: FieldDescriptorProto_Label.REPEATED,
    type,
    typeName,
  });
  const file = create(FileDescriptorProtoSchema, {
    name: "l.proto",
    package: "l",
    syntax: "proto3",
    messageType: [
      {
        name: "L",
        field: [
          field("xs", 1, FieldDescriptorProto_Type.UINT64),
          field("ps", 2, FieldDescriptorProto_Type.MESSAGE, ".l.P"),
        ],
      },
      {
        name: "P",
        field: [
          {
            ...field("o", 1, FieldDescriptorProto_Type.UINT64),
            label: FieldDescriptorProto_Label.OPTIONAL,
          },
        ],
      },
    ],
  });
  const l = createFileRegistry(file, () => undefined).getMessage("l.L");
  assert.ok(l !== undefined);
  const bad = (json: unknown) => findBadUint64(l, json)?.name;
  assert.equal(bad({ xs: ["1", 2, null], ps: [{ o: "3" }, { o: 4 }, {}] }), undefined);
  assert.equal(bad({ xs: ["1", "0x2"] }), "xs");
  assert.equal(bad({ ps: [{ o: "1" }, { o: "-1" }] }), "o");
  assert.equal(bad({ xs: "not a list", ps: {} }), undefined); // left for fromJson to refuse
});

describe("codec - json field spelling", () => {
  for (const [name, frame] of [
    ["both spellings of a kind", '{"join_room":{"room_id":"a"},"joinRoom":{"roomId":"a"}}'],
    ["both spellings of a field", '{"ack":{"room_id":"a","roomId":"a","offset":"1"}}'],
    ["both spellings, camel first", '{"leave_room":{"roomId":"a","room_id":"b"}}'],
    ["both spellings in a message", '{"message":{"target":"r","message_id":"m","messageId":"m"}}'],
    ["both spellings, one of them null", '{"message":{"target":"r","sent_at":null,"sentAt":"x"}}'],
  ] as const) {
    test(`refuses ${name} with DecodeError`, () => {
      assert.throws(() => jsonCodec.decode(text(frame)), DecodeError);
    });
  }

  test("a repeated key is last-wins, as in JSON.parse", () => {
    const env = decodeJson('{"leave_room":{"room_id":"a","room_id":"b"}}');
    assert.equal(env.kind.case === "leaveRoom" && env.kind.value.roomId, "b");
    // The earlier value is gone before any rule sees it.
    const ack = decodeJson('{"ack":{"room_id":"r","offset":"x","offset":"5"}}');
    assert.equal(ack.kind.case === "ack" && ack.kind.value.offset, 5n);
  });
});

/** One length-delimited record holding exactly `envelopeBytes`. */
const record = (envelopeBytes: Uint8Array): Uint8Array => delimit(envelopeBytes);

/** Envelope bytes with one length-delimited field per [fieldNo, message bytes]. */
function rawEnvelope(...fields: [number, Uint8Array][]): Uint8Array {
  const w = new BinaryWriter();
  for (const [fieldNo, bytes] of fields) w.tag(fieldNo, WireType.LengthDelimited).bytes(bytes);
  return w.finish();
}

describe("codec - binary kinds", () => {
  const join = toBinary(JoinRoomSchema, create(JoinRoomSchema, { roomId: "a" }));
  const leave = toBinary(LeaveRoomSchema, create(LeaveRoomSchema, { roomId: "b" }));

  test("two different kinds in one envelope: DecodeError", () => {
    for (const fields of [
      [
        [1, join],
        [2, leave],
      ],
      [
        [2, leave],
        [1, join],
      ],
      [
        [1, join],
        [1, join],
        [2, leave],
      ],
    ] as [number, Uint8Array][][]) {
      const frame = record(rawEnvelope(...fields));
      assert.throws(() => [...protoCodec.decode(frame)], DecodeError);
    }
  });

  test("the same kind twice merges, as protobuf does", () => {
    const a = toBinary(MessageSchema, create(MessageSchema, { target: "r" }));
    const b = toBinary(MessageSchema, create(MessageSchema, { content: "c" }));
    const [env] = protoCodec.decode(record(rawEnvelope([3, a], [3, b])));
    assert.equal(env?.kind.case, "message");
    assert.ok(env.kind.case === "message");
    assert.equal(env.kind.value.target, "r");
    assert.equal(env.kind.value.content, "c");
  });

  test("an unknown field beside a kind is ignored; alone it is no kind", () => {
    const [withKind] = protoCodec.decode(record(rawEnvelope([1, join], [42, leave])));
    assert.equal(withKind?.kind.case, "joinRoom");
    const [alone] = protoCodec.decode(record(rawEnvelope([42, leave])));
    assert.equal(alone?.kind.case, undefined);
  });
});

describe("codec - binary frames", () => {
  const msg = (content: string) =>
    protoCodec.encode(
      envelope({ case: "message", value: create(MessageSchema, { target: "r", content }) }),
    );
  const contents = (envs: Iterable<Envelope>) =>
    [...envs].map((e) => (e.kind.case === "message" ? e.kind.value.content : "?"));

  test(`up to MAX_ENVELOPES_PER_FRAME (${MAX_ENVELOPES_PER_FRAME}) envelopes per frame`, () => {
    // A zero-length record is an empty envelope: the smallest there is.
    const envs = [...protoCodec.decode(new Uint8Array(MAX_ENVELOPES_PER_FRAME))];
    assert.equal(envs.length, MAX_ENVELOPES_PER_FRAME);
    assert.equal(envs[0]?.kind.case, undefined);
  });

  test("one more envelope throws FrameTooLargeError from decode itself", () => {
    const frame = new Uint8Array(MAX_ENVELOPES_PER_FRAME + 1);
    assert.throws(() => protoCodec.decode(frame), FrameTooLargeError);
    assert.throws(() => protoCodec.decode(frame), DecodeError);
    // Malformed framing alone is a plain DecodeError.
    assert.throws(
      () => protoCodec.decode(new Uint8Array([5, 0])),
      (err: unknown) => err instanceof DecodeError && !(err instanceof FrameTooLargeError),
    );
  });

  test("malformed framing throws from decode, before any envelope", () => {
    const good = msg("a");
    for (const frame of [
      Buffer.concat([good, new Uint8Array([0x80])]), // a length varint cut short
      Buffer.concat([good, new Uint8Array([3, 0])]), // a record running past the end
      Buffer.concat([good, new Uint8Array(11).fill(0xff)]), // a length varint too long
    ]) {
      assert.throws(() => protoCodec.decode(frame), DecodeError);
    }
  });

  test("envelopes are decoded as iterated: a bad 3rd yields 2 then DecodeError", () => {
    // The 3rd record is well framed, but its envelope has a tag with field number 0.
    const frame = Buffer.concat([msg("a"), msg("b"), record(new Uint8Array([0x00])), msg("d")]);
    const envs = protoCodec.decode(frame); // framing is fine: no throw yet
    const seen: string[] = [];
    assert.throws(() => {
      for (const e of envs) seen.push(e.kind.case === "message" ? e.kind.value.content : "?");
    }, DecodeError);
    assert.deepEqual(seen, ["a", "b"]);

    // Nothing after the bad one comes out of that iteration.
    const it = envs[Symbol.iterator]();
    it.next();
    it.next();
    assert.throws(() => it.next(), DecodeError);
    assert.equal(it.next().done, true);
  });

  test("a truncated envelope inside good framing is found only when reached", () => {
    // Field 3 (message) claims 5 bytes but the record holds 1 of them.
    const frame = Buffer.concat([msg("a"), record(new Uint8Array([0x1a, 0x05, 0x0a]))]);
    const it = protoCodec.decode(frame)[Symbol.iterator]();
    const first = it.next();
    assert.equal(!first.done && first.value.kind.case, "message");
    assert.throws(() => it.next(), DecodeError);
  });

  test("docs state the same cap, in the input rules and in errors.md", () => {
    const protocol = readFileSync(new URL("../../../docs/protocol.md", import.meta.url), "utf8");
    const rules = protocol.slice(protocol.indexOf("## Input rules"));
    assert.match(rules, new RegExp(`at most ${MAX_ENVELOPES_PER_FRAME} envelopes`));
    const errors = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
    assert.match(errors, new RegExp(`\\| 1008 .*more than ${MAX_ENVELOPES_PER_FRAME} envelopes`));
  });

  test("the envelopes of a frame can be iterated again", () => {
    const envs = protoCodec.decode(Buffer.concat([msg("a"), msg("b")]));
    assert.deepEqual(contents(envs), ["a", "b"]);
    assert.deepEqual(contents(envs), ["a", "b"]);
  });
});
