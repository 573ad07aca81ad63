import { Redis } from "ioredis";
import { RedisLimiter } from "../../src/adapters/ratelimit/redis-limiter.js";
import { redisServerAvailable, startRedisServer, type RedisServer } from "../helpers/redis.js";
import { rateLimiterContract } from "./rate-limiter.contract.js";

let server: RedisServer | undefined;
const url = (): string => {
  if (server === undefined) throw new Error("redis-server is not started");
  return server.url;
};

rateLimiterContract(
  "redis rate limiter",
  (now) =>
    Promise.resolve(new RedisLimiter(now === undefined ? { url: url() } : { url: url(), now })),
  {
    shared: true,
    skip: !redisServerAvailable(),
    before: async () => {
      server = await startRedisServer();
    },
    after: async () => {
      await server?.close();
    },
    keysHeld: async (_l, prefix) => {
      const probe = new Redis(url());
      try {
        return (await probe.keys(`roomcast:rl:${prefix}*`)).length;
      } finally {
        probe.disconnect();
      }
    },
    stopServer: () => server?.stop("SIGKILL") ?? Promise.resolve(),
  },
);
