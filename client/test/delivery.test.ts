// The SDK against real server processes: ordered exactly-once delivery, acks,
// effectively-once publishing across a dropped socket, resume across a server
// restart, and the `since` fallback when the session is gone.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { freePort, makeTempDir, removeTempDir } from "../../tools/process-harness.js";
import { TestClient } from "../../test/helpers/client.js";
import { eventually } from "../../test/helpers/eventually.js";
import { startServer, type ServerProcess } from "../../test/helpers/server.js";
import { Roomcast, type GapEvent, type Room, type RoomMessage } from "../src/index.js";
import { sentOf, tap } from "./tapped-socket.js";

const fast = { initialDelayMs: 50, maxDelayMs: 300 };
const clients: Roomcast[] = [];
let server: ServerProcess;
let roomSeq = 0;

function client(url: string, options: ConstructorParameters<typeof Roomcast>[1] = {}): Roomcast {
  const c = new Roomcast(url, { WebSocket, reconnect: fast, ...options });
  clients.push(c);
  return c;
}

/** Records a room's deliveries and gaps. */
function record(room: Room): { messages: RoomMessage[]; gaps: GapEvent[] } {
  const out = { messages: [] as RoomMessage[], gaps: [] as GapEvent[] };
  room.on("message", (m) => out.messages.push(m));
  room.on("gap", (g) => out.gaps.push(g));
  return out;
}

function assertExactlyOnceInOrder(messages: RoomMessage[], contents: string[]): void {
  assert.deepEqual(
    messages.map((m) => m.content),
    contents,
  );
  for (let i = 1; i < messages.length; i++) {
    assert.equal(messages[i]!.offset, messages[i - 1]!.offset + 1n, "contiguous offsets");
  }
}

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const c of clients) c.close();
  await server.stop();
});

for (const protocol of ["json", "protobuf"] as const) {
  test(`client delivery - ${protocol}: each message once, in offset order; acks cumulative and batched`, async () => {
    const id = `r${++roomSeq}`;
    const t = tap();
    const sub = client(server.wsUrl, { WebSocket: t.WebSocket, protocol, ackIntervalMs: 100 });
    const pub = client(server.wsUrl, { protocol });
    const got = record(sub.room(id));
    const room = pub.room(id);
    await eventually(() => sub.room(id).joined && room.joined);

    const contents = Array.from({ length: 50 }, (_, i) => `m${i + 1}`);
    const results = await Promise.all(contents.map((c) => room.publish(c)));
    assert.deepEqual(
      results.map((r) => r.offset),
      contents.map((_, i) => BigInt(i + 1)),
    );
    assert.ok(results.every((r) => !r.duplicate));
    await eventually(() => got.messages.length === 50);
    assertExactlyOnceInOrder(got.messages, contents);
    assert.ok(got.messages.every((m) => !m.own && m.senderId === pub.session?.memberId));

    if (protocol === "json") {
      await eventually(() => sentOf(t, "ack").at(-1)?.["offset"] === "50");
      const acks = sentOf(t, "ack").length;
      assert.ok(acks <= 10, `${acks} ack frames for 50 messages`);
    }
  });
}

test("client delivery - the socket dies before the ack: the retry is stored once", async () => {
  const id = `r${++roomSeq}`;
  const t = tap();
  const pub = client(server.wsUrl, { WebSocket: t.WebSocket });
  const watcher = client(server.wsUrl);
  const seen = record(watcher.room(id));
  const room = pub.room(id);
  await eventually(() => room.joined && watcher.room(id).joined);

  // Drop the connection the moment the server's ack arrives, before the
  // client sees it: the message is stored, the client does not know.
  let killed = false;
  t.inbound = (socket, data) => {
    if (killed || typeof data !== "string" || !("ack" in (JSON.parse(data) as object))) return true;
    killed = true;
    socket.terminate();
    return false;
  };
  const result = await room.publish("exactly once");
  assert.ok(killed, "the first ack was dropped");
  assert.ok(t.sockets.length >= 2, "the client reconnected");
  assert.equal(result.duplicate, true, "the retry was recognised as the stored message");
  const ids = sentOf(t, "message").map((m) => m["message_id"]);
  assert.equal(ids.length, 2);
  assert.equal(ids[0], ids[1], "the retry used the same message_id");

  // The room's history holds it once.
  const [raw] = await TestClient.open(server.wsUrl);
  raw.send({ join_room: { room_id: id, since: { offset: "0", epoch: room.epoch } } });
  await raw.next("room_joined");
  const stored = await raw.next("message");
  assert.equal(stored["offset"], result.offset.toString());
  assert.equal(stored["content"], "exactly once");
  raw.close();
  await eventually(() => seen.messages.length === 1);
  assert.deepEqual(
    seen.messages.map((m) => m.content),
    ["exactly once"],
  );
});

test("client delivery - the session expired: rejoin with since = last delivered offset, no gap", async () => {
  const s = await startServer({ SESSION_TTL: "1s" });
  try {
    const id = "since-room";
    const t = tap();
    const sub = client(s.wsUrl, { WebSocket: t.WebSocket });
    const pub = client(s.wsUrl);
    const got = record(sub.room(id));
    const room = pub.room(id);
    await eventually(() => sub.room(id).joined && room.joined);
    for (const c of ["a", "b", "c"]) await room.publish(c);
    await eventually(() => got.messages.length === 3);

    t.blocked = true;
    t.sockets.at(-1)!.terminate();
    for (const c of ["d", "e", "f"]) await room.publish(c);
    // SESSION_TTL is time itself: the resume token must be past it.
    await new Promise((r) => setTimeout(r, 1_600));
    t.blocked = false;

    await eventually(() => got.messages.length === 6);
    assertExactlyOnceInOrder(got.messages, ["a", "b", "c", "d", "e", "f"]);
    assert.equal(sub.session?.resumed, false, "the session was gone");
    const lastJoin = sentOf(t, "join_room").at(-1)!;
    assert.deepEqual(lastJoin["since"], { offset: "3", epoch: sub.room(id).epoch });
    assert.deepEqual(got.gaps, []);
  } finally {
    await s.stop();
  }
});

test("client delivery - server restart with SQLite: resume, every message once, no gap", async () => {
  const dir = await makeTempDir("roomcast-client-sqlite");
  const env = { STORE: "sqlite", SQLITE_PATH: join(dir, "db"), PORT: String(await freePort()) };
  let s = await startServer(env);
  try {
    const id = "restart-room";
    const sub = client(s.wsUrl);
    const pub = client(s.wsUrl);
    const got = record(sub.room(id));
    const room = pub.room(id);
    await eventually(() => sub.room(id).joined && room.joined);
    for (const c of ["1", "2", "3"]) await room.publish(c);
    await eventually(() => got.messages.length === 3);

    await s.stop();
    // Published while the server is down: sent once the publisher has rejoined.
    const later = ["4", "5", "6"].map((c) => room.publish(c));
    s = await startServer(env);
    const results = await Promise.all(later);
    assert.deepEqual(
      results.map((r) => r.offset),
      [4n, 5n, 6n],
    );
    await eventually(() => got.messages.length === 6);
    assertExactlyOnceInOrder(got.messages, ["1", "2", "3", "4", "5", "6"]);
    assert.equal(sub.session?.resumed, true);
    assert.deepEqual(got.gaps, []);
  } finally {
    await s.stop();
    await removeTempDir(dir);
  }
});
