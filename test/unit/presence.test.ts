// Presence through the router: presence_state after room_joined, diffs on
// joins, leaves, closes and resumes, nothing for members who did not ask,
// across nodes on one in-memory bus (a silent node expires), bursts coalesced;
// and the server API's presence query and disconnect. In-memory store and
// broker, recording outlets.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { MemoryBroker, MemoryBus } from "../../src/adapters/broker/memory-broker.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import type { Member } from "../../src/core/member.js";
import { Router } from "../../src/core/router.js";
import type { Identity } from "../../src/core/access.js";
import { silentLogger } from "../../src/observability/logging.js";
import { CloseCode } from "../../src/protocol/errors.js";
import type { Broker } from "../../src/ports/broker.js";
import { eventually } from "../helpers/eventually.js";
import { RecordingOutlet } from "../helpers/recording-outlet.js";
import { ClusterMemoryBroker, identity, routerOptions, settle } from "../helpers/core.js";

const R = "room-p";
const presence = { heartbeatMs: 100, coalesceMs: 20, syncWaitMs: 30 };
const routers: Router[] = [];
after(async () => {
  for (const r of routers) await r.close().catch(() => undefined);
});

async function newRouter(
  store: MemoryStore,
  broker: Broker = new MemoryBroker(),
  timing = presence,
): Promise<Router> {
  await broker.open();
  const router = new Router(store, broker, { ...routerOptions, presence: timing }, silentLogger());
  await router.start();
  routers.push(router);
  return router;
}

const brokers = new Map<Router, Broker>();

async function cluster(n: number, timing = presence): Promise<Router[]> {
  const bus = new MemoryBus();
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const out = [];
  for (let i = 0; i < n; i++) {
    const broker = new ClusterMemoryBroker({ bus });
    const router = await newRouter(store, broker, timing);
    brokers.set(router, broker);
    out.push(router);
  }
  return out;
}

interface Client {
  readonly member: Member;
  readonly outlet: RecordingOutlet;
  readonly token: string;
  send(frame: object): void;
}

async function connect(router: Router, token?: string, who?: Identity): Promise<Client> {
  const grant = await router.openSession(token, who);
  const outlet = new RecordingOutlet();
  const member = router.attach(grant, outlet);
  return {
    member,
    outlet,
    token: grant.token,
    send: (frame) => member.receive(new TextEncoder().encode(JSON.stringify(frame))),
  };
}

async function join(c: Client, watch: boolean, room = R): Promise<void> {
  const before = c.outlet.kinds("roomJoined").length;
  c.send({ join_room: { room_id: room, presence: watch } });
  await eventually(() => c.outlet.kinds("roomJoined").length > before);
}

/** Who the client believes is present: its presence_state with every diff applied. */
function view(c: Client, room = R): string[] {
  const present = new Set<string>();
  for (const env of c.outlet.envelopes) {
    if (env.kind.case === "presenceState" && env.kind.value.roomId === room) {
      present.clear();
      for (const m of env.kind.value.members) present.add(m.memberId);
    } else if (env.kind.case === "presenceDiff" && env.kind.value.roomId === room) {
      for (const m of env.kind.value.joined) present.add(m.memberId);
      for (const m of env.kind.value.left) present.delete(m.memberId);
    }
  }
  return [...present].sort();
}

const ids = (...cs: Client[]) => cs.map((c) => c.member.id).sort();

test("presence - state right after room_joined, then diffs; members who did not ask get nothing", async () => {
  const router = await newRouter(new MemoryStore({ dedupWindowMs: 60_000 }));
  const a = await connect(router);
  await join(a, true);
  const kinds = a.outlet.envelopes.map((e) => e.kind.case);
  assert.deepEqual(kinds.slice(kinds.indexOf("roomJoined")), ["roomJoined", "presenceState"]);
  assert.deepEqual(view(a), ids(a));

  const b = await connect(router);
  await join(b, false);
  await eventually(() => view(a).length === 2);
  assert.deepEqual(view(a), ids(a, b));
  b.send({ leave_room: { room_id: R } });
  await eventually(() => view(a).length === 1);

  const c = await connect(router);
  await join(c, false);
  await eventually(() => view(a).length === 2);
  router.detach(c.member); // socket closed
  await eventually(() => view(a).length === 1);
  await settle();
  for (const quiet of [b, c]) {
    assert.equal(quiet.outlet.kinds("presenceState").length, 0);
    assert.equal(quiet.outlet.kinds("presenceDiff").length, 0);
  }
  // No diff ever named the watcher's own join.
  for (const d of a.outlet.kinds("presenceDiff"))
    assert.ok(!d.joined.some((m) => m.memberId === a.member.id));
});

test("presence - presence_state comes before the replayed messages", async () => {
  const router = await newRouter(new MemoryStore({ dedupWindowMs: 60_000 }));
  const p = await connect(router);
  await join(p, false);
  p.send({ message: { target: R, content: "one" } });
  await eventually(() => p.outlet.kinds("ack").length === 1);
  const a = await connect(router);
  a.send({ join_room: { room_id: R, presence: true, since: { offset: "0" } } });
  await eventually(() => a.outlet.kinds("message").length === 1);
  const kinds = a.outlet.envelopes.map((e) => e.kind.case);
  assert.deepEqual(kinds.slice(kinds.indexOf("roomJoined")), [
    "roomJoined",
    "presenceState",
    "message",
  ]);
});

