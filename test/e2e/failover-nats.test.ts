// Two nodes on a three-server NATS cluster, each given all three servers in
// NATS_URL: the server one node is connected to is killed, and messages keep
// flowing both ways between the nodes once its client moved to another server.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { postgresBackend } from "../helpers/durable-stores.js";
import {
  connectedClients,
  natsServerAvailable,
  startNatsCluster,
  type NatsCluster,
} from "../helpers/nats.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const store = postgresBackend();
const skip = !natsServerAvailable() || !store.available();

let cluster: NatsCluster;
const nodes: ServerProcess[] = [];
const clients: TestClient[] = [];

before(async () => {
  if (skip) return;
  cluster = await startNatsCluster(3);
  await store.start();
  const env = {
    BROKER: "nats",
    NATS_URL: cluster.url,
    ...(await store.env("nats_failover")),
    GAP_WAIT: "30ms",
  };
  nodes.push(await startServer(env), await startServer(env));
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(nodes.map((n) => n.stop()));
  await cluster?.close();
  await store.stop();
});

async function member(node: ServerProcess, room: string): Promise<TestClient> {
  const [c] = await TestClient.open(node.wsUrl);
  clients.push(c);
  c.send({ join_room: { room_id: room } });
  await c.next("room_joined");
  return c;
}

/** Publishes one message from `from` and waits for `to` to receive it; false if it did not within a second. */
async function flows(from: TestClient, to: TestClient, content: string): Promise<boolean> {
  from.send({ message: { target: "n", content, message_id: content } });
  await from.next("ack", 5000, (a) => a["message_id"] === content);
  try {
    await to.next("message", 1000, (m) => m["content"] === content);
    return true;
  } catch {
    return false;
  }
}

test(
  "nats failover - the server a node is on dies; messages keep flowing across nodes",
  { skip },
  async () => {
    const [a, b] = [await member(nodes[0]!, "n"), await member(nodes[1]!, "n")];
    assert.ok(await flows(a, b, "before-a"));
    assert.ok(await flows(b, a, "before-b"));

    // The server node A's connection is on (its client name ends in its pid).
    const pidA = String(nodes[0]!.child.pid);
    let hosting = -1;
    for (const [i, server] of cluster.servers.entries()) {
      if ((await connectedClients(server)).some((name) => name.endsWith(`-${pidA}`))) hosting = i;
    }
    assert.notEqual(hosting, -1, "node A is connected to one of the servers");
    await cluster.servers[hosting]!.stop("SIGKILL");

    // A's client reconnects to a surviving server; until then a publish is
    // stored and acked but its live fanout may be lost (the store closes that gap).
    let n = 0;
    await eventually(async () => flows(a, b, `after-a-${n++}`), { timeoutMs: 20_000 });
    await eventually(async () => flows(b, a, `after-b-${n++}`), { timeoutMs: 20_000 });
    const survivors = cluster.servers.filter((_, i) => i !== hosting);
    const names = (await Promise.all(survivors.map(connectedClients))).flat();
    assert.ok(
      names.some((name) => name.endsWith(`-${pidA}`)),
      "node A is now on a surviving server",
    );

    // Each member saw contiguous offsets, in order, each once: what the
    // broker lost while A moved was read from the store when the next arrived.
    for (const c of [a, b]) {
      const offsets = c.all("message").map((m) => Number(m["offset"]));
      assert.deepEqual(
        offsets,
        offsets.map((_, i) => offsets[0]! + i),
        "contiguous offsets in order",
      );
    }
  },
);
