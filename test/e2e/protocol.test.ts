// The v1 protocol end to end on one real server process with real ws clients.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { envelope, protoCodec } from "../../src/protocol/codec.js";
import { JoinRoomSchema, MessageSchema } from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";
import { TestClient } from "../helpers/client.js";
import { RATE_LIMITS_OFF, startServer, type ServerProcess } from "../helpers/server.js";

let server: ServerProcess;
const open: TestClient[] = [];

async function client(
  opts: Parameters<typeof TestClient.open>[1] = {},
): Promise<[TestClient, Record<string, unknown>]> {
  const pair = await TestClient.open(server.wsUrl, opts);
  open.push(pair[0]);
  return pair;
}

async function joined(
  room: string,
  opts: Parameters<typeof TestClient.open>[1] = {},
): Promise<TestClient> {
  const [c] = await client(opts);
  c.send({ join_room: { room_id: room } });
  const j = await c.next("room_joined");
  assert.equal(j["room_id"], room);
  return c;
}

/** The node still serves: a fresh client can join, publish and receive. */
async function assertServing(): Promise<void> {
  const c = await joined(`alive-${Math.random().toString(36).slice(2)}`);
  const room = c.all("room_joined")[0]!["room_id"] as string;
  c.send({ message: { target: room, content: "ping" } });
  const m = await c.next("message");
  assert.equal(m["content"], "ping");
}

before(async () => {
  server = await startServer({
    MAX_MESSAGE_BYTES: "4096",
    MAX_BUFFERED_BYTES: "65536",
    // Floods a paused reader with thousands of publishes from one connection.
    ...RATE_LIMITS_OFF,
  });
});
after(async () => {
  for (const c of open) c.ws.terminate();
  await server.stop();
});

