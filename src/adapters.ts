// The one place that names concrete adapters: configuration in, ports out.
// Adapters load lazily so an unused backend's client library is never required.
import type { Config } from "./config/schema.js";
import type { Logger } from "./observability/logging.js";
import type { Broker } from "./ports/broker.js";
import type { Store } from "./ports/store.js";

export async function createStore(config: Config, log: Logger): Promise<Store> {
  switch (config.STORE) {
    case "memory": {
      const { MemoryStore } = await import("./adapters/store/memory-store.js");
      return new MemoryStore({ dedupWindowMs: config.DEDUP_WINDOW });
    }
    case "sqlite": {
      const { SqliteStore } = await import("./adapters/store/sqlite-store.js");
      return new SqliteStore({ path: config.SQLITE_PATH, dedupWindowMs: config.DEDUP_WINDOW });
    }
    case "postgres": {
      const { PostgresStore } = await import("./adapters/store/postgres-store.js");
      log.debug("using PostgreSQL store");
      return new PostgresStore({
        url: config.POSTGRES_URL ?? "",
        poolSize: config.POSTGRES_POOL_SIZE,
        dedupWindowMs: config.DEDUP_WINDOW,
        statementTimeoutMs: config.STORE_TIMEOUT,
      });
    }
    case "redis": {
      const { RedisStore } = await import("./adapters/store/redis-store.js");
      log.debug("using Redis store");
      return new RedisStore({
        url: config.STORE_REDIS_URL ?? config.REDIS_URL,
        dedupWindowMs: config.DEDUP_WINDOW,
        maxPerRoom: config.HISTORY_SIZE,
        timeoutMs: config.STORE_TIMEOUT,
      });
    }
    case "spanner": {
      const { SpannerStore } = await import("./adapters/store/spanner-store.js");
      log.debug("using Cloud Spanner store");
      return new SpannerStore({
        projectId: config.SPANNER_PROJECT ?? "",
        instanceId: config.SPANNER_INSTANCE ?? "",
        databaseId: config.SPANNER_DATABASE ?? "",
        dedupWindowMs: config.DEDUP_WINDOW,
        timeoutMs: config.STORE_TIMEOUT,
        ...(config.SPANNER_EMULATOR_HOST !== undefined && {
          emulatorHost: config.SPANNER_EMULATOR_HOST,
        }),
      });
    }
  }
}

export async function createBroker(config: Config, log: Logger): Promise<Broker> {
  switch (config.BROKER) {
    case "memory": {
      const { MemoryBroker } = await import("./adapters/broker/memory-broker.js");
      return new MemoryBroker({ prefix: config.BROKER_PREFIX, log });
    }
    case "nats": {
      const { NatsBroker } = await import("./adapters/broker/nats-broker.js");
      return new NatsBroker({ url: config.NATS_URL, prefix: config.BROKER_PREFIX, log });
    }
    case "redis": {
      const { RedisBroker } = await import("./adapters/broker/redis-broker.js");
      return new RedisBroker({
        url: config.REDIS_URL,
        prefix: config.BROKER_PREFIX,
        sharded: config.REDIS_SHARDED,
        log,
      });
    }
  }
}