test("presence - a second join with presence starts watching; a resume keeps the flag", async () => {
  const router = await newRouter(new MemoryStore({ dedupWindowMs: 60_000 }));
  const a = await connect(router);
  await join(a, false);
  assert.equal(a.outlet.kinds("presenceState").length, 0);
  await join(a, true);
  await eventually(() => a.outlet.kinds("presenceState").length === 1);

  const w = await connect(router);
  await join(w, true);
  router.detach(a.member);
  await eventually(() => view(w).length === 1);
  const resumed = await connect(router, a.token);
  await eventually(() => resumed.outlet.kinds("presenceState").length === 1);
  assert.deepEqual(view(resumed), ids(a, w));
  await eventually(() => view(w).length === 2); // back in `joined`
});

test("presence - across nodes: state includes other nodes, diffs flow, a silent node expires", async () => {
  const [n1, n2, n3] = await cluster(3);
  const m1 = await connect(n1!);
  await join(m1, false);
  const m3 = await connect(n3!);
  await join(m3, false);
  const w = await connect(n2!);
  await join(w, true);
  assert.deepEqual(view(w), ids(m1, m3, w));

  const late = await connect(n1!);
  await join(late, false);
  await eventually(() => view(w).length === 4);
  late.send({ leave_room: { room_id: R } });
  await eventually(() => view(w).length === 3);

  const seen = await n1!.presence(R);
  assert.deepEqual(seen.map((m) => m.memberId).sort(), ids(m1, m3, w));

  // Node 3 dies without a goodbye (its broker connection first): its member
  // is left after ~3 heartbeats.
  await brokers.get(n3!)!.close();
  await n3!.close();
  await eventually(() => view(w).length === 2, { timeoutMs: 3000 });
  assert.deepEqual(view(w), ids(m1, w));
});

test("presence - a node that shuts down says goodbye: its members leave at once", async () => {
  // Heartbeats so slow that only the goodbye can explain a prompt `left`.
  const [n1, n2] = await cluster(2, { ...presence, heartbeatMs: 60_000 });
  const m1 = await connect(n1!);
  await join(m1, false);
  const w = await connect(n2!);
  await join(w, true);
  assert.deepEqual(view(w), ids(m1, w));
  await n1!.close();
  await eventually(() => view(w).length === 1, { timeoutMs: 2000 });
});

test("presence - the API query from a node without members sees every node", async () => {
  const [n1, n2] = await cluster(2);
  const a = await connect(n1!, undefined, identity("alice"));
  await join(a, false);
  const seen = await n2!.presence(R);
  assert.deepEqual(seen, [{ memberId: a.member.id, userId: "alice" }]);
  assert.deepEqual(await n2!.presence("empty-room"), []);
  // Nobody watches, so no delta tells node 2 (which keeps the room open for
  // bob) that alice left: the next query must not report what an earlier one heard.
  const b = await connect(n2!, undefined, identity("bob"));
  await join(b, false);
  assert.equal((await n2!.presence(R)).length, 2);
  a.send({ leave_room: { room_id: R } });
  await eventually(() => a.outlet.kinds("roomLeft").length === 1);
  assert.deepEqual(await n2!.presence(R), [{ memberId: b.member.id, userId: "bob" }]);
});

test("presence - a burst of joins is coalesced into few diffs", async () => {
  const [n1, n2] = await cluster(2);
  const n = 200;
  const clients = await Promise.all(
    Array.from({ length: n }, (_, i) => connect(i % 2 === 0 ? n1! : n2!)),
  );
  await Promise.all(clients.map((c) => join(c, true)));
  await eventually(() => clients.every((c) => view(c).length === n), { timeoutMs: 5000 });
  const diffs = clients.reduce((sum, c) => sum + c.outlet.kinds("presenceDiff").length, 0);
  // One frame per join per watcher would be n²/2 = 20,000.
  assert.ok(diffs < 10 * n, `${diffs} diffs for ${n} joins`);
});

test("presence - disconnectUser closes the user's sockets on every node with 4502 and ends resume", async () => {
  const [n1, n2] = await cluster(2);
  const a1 = await connect(n1!, undefined, identity("alice"));
  const a2 = await connect(n2!, undefined, identity("alice"));
  const bob = await connect(n2!, undefined, identity("bob"));
  await join(a1, false);
  await n1!.disconnectUser("alice");
  await eventually(
    () =>
      a1.outlet.closedWith === CloseCode.DisconnectedByServer &&
      a2.outlet.closedWith === CloseCode.DisconnectedByServer,
  );
  assert.equal(bob.outlet.closedWith, undefined);
  n1!.detach(a1.member);
  n2!.detach(a2.member);
  await settle();
  const again = await n2!.openSession(a1.token, identity("alice"));
  assert.equal(again.resumed, false);
  const bobAgain = await n2!.openSession(bob.token, identity("bob"));
  assert.equal(bobAgain.resumed, true);
});