describe("protocol - connect", () => {
  test("the first frame is session, fresh and with a token", async () => {
    const [c] = await client();
    const first = c.frames[0]!;
    assert.deepEqual(Object.keys(first), ["session"]);
    const s = first["session"]!;
    assert.equal(s["resumed"], false);
    assert.equal(s["protocol"], "roomcast.v1");
    assert.match(String(s["token"]), /^[A-Za-z0-9_-]{43}$/);
    assert.match(String(s["member_id"]), /^[0-9a-f-]{36}$/);
    assert.deepEqual(s["rooms"], []);
  });

  test("JSON is chosen when no subprotocol is offered, and named when offered", async () => {
    const [a] = await client();
    assert.equal(a.ws.protocol, "");
    const [b] = await client({ protocols: ["roomcast.v1.json"] });
    assert.equal(b.ws.protocol, "roomcast.v1.json");
  });

  test("only unsupported subprotocols get HTTP 400", async () => {
    await assert.rejects(
      TestClient.connect(server.wsUrl, { protocols: ["mqtt", "v2.chat"] }),
      /HTTP 400/,
    );
    await assertServing();
  });

  test("other paths get 404 and no upgrade", async () => {
    await assert.rejects(TestClient.connect(`ws://127.0.0.1:${server.port}/other`), /HTTP 404/);
    const res = await fetch(`${server.httpUrl}/nope`);
    assert.equal(res.status, 404);
  });

  test("healthz and readyz answer", async () => {
    assert.equal((await fetch(`${server.httpUrl}/healthz`)).status, 200);
    const ready = await fetch(`${server.httpUrl}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as Record<string, unknown>)["status"], "ready");
  });
});

describe("protocol - rooms and messages", () => {
  test("join and leave are answered, and joining twice is one membership", async () => {
    const [c] = await client();
    c.send({ join_room: { room_id: "jl" } });
    const j = await c.next("room_joined");
    assert.deepEqual(Object.keys(j).sort(), ["epoch", "offset", "recovered", "room_id"]);
    c.send({ joinRoom: { roomId: "jl" } });
    await c.next("room_joined");
    c.send({ leave_room: { room_id: "jl" } });
    assert.deepEqual(await c.next("room_left"), { room_id: "jl" });
    c.send({ leave_room: { room_id: "jl" } });
    const e = await c.next("error");
    assert.equal(e["code"], "not_joined");
  });

  test("a message reaches three members, sender included, with contiguous offsets and acks", async () => {
    const room = "three";
    const [a, b, c] = [await joined(room), await joined(room), await joined(room)];
    const n = 20;
    for (let i = 0; i < n; i++) {
      a.send({
        message: {
          target: room,
          content: `m${i}`,
          traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          tracestate: "k=v",
        },
      });
    }
    const acks = [];
    for (let i = 0; i < n; i++) acks.push(await a.next("ack"));
    assert.deepEqual(
      acks.map((x) => x["offset"]),
      Array.from({ length: n }, (_, i) => String(i + 1)),
    );
    assert.ok(acks.every((x) => x["duplicate"] === false && x["room_id"] === room));
    const senderId = a.all("session")[0]!["member_id"];
    for (const member of [a, b, c]) {
      const got = [];
      for (let i = 0; i < n; i++) got.push(await member.next("message"));
      assert.deepEqual(
        got.map((m) => m["offset"]),
        acks.map((x) => x["offset"]),
      );
      assert.deepEqual(
        got.map((m) => m["content"]),
        Array.from({ length: n }, (_, i) => `m${i}`),
      );
      for (const [i, m] of got.entries()) {
        assert.equal(m["sender_id"], senderId);
        assert.equal(m["message_id"], acks[i]!["message_id"]);
        assert.ok(!Number.isNaN(Date.parse(String(m["sent_at"]))));
        assert.equal(m["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        assert.equal(m["tracestate"], "k=v");
      }
    }
  });

  test("a repeated message_id is stored once and acked with the original offset", async () => {
    const room = "dedup";
    const a = await joined(room);
    const b = await joined(room);
    a.send({
      message: {
        target: room,
        content: "once",
        message_id: "id-1",
        sent_at: "2026-11-28T00:00:00Z",
      },
    });
    const first = await a.next("ack");
    a.send({ message: { target: room, content: "once", message_id: "id-1" } });
    const second = await a.next("ack");
    assert.equal(first["duplicate"], false);
    assert.equal(second["duplicate"], true);
    assert.equal(second["offset"], first["offset"]);
    a.send({ message: { target: room, content: "after", message_id: "id-2" } });
    await a.next("ack");
    const m1 = await b.next("message");
    const m2 = await b.next("message");
    assert.deepEqual([m1["message_id"], m2["message_id"]], ["id-1", "id-2"]);
    assert.equal(m1["sent_at"], "2026-11-28T00:00:00Z");
  });

  test("the binary subprotocol: several envelopes per frame, binary replies", async () => {
    const [c, session] = await client({ protocols: ["roomcast.v1.proto"] });
    assert.equal(c.ws.protocol, "roomcast.v1.proto");
    assert.equal(session["resumed"], false);
    const frame = Buffer.concat([
      protoCodec.encode(
        envelope({ case: "joinRoom", value: create(JoinRoomSchema, { roomId: "bin" }) }),
      ),
      protoCodec.encode(
        envelope({
          case: "message",
          value: create(MessageSchema, { target: "bin", content: "b1" }),
        }),
      ),
      protoCodec.encode(
        envelope({
          case: "message",
          value: create(MessageSchema, { target: "bin", content: "b2" }),
        }),
      ),
    ]);
    c.ws.send(frame, { binary: true });
    const j = await c.next("room_joined");
    assert.equal(j["room_id"], "bin");
    const json = await joined("bin");
    c.ws.send(
      protoCodec.encode(
        envelope({
          case: "message",
          value: create(MessageSchema, { target: "bin", content: "b3" }),
        }),
      ),
      { binary: true },
    );
    assert.equal((await c.next("message"))["content"], "b1");
    assert.equal((await c.next("message"))["content"], "b2");
    assert.equal((await c.next("message"))["content"], "b3");
    assert.equal((await json.next("message"))["content"], "b3");
    assert.deepEqual((await c.next("ack"))["offset"], "1");
  });
});

describe("protocol - bad input", () => {
  for (const [name, frame, code] of [
    ["malformed JSON", "{not json", "bad_request"],
    ["a JSON array", "[1,2]", "bad_request"],
    ["JSON null", "null", "bad_request"],
    ["a wrong field type", '{"join_room":{"room_id":42}}', "bad_request"],
    ["an unknown kind", '{"teleport":{"to":"mars"}}', "unknown_type"],
    ["an empty envelope", "{}", "unknown_type"],
    ["a server-only kind", '{"session":{"token":"x"}}', "bad_request"],
  ] as const) {
    test(`${name} gets ${code} and the socket stays open`, async () => {
      const [c] = await client();
      c.ws.send(frame);
      const e = await c.next("error");
      assert.equal(e["code"], code);
      c.send({ join_room: { room_id: "still-open" } });
      await c.next("room_joined");
    });
  }

  test("each invalid room id shape gets invalid_room", async () => {
    const [c] = await client();
    const ids = ["", "x".repeat(129), "a b", "a/b", "é", "a*", "a>b", "a\nb"];
    for (const id of ids.slice(0, 4)) c.send({ join_room: { room_id: id } });
    for (const id of ids.slice(4)) c.send({ message: { target: id, content: "x" } });
    for (let i = 0; i < ids.length; i++)
      assert.equal((await c.next("error"))["code"], "invalid_room");
    assert.equal(c.all("room_joined").length, 0);
  });

  test("a NUL character in a text field gets bad_request and nothing is stored", async () => {
    const room = "nul";
    const c = await joined(room);
    c.send({ message: { target: room, content: "a\u0000b", message_id: "nul-1" } });
    const e = await c.next("error");
    assert.deepEqual([e["code"], e["ref"]], ["bad_request", "nul-1"]);
    c.send({ message: { target: room, content: "fine" } });
    assert.equal((await c.next("ack"))["offset"], "1");
  });

  test("publish without joining gets not_joined with the message_id as ref", async () => {
    const [c] = await client();
    c.send({ message: { target: "elsewhere", content: "x", message_id: "m-9" } });
    const e = await c.next("error");
    assert.equal(e["code"], "not_joined");
    assert.equal(e["ref"], "m-9");
  });

  test("the 129th room gets too_many_rooms", async () => {
    const [c] = await client();
    for (let i = 0; i < 129; i++) c.send({ join_room: { room_id: `many-${i}` } });
    for (let i = 0; i < 128; i++) await c.next("room_joined");
    const e = await c.next("error");
    assert.equal(e["code"], "too_many_rooms");
    assert.equal(e["ref"], "many-128");
  });

  test("ten bad frames close the socket with 1008", async () => {
    const [c] = await client();
    for (let i = 0; i < 10; i++) c.ws.send("nope");
    const closed = await c.closed;
    assert.equal(closed.code, 1008);
    await assertServing();
  });

  test("an oversized frame closes with 1009", async () => {
    const [c] = await client();
    c.send({ message: { target: "big", content: "x".repeat(5000) } });
    assert.equal((await c.closed).code, 1009);
    await assertServing();
  });

  test("a binary frame on the JSON subprotocol closes with 1003", async () => {
    const [c] = await client();
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await c.closed).code, 1003);
    await assertServing();
  });

  test("invalid UTF-8 in a text frame closes with 1007", async () => {
    const [c] = await client();
    c.ws.send(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), { binary: false });
    assert.equal((await c.closed).code, 1007);
    await assertServing();
  });

  test("a paused reader flooded with data is closed as a slow consumer; the room keeps flowing", async () => {
    const room = "flood";
    const slow = await joined(room);
    const steady = await joined(room);
    const publisher = await joined(room);
    slow.ws.pause();
    const n = 3000;
    const batch = 10;
    const body = "y".repeat(3000);
    // Batches small enough for a reading client (30 KB < MAX_BUFFERED_BYTES);
    // only the paused one falls behind.
    for (let i = 0; i < n; i += batch) {
      for (let j = 0; j < batch; j++) publisher.send({ message: { target: room, content: body } });
      for (let j = 0; j < batch; j++) {
        const m = await steady.next("message", 10_000);
        assert.equal(m["offset"], String(i + j + 1));
      }
    }
    slow.ws.resume();
    const closed = await slow.closed;
    assert.equal(closed.code, 4000);
    assert.ok(slow.all("message").length < n, "the slow reader cannot have received everything");
    await assertServing();
  });
});

describe("protocol - handshake policy", () => {
  test("ALLOWED_ORIGINS refuses other origins with 403 and admits listed ones", async () => {
    const s = await startServer({ ALLOWED_ORIGINS: "https://app.example" });
    try {
      await assert.rejects(
        TestClient.connect(s.wsUrl, { headers: { Origin: "https://evil.example" } }),
        /HTTP 403/,
      );
      const ok = await TestClient.connect(s.wsUrl, { headers: { Origin: "https://app.example" } });
      await ok.next("session");
      ok.close();
    } finally {
      await s.stop();
    }
  });

  test("a bad configuration value stops the process naming the variable", async () => {
    await assert.rejects(startServer({ MAX_MESSAGE_BYTES: "lots" }), /MAX_MESSAGE_BYTES/);
  });

  test("a client that sends nothing is closed after the first-frame timeout", async () => {
    const s = await startServer({ FIRST_FRAME_TIMEOUT: "300ms" });
    try {
      const c = await TestClient.connect(s.wsUrl);
      assert.equal((await c.closed).code, 4003);
    } finally {
      await s.stop();
    }
  });

  test("a client that stops answering pings is closed with 4002", async () => {
    const s = await startServer({
      PING_INTERVAL: "100ms",
      PONG_TIMEOUT: "300ms",
      FIRST_FRAME_TIMEOUT: "0",
    });
    try {
      const c = await TestClient.connect(s.wsUrl, { autoPong: false });
      assert.equal((await c.closed).code, 4002);
    } finally {
      await s.stop();
    }
  });
});
