import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import {
  DecodeError,
  Subprotocol,
  delimit,
  encodeJsonText,
  envelope,
  jsonCodec,
  negotiate,
  protoCodec,
} from "../../src/protocol/codec.js";
import {
  AckSchema,
  EnvelopeSchema,
  MessageSchema,
} from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";

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
});

describe("codec - json fast path", () => {
  // encodeJsonText builds message and ack by hand; it must equal protojson.
  const reference = (env: ReturnType<typeof envelope>) =>
    JSON.stringify(
      toJson(EnvelopeSchema, env, { useProtoFieldName: true, alwaysEmitImplicit: true }),
    );
  const optional = ["messageId", "sentAt", "senderId", "traceparent", "tracestate"] as const;

  test("message: every combination of optional fields", () => {
    for (let mask = 0; mask < 1 << (optional.length + 1); mask++) {
      const m = create(MessageSchema, { target: "r", content: mask % 3 === 0 ? "" : 'say "hi"\n' });
      optional.forEach((field, i) => {
        if (mask & (1 << i)) m[field] = `${field}-\u2028-${mask}`;
      });
      if (mask & (1 << optional.length)) m.offset = 18446744073709551615n;
      const env = envelope({ case: "message", value: m });
      assert.equal(encodeJsonText(env), reference(env), `mask ${mask}`);
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
    const out = protoCodec.decode(frame);
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
