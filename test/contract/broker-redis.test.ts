import { Redis } from "ioredis";
import { RedisBroker } from "../../src/adapters/broker/redis-broker.js";
import { roomSubject } from "../../src/adapters/broker/room-subject.js";
import { freePort } from "../../tools/process-harness.js";
import { redisServerAvailable, startRedisServer, type RedisServer } from "../helpers/redis.js";
import { brokerContract } from "./broker.contract.js";

const available = redisServerAvailable();

for (const sharded of [false, true]) {
  let server: RedisServer | undefined;
  let probe: Redis | undefined;
  const running = (): RedisServer => {
    if (server === undefined) throw new Error("redis-server is not started");
    return server;
  };

  brokerContract(
    sharded ? "redis broker (sharded pub/sub)" : "redis broker",
    () =>
      Promise.resolve(
        new RedisBroker({ url: running().url, sharded, reconnectMinMs: 50, reconnectMaxMs: 300 }),
      ),
    {
      distributed: true,
      skip: !available,
      before: async () => {
        server = await startRedisServer();
        probe = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: null });
        probe.on("error", () => undefined); // reconnects by itself across the restart test
        await probe.connect();
      },
      after: async () => {
        probe?.disconnect();
        await server?.close();
      },
      interest: async (room) => {
        if (probe === undefined) throw new Error("probe is not connected");
        const channel = roomSubject("roomcast", room);
        const reply = await probe.call("PUBSUB", sharded ? "SHARDNUMSUB" : "NUMSUB", channel);
        if (!Array.isArray(reply)) throw new Error("unexpected PUBSUB reply");
        return Number(reply[1]);
      },
      unreachable: async () =>
        new RedisBroker({ url: `redis://127.0.0.1:${await freePort()}`, sharded }),
      server: {
        stop: () => running().stop("SIGKILL"),
        start: () => running().start(),
      },
    },
  );
}
