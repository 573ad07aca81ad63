// Router: sessions (takeover, resume positions, ack clamping), publish
// (offsets, duplicates, re-announcing a duplicate's original across nodes) and
// the request errors. In-memory store and broker, recording outlets.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { MemoryBroker, MemoryBus } from "../../src/adapters/broker/memory-broker.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { SqliteStore } from "../../src/adapters/store/sqlite-store.js";
import { Grants } from "../../src/core/access.js";
import type { Member } from "../../src/core/member.js";
import { Router, type RouterOptions } from "../../src/core/router.js";
import { FLUSH_SLICE } from "../../src/core/sessions.js";
import { silentLogger } from "../../src/observability/logging.js";
import { CloseCode, ErrorCode } from "../../src/protocol/errors.js";
import { MessageSchema } from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";
import type { Broker } from "../../src/ports/broker.js";
import type { SessionRoom } from "../../src/ports/store.js";
import { eventually } from "../helpers/eventually.js";
import { RecordingOutlet } from "../helpers/recording-outlet.js";
import { ClusterMemoryBroker, newMessage, range, routerOptions, settle } from "../helpers/core.js";

const R = "room-1";
const routers: Router[] = [];
after(async () => {
  for (const r of routers) await r.close();
});

async function newRouter(
  opts: Partial<RouterOptions> = {},
  store = new MemoryStore({ dedupWindowMs: 60_000 }),
  broker: Broker = new MemoryBroker(),
): Promise<{ router: Router; store: MemoryStore }> {
  await broker.open();
  const router = new Router(store, broker, { ...routerOptions, ...opts }, silentLogger());
  await router.start();
  routers.push(router);
  return { router, store };
}

interface Client {
  readonly member: Member;
  readonly outlet: RecordingOutlet;
  readonly token: string;
  /** Sends one JSON frame. */
  send(frame: object): void;
}

async function connect(router: Router, token?: string): Promise<Client> {
  const grant = await router.openSession(token);
  const outlet = new RecordingOutlet();
  const member = router.attach(grant, outlet);
  return {
    member,
    outlet,
    token: grant.token,
    send: (frame) => member.receive(new TextEncoder().encode(JSON.stringify(frame))),
  };
}

async function join(c: Client, room = R, since?: { offset: string; epoch: string }) {
  const before = c.outlet.kinds("roomJoined").length;
  c.send({ join_room: { room_id: room, ...(since && { since }) } });
  await eventually(() => c.outlet.kinds("roomJoined").length > before);
  return c.outlet.kinds("roomJoined").at(-1)!;
}

function offsets(outlet: RecordingOutlet, room = R): bigint[] {
  return outlet
    .kinds("message")
    .filter((m) => m.target === room)
    .map((m) => m.offset ?? -1n);
}

function errors(outlet: RecordingOutlet) {
  return outlet.kinds("error").map((e) => ({ code: e.code, ref: e.ref }));
}

async function publish(router: Router, content: string, messageId?: string, room = R) {
  const msg = create(MessageSchema, { target: room, content });
  if (messageId !== undefined) msg.messageId = messageId;
  return router.publish(room, msg, { senderId: "server" });
}

test("router - takeover: a second open with the token closes the first with 4001 and carries its positions", async () => {
  const { router } = await newRouter();
  const first = await connect(router);
  const joinedAt = await join(first);
  for (let i = 1; i <= 3; i++) await publish(router, `p${i}`);
  await eventually(() => offsets(first.outlet).length === 3);
  first.send({ ack: { room_id: R, offset: "2" } });
  await eventually(() => first.member.rooms.get(R)?.acked === 2n);

  const grant = await router.openSession(first.token);
  assert.equal(grant.resumed, true);
  assert.equal(grant.memberId, first.member.id);
  assert.deepEqual(grant.rooms, [{ room: R, offset: 2n, epoch: joinedAt.epoch }]);
  assert.equal(first.outlet.closedWith, CloseCode.SessionTakenOver);
  assert.equal(first.member.active, false);

  await publish(router, "p4");
  const outlet = new RecordingOutlet();
  router.attach(grant, outlet);
  await eventually(() => offsets(outlet).length === 2);
  const session = outlet.kinds("session")[0];
  assert.equal(session?.resumed, true);
  assert.deepEqual(session?.rooms, [R]);
  assert.deepEqual(
    outlet.kinds("roomJoined").map((j) => ({ offset: j.offset, recovered: j.recovered })),
    [{ offset: 4n, recovered: true }],
  );
  assert.deepEqual(offsets(outlet), [3n, 4n]);
  // The old connection got nothing after it was taken over.
  assert.deepEqual(offsets(first.outlet), [1n, 2n, 3n]);
  // Each token works once.
  assert.equal((await router.openSession(first.token)).resumed, false);
});

