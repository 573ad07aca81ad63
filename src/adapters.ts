// The one place that names concrete adapters: configuration in, ports out.
// Adapters load lazily so an unused backend's client library is never required.
import { hostname } from "node:os";
import type { Config } from "./config/schema.js";
import type { Logger } from "./observability/logging.js";
import type { Broker } from "./ports/broker.js";
import type { Store } from "./ports/store.js";
import type { Rate, RateLimiter } from "./ports/rate-limiter.js";
import type { RateText } from "./config/rate.js";
import { RateLimits } from "./core/rate-limits.js";

export async function createStore(config: Config, log: Logger): Promise<Store> {
  switch (config.STORE) {
    case "memory": {
      const { MemoryStore } = await import("./adapters/store/memory-store.js");
      return new MemoryStore({
        dedupWindowMs: config.DEDUP_WINDOW,
        maxPerRoom: config.HISTORY_SIZE,
      });
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
      return new NatsBroker({
        url: config.NATS_URL,
        prefix: config.BROKER_PREFIX,
        log,
        // Which node a connection is, in the server's monitoring (/connz).
        name: `roomcast-${hostname()}-${process.pid}`,
      });
    }
    case "redis": {
      const { RedisBroker } = await import("./adapters/broker/redis-broker.js");
      return new RedisBroker({
        url: config.REDIS_URL,
        prefix: config.BROKER_PREFIX,
        sharded: config.REDIS_SHARDED,
        cluster: config.REDIS_CLUSTER,
        log,
      });
    }
  }
}

/** Which shared limiter RATE_LIMIT_DISTRIBUTED uses; undefined: none fits (limits stay per node). */
export function rateLimitBackend(config: Config): "redis" | "postgres" | "sqlite" | undefined {
  if (config.RATE_LIMIT_BACKEND !== "auto") return config.RATE_LIMIT_BACKEND;
  // A Cluster's seed list (REDIS_CLUSTER) is no place for the limiter's script.
  const redisForLimits = !config.REDIS_CLUSTER || config.RATE_LIMIT_REDIS_URL !== undefined;
  if (config.BROKER === "redis" && redisForLimits) return "redis";
  if (config.STORE === "postgres" || config.STORE === "sqlite") return config.STORE;
  return undefined;
}

/** Hooks for the limiter's fallback (a metric attaches here). */
export interface RateLimitHooks {
  readonly onFallback?: (err: unknown) => void;
  readonly onRestore?: () => void;
}

export async function createRateLimits(
  config: Config,
  log: Logger,
  hooks: RateLimitHooks = {},
): Promise<RateLimits> {
  const { MemoryLimiter } = await import("./adapters/ratelimit/memory-limiter.js");
  const local = new MemoryLimiter();
  await local.open();
  const settings = {
    messages: gcraRate(config.RATE_LIMIT_MESSAGES, config.RATE_LIMIT_MESSAGES_BURST),
    roomMessages: gcraRate(config.RATE_LIMIT_ROOM_MESSAGES, config.RATE_LIMIT_ROOM_MESSAGES_BURST),
    joins: gcraRate(config.RATE_LIMIT_JOINS, config.RATE_LIMIT_JOINS_BURST),
    handshakes: gcraRate(config.RATE_LIMIT_HANDSHAKES, config.RATE_LIMIT_HANDSHAKES_BURST),
    closeAfter: config.RATE_LIMIT_CLOSE_AFTER,
  };
  if (!config.RATE_LIMIT_DISTRIBUTED) return new RateLimits(settings, local, local);
  const backend = rateLimitBackend(config);
  let shared: RateLimiter;
  switch (backend) {
    case undefined:
      log.warn(
        { store: config.STORE, broker: config.BROKER },
        "RATE_LIMIT_DISTRIBUTED=true but neither Redis nor a SQL store is configured: limits hold per node",
      );
      return new RateLimits(settings, local, local);
    case "redis": {
      const { RedisLimiter } = await import("./adapters/ratelimit/redis-limiter.js");
      shared = new RedisLimiter({
        url: config.RATE_LIMIT_REDIS_URL ?? config.REDIS_URL,
        prefix: config.BROKER_PREFIX,
      });
      break;
    }
    case "postgres": {
      const { PostgresLimiter } = await import("./adapters/ratelimit/postgres-limiter.js");
      shared = new PostgresLimiter({
        url: config.POSTGRES_URL ?? "",
        timeoutMs: config.STORE_TIMEOUT,
      });
      break;
    }
    case "sqlite": {
      const { SqliteLimiter } = await import("./adapters/ratelimit/sqlite-limiter.js");
      shared = new SqliteLimiter({ path: config.SQLITE_PATH });
      break;
    }
  }
  const { FallbackLimiter } = await import("./adapters/ratelimit/fallback-limiter.js");
  // A second local limiter with the same limits stands in for the shared one
  // while it is down (the per-connection keys keep their own).
  const fallback = new FallbackLimiter(shared, new MemoryLimiter(), {
    timeoutMs: Math.min(config.STORE_TIMEOUT, 500),
    retryMs: 1000,
    log,
    ...hooks,
  });
  await fallback.open();
  log.info({ backend }, "rate limits hold for the whole cluster (RATE_LIMIT_DISTRIBUTED)");
  return new RateLimits(settings, fallback, local);
}

/** A configured rate as GCRA parameters; undefined when `off`. */
function gcraRate(rate: RateText | null, burst: number | undefined): Rate | undefined {
  if (rate === null) return undefined;
  return { intervalMs: rate.periodMs / rate.count, burst: burst ?? rate.count };
}
