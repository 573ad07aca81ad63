// The distributed brokers a cluster test runs on, each with its private
// server from the harness and the node environment that points at it.
import { natsServerAvailable, startNatsServer } from "./nats.js";
import { redisServerAvailable, startRedisServer } from "./redis.js";

export interface BrokerServer {
  readonly url: string;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  close(): Promise<void>;
}

export const brokerKinds = [
  {
    name: "nats",
    available: natsServerAvailable,
    start: startNatsServer,
    env: (url: string) => ({ BROKER: "nats", NATS_URL: url }),
  },
  {
    name: "redis",
    available: redisServerAvailable,
    start: startRedisServer,
    env: (url: string) => ({ BROKER: "redis", REDIS_URL: url }),
  },
] as const;