test("router - takeover without acks carries what was sent", async () => {
  const { router } = await newRouter();
  const first = await connect(router);
  await join(first);
  for (let i = 1; i <= 2; i++) await publish(router, `p${i}`);
  await eventually(() => offsets(first.outlet).length === 2);
  const grant = await router.openSession(first.token);
  assert.equal(grant.rooms[0]?.offset, 2n);
});

test("router - an ack beyond what was sent is clamped; the resume starts there without offset_out_of_range", async () => {
  const { router } = await newRouter();
  const c = await connect(router);
  await join(c);
  for (let i = 1; i <= 3; i++) await publish(router, `p${i}`);
  await eventually(() => offsets(c.outlet).length === 3);
  c.send({ ack: { room_id: R, offset: "100" } });
  await eventually(() => c.member.rooms.get(R)?.acked !== undefined);
  assert.equal(c.member.rooms.get(R)?.acked, 3n);
  // A lower ack never moves it back.
  c.send({ ack: { room_id: R, offset: "1" } });
  await settle();
  assert.equal(c.member.rooms.get(R)?.acked, 3n);

  // The connection closes; the session is saved with the clamped position.
  router.detach(c.member);
  await router.flushAll();
  for (let i = 4; i <= 5; i++) await publish(router, `p${i}`);
  const resumed = await connect(router, c.token);
  await eventually(() => offsets(resumed.outlet).length === 2);
  assert.deepEqual(errors(resumed.outlet), []);
  assert.deepEqual(
    resumed.outlet.kinds("roomJoined").map((j) => ({ offset: j.offset, recovered: j.recovered })),
    [{ offset: 5n, recovered: true }],
  );
  assert.deepEqual(offsets(resumed.outlet), [4n, 5n]);
});

test("router - publish returns the offset; a duplicate returns the original's and is delivered once", async () => {
  const { router } = await newRouter();
  const c = await connect(router);
  await join(c);
  assert.deepEqual(await publish(router, "a", "id-1"), {
    messageId: "id-1",
    offset: 1n,
    duplicate: false,
  });
  assert.deepEqual(await publish(router, "a again", "id-1"), {
    messageId: "id-1",
    offset: 1n,
    duplicate: true,
  });
  const generated = await publish(router, "b");
  assert.equal(generated.offset, 2n);
  assert.equal(generated.duplicate, false);
  assert.ok(generated.messageId.length > 0);
  await eventually(() => offsets(c.outlet).length === 2);
  await settle();
  assert.deepEqual(offsets(c.outlet), [1n, 2n]);
  assert.deepEqual(
    c.outlet.kinds("message").map((m) => m.content),
    ["a", "b"],
  );
});

test("router - a member's publish is acked (duplicate flagged) and reaches the sender with its sender_id", async () => {
  const { router } = await newRouter();
  const c = await connect(router);
  await join(c);
  c.send({ message: { target: R, content: "hi", message_id: "m-1" } });
  c.send({ message: { target: R, content: "hi", message_id: "m-1" } });
  await eventually(() => c.outlet.kinds("ack").length === 2);
  assert.deepEqual(
    c.outlet.kinds("ack").map((a) => ({ id: a.messageId, offset: a.offset, dup: a.duplicate })),
    [
      { id: "m-1", offset: 1n, dup: false },
      { id: "m-1", offset: 1n, dup: true },
    ],
  );
  await settle();
  const messages = c.outlet.kinds("message");
  assert.equal(messages.length, 1);
  assert.equal(messages[0]?.senderId, c.member.id);
  assert.equal(messages[0]?.offset, 1n);
});

test("router - a duplicate publish re-announces the stored original to other nodes", async () => {
  const bus = new MemoryBus();
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const a = await newRouter({}, store, new ClusterMemoryBroker({ bus }));
  const b = await newRouter({}, store, new ClusterMemoryBroker({ bus }));
  const onB = await connect(b.router);
  await join(onB);
  // A node stored the message and died before handing it to the broker.
  const lost = await store.append(R, newMessage("lost-1"));
  assert.equal(lost.offset, 1n);
  // The client retries through another node.
  const retry = await publish(a.router, "lost-1", "lost-1");
  assert.deepEqual(retry, { messageId: "lost-1", offset: 1n, duplicate: true });
  await eventually(() => offsets(onB.outlet).length === 1, { timeoutMs: 2000 });
  assert.deepEqual(offsets(onB.outlet), [1n]);
  assert.equal(onB.outlet.kinds("message")[0]?.messageId, "lost-1");
  // And the room flows on from there, once each.
  await publish(a.router, "next");
  await eventually(() => offsets(onB.outlet).length === 2, { timeoutMs: 2000 });
  await settle();
  assert.deepEqual(offsets(onB.outlet), range(1n, 2n));
});

