// Redis on a private redis-server the harness starts, with AOF on (fsync
// everysec, as docs/operations.md recommends), so a stop and start keeps
// the data as a restarted production server would. Each `fresh` backend is a
// new key prefix; the append worker is another process; the outage test
// stops and restarts the server.
import { RedisStore } from "../../src/adapters/store/redis-store.js";
import {
  REDIS_AOF_EVERYSEC,
  redisServerAvailable,
  startRedisServer,
  type RedisServer,
} from "../helpers/redis.js";
import { appendInProcess } from "./store-append-process.js";
import { storeContract, type StoreSettings } from "./store.contract.js";

let server: RedisServer | undefined;
const running = (): RedisServer => {
  if (server === undefined) throw new Error("redis-server is not started");
  return server;
};
let prefixes = 0;

const store = (prefix: string, settings: StoreSettings): RedisStore =>
  new RedisStore({ url: running().url, keyPrefix: prefix, timeoutMs: 2000, ...settings });

storeContract("redis store", (settings) => Promise.resolve(store("shared", settings)), {
  capabilities: { durable: true, shared: true },
  sharedBackend: true,
  skip: !redisServerAvailable(),
  before: async () => {
    server = await startRedisServer({ args: REDIS_AOF_EVERYSEC });
  },
  after: async () => {
    await server?.close();
  },
  fresh: () => {
    prefixes += 1;
    const prefix = `fresh${prefixes}`;
    return Promise.resolve((settings) => Promise.resolve(store(prefix, settings)));
  },
  appendInProcess: (room, count, prefix) =>
    appendInProcess("redis", `${running().url}#shared`, room, count, prefix),
  server: {
    stop: () => running().stop(),
    start: () => running().start(),
  },
});
