// The broker contract on a real three-master Redis Cluster (ioredis.Cluster;
// sharded pub/sub, which cluster mode always uses: see redis-broker.ts).
// Interest is counted over every node; a channel's subscriptions sit on the
// shard that owns its slot.
import { RedisBroker } from "../../src/adapters/broker/redis-broker.js";
import { roomSubject } from "../../src/adapters/broker/room-subject.js";
import { freePort } from "../../tools/process-harness.js";
import {
  redisClusterAvailable,
  startRedisCluster,
  type RedisCluster,
} from "../helpers/redis-cluster.js";
import { brokerContract } from "./broker.contract.js";

const available = redisClusterAvailable();

let cluster: RedisCluster | undefined;
const running = (): RedisCluster => {
  if (cluster === undefined) throw new Error("the Redis Cluster is not started");
  return cluster;
};

brokerContract(
  "redis cluster broker",
  () =>
    Promise.resolve(
      new RedisBroker({
        url: running().url,
        cluster: true,
        reconnectMinMs: 50,
        reconnectMaxMs: 300,
      }),
    ),
  {
    distributed: true,
    skip: !available,
    before: async () => {
      cluster = await startRedisCluster(3);
    },
    after: async () => {
      await cluster?.close();
    },
    interest: async (room) => {
      const channel = roomSubject("roomcast", room);
      const replies = await running().onEveryNode("PUBSUB", "SHARDNUMSUB", channel);
      let total = 0;
      for (const reply of replies) {
        if (!Array.isArray(reply)) throw new Error("unexpected PUBSUB reply");
        total += Number(reply[1]);
      }
      return total;
    },
    unreachable: async () =>
      new RedisBroker({
        url: `redis://127.0.0.1:${await freePort()}`,
        cluster: true,
        reconnectMinMs: 50,
        reconnectMaxMs: 100,
      }),
    server: {
      stop: () => running().stop(),
      start: () => running().start(),
    },
  },
);