test("router - joining twice is one membership, answered with room_joined again", async () => {
  const { router } = await newRouter();
  const c = await connect(router);
  await join(c);
  await publish(router, "a");
  await eventually(() => offsets(c.outlet).length === 1);
  const again = await join(c);
  assert.equal(again.offset, 1n);
  assert.equal(again.recovered, false);
  assert.equal(c.member.rooms.size, 1);
  await publish(router, "b");
  await eventually(() => offsets(c.outlet).length === 2);
  await settle();
  assert.deepEqual(offsets(c.outlet), [1n, 2n]);
  // One leave ends it.
  c.send({ leave_room: { room_id: R } });
  await eventually(() => c.outlet.kinds("roomLeft").length === 1);
  await publish(router, "c");
  c.send({ leave_room: { room_id: R } });
  await eventually(() => errors(c.outlet).length === 1);
  assert.deepEqual(errors(c.outlet), [{ code: ErrorCode.NotJoined, ref: R }]);
  assert.deepEqual(offsets(c.outlet), [1n, 2n]);
});

test("router - a join past MAX_ROOMS_PER_MEMBER gets too_many_rooms", async () => {
  const { router } = await newRouter({ maxRoomsPerMember: 2 });
  const c = await connect(router);
  await join(c, "a");
  await join(c, "b");
  c.send({ join_room: { room_id: "c" } });
  await eventually(() => errors(c.outlet).length === 1);
  assert.deepEqual(errors(c.outlet), [{ code: ErrorCode.TooManyRooms, ref: "c" }]);
  assert.equal(c.member.rooms.has("c"), false);
  // Rejoining one it is in is still fine, and leaving makes room.
  await join(c, "a");
  c.send({ leave_room: { room_id: "a" } });
  await join(c, "c");
  assert.deepEqual(c.member.rooms.ids().sort(), ["b", "c"]);
});

test("router - publish, ack and leave of a room not joined get not_joined", async () => {
  const { router, store } = await newRouter();
  const c = await connect(router);
  await join(c, "other");
  c.send({ message: { target: R, content: "x", message_id: "id-9" } });
  c.send({ message: { target: R, content: "x" } });
  c.send({ ack: { room_id: R, offset: "1" } });
  c.send({ leave_room: { room_id: R } });
  await eventually(() => errors(c.outlet).length === 4);
  assert.deepEqual(errors(c.outlet), [
    { code: ErrorCode.NotJoined, ref: "id-9" },
    { code: ErrorCode.NotJoined, ref: R },
    { code: ErrorCode.NotJoined, ref: R },
    { code: ErrorCode.NotJoined, ref: R },
  ]);
  assert.equal((await store.read(R, 0n, 10)).head, 0n);
  assert.equal(c.outlet.closed, false);
});

test("router - invalid room ids get invalid_room on join, leave, publish and ack", async () => {
  const { router } = await newRouter();
  const c = await connect(router);
  const bad = ["bad room!", "", "x".repeat(129), "a/b", "a*"];
  for (const room of bad) {
    c.send({ join_room: { room_id: room } });
    c.send({ leave_room: { room_id: room } });
    c.send({ message: { target: room, content: "x" } });
    c.send({ ack: { room_id: room, offset: "1" } });
  }
  const want = bad.length * 4;
  // Fewer than BAD_FRAME_LIMIT per window would be needed to stay open; the
  // first ten are answered, then the socket closes with 1008.
  await eventually(() => c.outlet.closed);
  assert.equal(c.outlet.closedWith, CloseCode.PolicyViolation);
  const codes = errors(c.outlet).map((e) => e.code);
  assert.equal(codes.length, Math.min(want, routerOptions.badFrameLimit));
  assert.ok(codes.every((code) => code === ErrorCode.InvalidRoom));
  assert.equal(c.member.rooms.size, 0);
});

test("router - each request kind with an invalid room id gets invalid_room", async () => {
  const { router } = await newRouter({ badFrameLimit: 100 });
  const c = await connect(router);
  c.send({ join_room: { room_id: "bad room" } });
  c.send({ leave_room: { room_id: "bad room" } });
  c.send({ message: { target: "bad room", content: "x" } });
  c.send({ ack: { room_id: "bad room", offset: "1" } });
  await eventually(() => errors(c.outlet).length === 4);
  assert.deepEqual(
    errors(c.outlet).map((e) => e.code),
    Array.from({ length: 4 }, () => ErrorCode.InvalidRoom),
  );
  assert.equal(c.outlet.closed, false);
});

