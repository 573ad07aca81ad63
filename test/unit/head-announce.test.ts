// Head announcements (broker-fanout.ts, HEAD_ANNOUNCE_AFTER): a message the
// broker lost on its way to a node, in a room that then goes quiet, still
// reaches that node's members within the bound; a busy room costs no
// announcements. Two routers on one in-memory bus and store; the receiving
// node's broker loses the message (fault injected at the port).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { MemoryBus } from "../../src/adapters/broker/memory-broker.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { Router, type RouterOptions } from "../../src/core/router.js";
import { silentLogger } from "../../src/observability/logging.js";
import { MessageSchema } from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";
import type { Broker } from "../../src/ports/broker.js";
import { eventually } from "../helpers/eventually.js";
import { RecordingOutlet } from "../helpers/recording-outlet.js";
import { ClusterMemoryBroker, LossyBroker, range, routerOptions } from "../helpers/core.js";

const R = "room-1";
const ANNOUNCE_MS = 200;
const routers: Router[] = [];
after(async () => {
  for (const r of routers) await r.close();
});

async function node(store: MemoryStore, broker: Broker, opts: Partial<RouterOptions> = {}) {
  await broker.open();
  const router = new Router(
    store,
    broker,
    { ...routerOptions, headAnnounceAfterMs: ANNOUNCE_MS, ...opts },
    silentLogger(),
  );
  await router.start();
  routers.push(router);
  return router;
}

async function member(router: Router): Promise<RecordingOutlet> {
  const outlet = new RecordingOutlet();
  const member = router.attach(await router.openSession(undefined), outlet);
  member.receive(new TextEncoder().encode(JSON.stringify({ join_room: { room_id: R } })));
  await eventually(() => outlet.kinds("roomJoined").length === 1);
  return outlet;
}

function offsets(outlet: RecordingOutlet): bigint[] {
  return outlet.kinds("message").map((m) => m.offset ?? -1n);
}

async function publish(router: Router, content: string): Promise<void> {
  await router.publish(R, create(MessageSchema, { target: R, content }), { senderId: "server" });
}

async function cluster(opts: Partial<RouterOptions> = {}) {
  const bus = new MemoryBus();
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const a = await node(store, new ClusterMemoryBroker({ bus }), opts);
  const lossy = new LossyBroker({ bus });
  const b = await node(store, lossy, opts);
  return { a, b, lossy, onB: await member(b) };
}

test("head announce - a message lost on its way to a node reaches it within HEAD_ANNOUNCE_AFTER though the room goes quiet", async () => {
  const { a, lossy, onB } = await cluster();
  await publish(a, "one");
  await eventually(() => offsets(onB).length === 1);
  lossy.loseIncoming(1);
  const sentAt = Date.now();
  await publish(a, "two"); // lost on its way to B; nothing follows it
  await eventually(() => offsets(onB).length === 2, { timeoutMs: 5000 });
  const late = Date.now() - sentAt;
  assert.equal(lossy.lost, 1);
  assert.deepEqual(offsets(onB), range(1n, 2n));
  assert.ok(lossy.announcements >= 1, "it came through a head announcement");
  // The bound plus a store read and scheduling slack on a shared machine.
  assert.ok(late < ANNOUNCE_MS + 800, `delivered ${late} ms after publish`);
});

test("head announce - several lost in a row are all read back, in order, once each", async () => {
  const { a, lossy, onB } = await cluster();
  await publish(a, "one");
  await eventually(() => offsets(onB).length === 1);
  lossy.loseIncoming(3);
  for (const c of ["two", "three", "four"]) await publish(a, c);
  await eventually(() => offsets(onB).length === 4, { timeoutMs: 5000 });
  assert.equal(lossy.lost, 3);
  await publish(a, "five");
  await eventually(() => offsets(onB).length === 5);
  assert.deepEqual(offsets(onB), range(1n, 5n));
});

test("head announce - a busy room is not announced; it is announced once it goes quiet", async () => {
  const { a, lossy, onB } = await cluster();
  // Publishes closer together than the announcement tick keep the room busy.
  const busyUntil = Date.now() + ANNOUNCE_MS * 4;
  let n = 0;
  while (Date.now() < busyUntil) {
    await publish(a, `m${++n}`);
    await new Promise((resolve) => setTimeout(resolve, ANNOUNCE_MS / 10));
  }
  await eventually(() => offsets(onB).length === n);
  assert.equal(lossy.announcements, 0);
  await eventually(() => lossy.announcements === 1, { timeoutMs: 5000 });
  assert.deepEqual(offsets(onB), range(1n, BigInt(n)));
});

test("head announce - when the announcement is lost too, the publisher's broker reconnect announces again", async () => {
  const bus = new MemoryBus();
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const publisherBroker = new LossyBroker({ bus });
  const a = await node(store, publisherBroker);
  const lossy = new LossyBroker({ bus });
  const b = await node(store, lossy);
  const onB = await member(b);
  await publish(a, "one");
  await eventually(() => offsets(onB).length === 1);
  // The connection that carried both died with them in flight.
  lossy.loseIncoming(1);
  lossy.loseAnnouncements(1);
  await publish(a, "two");
  await eventually(() => lossy.lost === 2, { timeoutMs: 5000 });
  assert.deepEqual(offsets(onB), [1n]);
  publisherBroker.reconnect();
  await eventually(() => offsets(onB).length === 2, { timeoutMs: 5000 });
  assert.deepEqual(offsets(onB), range(1n, 2n));
});

test("head announce - HEAD_ANNOUNCE_AFTER 0 sends none (the loss waits for the room's next message)", async () => {
  const { a, lossy, onB } = await cluster({ headAnnounceAfterMs: 0 });
  await publish(a, "one");
  await eventually(() => offsets(onB).length === 1);
  lossy.loseIncoming(1);
  await publish(a, "two");
  await publish(a, "three");
  await eventually(() => offsets(onB).length === 3);
  assert.deepEqual(offsets(onB), range(1n, 3n));
  assert.equal(lossy.announcements, 0);
});
