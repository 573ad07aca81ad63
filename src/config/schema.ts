// Every environment variable Roomcast reads, with its default. Keep in step
// with docs/configuration.md (test/unit/config-doc.test.ts checks it).
import { z } from "zod";
import { parseDuration } from "./duration.js";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `not a duration: "${text}" (e.g. 500ms, 2s, 10m, 24h)`,
    });
    return z.NEVER;
  }
  return ms;
});

const flag = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");

const origins = z.string().transform((text, ctx) => {
  const list = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const origin of list) {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `not an origin: "${origin}"` });
      return z.NEVER;
    }
    if (url.origin !== origin) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `write origins as scheme://host[:port] with nothing after: "${origin}" (did you mean "${url.origin}"?)`,
      });
      return z.NEVER;
    }
  }
  return list;
});

/** name → [schema, default as the environment would spell it, description] */
export const configSchema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default("0.0.0.0"),
  WS_PATH: z
    .string()
    .regex(/^\/\S*$/, "must start with /")
    .default("/ws"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  ALLOWED_ORIGINS: origins.optional(),

  MAX_MESSAGE_BYTES: int(256, 16 * 1024 * 1024).default(65_536),
  MAX_BUFFERED_BYTES: int(1024, 1024 * 1024 * 1024).default(1_048_576),
  SLOW_CONSUMER_GRACE: duration.default("2s"),
  MAX_ROOMS_PER_MEMBER: int(1, 100_000).default(128),
  PING_INTERVAL: duration.default("25s"),
  PONG_TIMEOUT: duration.default("20s"),
  HANDSHAKE_TIMEOUT: duration.default("10s"),
  FIRST_FRAME_TIMEOUT: duration.default("10s"),
  BAD_FRAME_LIMIT: int(1, 1_000_000).default(10),
  BAD_FRAME_WINDOW: duration.default("1m"),

  STORE: z.enum(["memory", "sqlite", "postgres", "redis", "spanner"]).default("sqlite"),
  SQLITE_PATH: z.string().min(1).default("./data/roomcast.db"),
  POSTGRES_URL: z.string().url().optional(),
  POSTGRES_POOL_SIZE: int(1, 1000).default(10),
  STORE_REDIS_URL: z.string().min(1).optional(),
  SPANNER_PROJECT: z.string().min(1).optional(),
  SPANNER_INSTANCE: z.string().min(1).optional(),
  SPANNER_DATABASE: z.string().min(1).optional(),
  SPANNER_EMULATOR_HOST: z.string().min(1).optional(),
  STORE_TIMEOUT: duration.default("2s"),
  DEDUP_WINDOW: duration.default("2m"),
  HISTORY_SIZE: int(1, 100_000_000).default(1000),
  HISTORY_TTL: duration.default("24h"),
  TRIM_INTERVAL: duration.default("1m"),
  SESSION_TTL: duration.default("10m"),
  SESSION_REPLAY_LIMIT: int(0, 100_000).default(100),
  ACK_FLUSH_INTERVAL: duration.default("1s"),

  BROKER: z.enum(["memory", "nats", "redis"]).default("memory"),
  NATS_URL: z.string().min(1).default("nats://127.0.0.1:4222"),
  REDIS_URL: z.string().min(1).default("redis://127.0.0.1:6379"),
  REDIS_SHARDED: flag.default("false"),
  BROKER_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default("roomcast"),
  GAP_WAIT: duration.default("50ms"),
});

export type Config = z.infer<typeof configSchema>;