test("router - server-only kinds and unknown kinds are refused with their codes", async () => {
  const { router } = await newRouter();
  const c = await connect(router);
  c.send({ room_left: { room_id: R } });
  c.send({});
  c.send({ refresh: { token: "t" } });
  await eventually(() => errors(c.outlet).length === 3);
  assert.deepEqual(
    errors(c.outlet).map((e) => e.code),
    [ErrorCode.BadRequest, ErrorCode.UnknownType, ErrorCode.BadRequest],
  );
});

test("router - a resume with since beyond the head gets offset_out_of_range and no room_joined", async () => {
  const { router } = await newRouter();
  const c = await connect(router);
  const first = await join(c, "seed");
  await publish(router, "a");
  c.send({ join_room: { room_id: R, since: { offset: "5", epoch: "" } } });
  await eventually(() => errors(c.outlet).length === 1);
  assert.deepEqual(errors(c.outlet), [{ code: ErrorCode.OffsetOutOfRange, ref: R }]);
  assert.equal(c.member.rooms.has(R), false);
  assert.deepEqual(
    c.outlet.kinds("roomJoined").map((j) => j.roomId),
    [first.roomId],
  );
  // The room can still be joined properly.
  const ok = await join(c, R, { offset: "0", epoch: "" });
  assert.equal(ok.recovered, true);
  await eventually(() => offsets(c.outlet).length === 1);
});

for (const [name, makeStore] of [
  ["memory", () => new MemoryStore({ dedupWindowMs: 60_000 })],
  ["sqlite", () => new SqliteStore({ path: ":memory:", dedupWindowMs: 60_000 })],
] as const) {
  test(`router - ${name}: another user's resume token gives a fresh session; the owner's still resumes`, async () => {
    const store = makeStore();
    await store.open();
    const broker = new MemoryBroker();
    await broker.open();
    const router = new Router(store, broker, routerOptions, silentLogger());
    await router.start();
    routers.push(router);
    const as = (userId: string) => ({ userId, expiresAt: Date.now() + 60_000, grants: Grants.all });
    const owner = await router.openSession(undefined, as("alice"));
    const other = await router.openSession(owner.token, as("mallory"));
    assert.deepEqual([other.resumed, other.userId], [false, "mallory"]);
    assert.notEqual(other.memberId, owner.memberId);
    assert.notEqual(other.token, owner.token);
    const again = await router.openSession(owner.token, as("alice"));
    assert.deepEqual([again.resumed, again.memberId], [true, owner.memberId]);
    // The stranger's own session is its own, with its own token.
    const mine = await router.openSession(other.token, as("mallory"));
    assert.deepEqual([mine.resumed, mine.memberId], [true, other.memberId]);
  });
}

test("router - a flush of many dirty sessions starts at most FLUSH_SLICE saves per event-loop turn, and saves every one", async () => {
  // Each save is stamped with the loop turn it was made in: a ticker counts
  // turns with one immediate per turn.
  let turn = 0;
  let ticking = true;
  const tick = () => {
    turn++;
    if (ticking) setImmediate(tick);
  };
  const saves: { member: string; rooms: readonly SessionRoom[]; turn: number }[] = [];
  let counting = false;
  class CountingStore extends MemoryStore {
    override saveSession(memberId: string, rooms: readonly SessionRoom[], expiresAt: number) {
      if (counting) saves.push({ member: memberId, rooms, turn });
      return super.saveSession(memberId, rooms, expiresAt);
    }
  }
  const members = 3 * FLUSH_SLICE + 10;
  const { router } = await newRouter(
    { ackFlushIntervalMs: 200 },
    new CountingStore({ dedupWindowMs: 60_000 }),
  );
  setImmediate(tick);
  try {
    const clients = await Promise.all(Array.from({ length: members }, () => connect(router)));
    assert.equal(clients.length, members);
    // A join saves its session at once (not through the flush): not counted.
    for (const c of clients) c.send({ join_room: { room_id: R } });
    await eventually(() => clients.every((c) => c.outlet.kinds("roomJoined").length === 1));
    await publish(router, "p1");
    await eventually(() => clients.every((c) => offsets(c.outlet).length === 1));
    counting = true;
    for (const c of clients) c.send({ ack: { room_id: R, offset: "1" } });
    // Every member's last save holds its ack.
    await eventually(() => {
      const last = new Map(saves.map((s) => [s.member, s.rooms]));
      return clients.every((c) => last.get(c.member.id)?.[0]?.offset === 1n);
    });
  } finally {
    ticking = false;
  }
  const perTurn = new Map<number, number>();
  for (const s of saves) perTurn.set(s.turn, (perTurn.get(s.turn) ?? 0) + 1);
  const largest = Math.max(...perTurn.values());
  assert.ok(largest <= FLUSH_SLICE, `${largest} saves in one turn`);
  assert.ok(perTurn.size >= Math.ceil(members / FLUSH_SLICE), `${perTurn.size} turns`);
});
