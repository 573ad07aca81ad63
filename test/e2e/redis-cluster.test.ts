// Two nodes whose broker is a real three-master Redis Cluster
// (REDIS_CLUSTER=true, REDIS_URL listing the nodes; sharded pub/sub, which
// cluster mode always uses): messages cross between the nodes in rooms
// spread over the shards, in offset order, each once.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import { postgresBackend } from "../helpers/durable-stores.js";
import {
  redisClusterAvailable,
  startRedisCluster,
  type RedisCluster,
} from "../helpers/redis-cluster.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const store = postgresBackend();
const skip = !redisClusterAvailable() || !store.available();
// Enough rooms that their channels hash to every shard of three.
const ROOMS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];

describe("redis cluster - two nodes", { skip }, () => {
  let cluster: RedisCluster;
  const nodes: ServerProcess[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    cluster = await startRedisCluster(3);
    await store.start();
    const env = {
      BROKER: "redis",
      REDIS_CLUSTER: "true",
      REDIS_URL: cluster.url,
      ...(await store.env("redis_cluster")),
    };
    nodes.push(await startServer(env), await startServer(env));
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await cluster?.close();
    await store.stop();
  });

  async function member(node: ServerProcess): Promise<TestClient> {
    const [c] = await TestClient.open(node.wsUrl);
    clients.push(c);
    for (const room of ROOMS) {
      c.send({ join_room: { room_id: room } });
      await c.next("room_joined");
    }
    return c;
  }

  test("redis cluster - messages cross between two nodes in every room", async () => {
    const a = await member(nodes[0]!);
    const b = await member(nodes[1]!);
    for (const [from, label] of [
      [a, "a"],
      [b, "b"],
    ] as const) {
      for (const room of ROOMS) {
        for (let i = 0; i < 3; i++) {
          from.send({ message: { target: room, content: `${label}-${room}-${i}` } });
          await from.next("ack", 10_000);
        }
      }
    }
    for (const [to, other] of [
      [b, "a"],
      [a, "b"],
    ] as const) {
      for (const room of ROOMS) {
        for (let i = 0; i < 3; i++) {
          await to.next("message", 10_000, (m) => m["content"] === `${other}-${room}-${i}`);
        }
      }
    }
    for (const c of [a, b]) {
      for (const room of ROOMS) {
        const offsets = c
          .all("message")
          .filter((m) => m["target"] === room)
          .map((m) => Number(m["offset"]));
        assert.deepEqual(offsets, [1, 2, 3, 4, 5, 6], `room ${room}: each message once, in order`);
      }
    }
    // Sharded pub/sub: the rooms' channels are spread over more than one shard.
    const subs = await cluster.onEveryNode("PUBSUB", "SHARDCHANNELS");
    const shardsUsed = subs.filter((r) => Array.isArray(r) && r.length > 0).length;
    assert.ok(shardsUsed >= 2, `channels on ${shardsUsed} shard(s)`);
  });
});
