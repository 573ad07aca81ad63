// Two routers ("nodes") on one in-process bus: closeUser closes that user's
// sockets on every node and no one else's. Real MemoryBroker and MemoryStore;
// the outlets record what the core sends them.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { MemoryBroker, MemoryBus } from "../../src/adapters/broker/memory-broker.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { Router } from "../../src/core/router.js";
import { silentLogger } from "../../src/observability/logging.js";
import { CloseCode } from "../../src/protocol/errors.js";
import { identity, routerOptions } from "../helpers/core.js";
import { eventually } from "../helpers/eventually.js";
import { RecordingOutlet } from "../helpers/recording-outlet.js";

const options = routerOptions;

const routers: Router[] = [];
after(async () => {
  for (const r of routers) await r.close();
});

test("node control - closeUser closes that user's sockets on every node", async () => {
  const bus = new MemoryBus();
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const nodes = [];
  for (let i = 0; i < 2; i++) {
    const broker = new MemoryBroker({ bus });
    await broker.open();
    const router = new Router(store, broker, options, silentLogger());
    await router.start();
    routers.push(router);
    nodes.push(router);
  }
  const attach = async (node: Router, user: string) => {
    const outlet = new RecordingOutlet();
    node.attach(await node.openSession(undefined, identity(user)), outlet);
    return outlet;
  };
  const alice = [await attach(nodes[0]!, "alice"), await attach(nodes[1]!, "alice")];
  const bob = [await attach(nodes[0]!, "bob"), await attach(nodes[1]!, "bob")];
  for (const o of [...alice, ...bob]) assert.equal(o.envelopes[0]?.kind.case, "session");

  await nodes[1]!.closeUser("alice", CloseCode.PolicyViolation);
  await eventually(() => alice.every((o) => o.closedWith === CloseCode.PolicyViolation));
  // A later control message proves bob's were seen and left alone.
  await nodes[0]!.closeUser("carol", CloseCode.PolicyViolation);
  await nodes[0]!.closeUser("bob", CloseCode.Normal);
  await eventually(() => bob.every((o) => o.closedWith === CloseCode.Normal));
});

test("node control - a resume never crosses users", async () => {
  const broker = new MemoryBroker();
  await broker.open();
  const router = new Router(
    new MemoryStore({ dedupWindowMs: 60_000 }),
    broker,
    options,
    silentLogger(),
  );
  await router.start();
  routers.push(router);
  const grant = await router.openSession(undefined, identity("alice"));
  const stolen = await router.openSession(grant.token, identity("mallory"));
  assert.equal(stolen.resumed, false);
  assert.notEqual(stolen.memberId, grant.memberId);
});
