// Every environment variable Roomcast reads, with its default. Keep in step
// with docs/configuration.md (test/unit/config-doc.test.ts checks it).
import { z } from "zod";
import { isRoomPattern } from "../core/access.js";
import { parseDuration } from "./duration.js";
import { parseRate } from "./rate.js";
import { parsePostgresHosts } from "../adapters/store/postgres-hosts.js";

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

/** `N/DURATION` or `off` (null). */
const rate = z.string().transform((text, ctx) => {
  const parsed = parseRate(text);
  if (parsed === undefined) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `not a rate: "${text}" (e.g. 20/1s, 600/1m, or off)`,
    });
    return z.NEVER;
  }
  return parsed;
});
const burst = () => int(1, 100_000_000).optional();

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

const list = z.string().transform((text) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

const algorithms = list.pipe(
  z.array(
    z.enum([
      "HS256",
      "HS384",
      "HS512",
      "RS256",
      "RS384",
      "RS512",
      "PS256",
      "PS384",
      "PS512",
      "ES256",
      "ES384",
      "ES512",
      "EdDSA",
    ]),
  ),
);

const roomPatterns = list.refine((ps) => ps.every(isRoomPattern), {
  message: "patterns are *, a room id, or a prefix ending in *",
});
const otlpProtocol = z.enum(["grpc", "http/protobuf", "http/json"]);

/** One host, or several (`host1:5432,host2:5432`) with target_session_attrs, as libpq takes them. */
const postgresUrl = z.string().superRefine((text, ctx) => {
  try {
    parsePostgresHosts(text);
  } catch (err) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `not a PostgreSQL URL: ${err instanceof Error ? err.message : String(err)}`,
    });
  }
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
  DEMO_PAGE: flag.default("true"),

  MAX_MESSAGE_BYTES: int(256, 16 * 1024 * 1024).default(65_536),
  MAX_BUFFERED_BYTES: int(1024, 1024 * 1024 * 1024).default(1_048_576),
  SLOW_CONSUMER_GRACE: duration.default("2s"),
  MAX_ROOMS_PER_MEMBER: int(1, 100_000).default(128),
  PING_INTERVAL: duration.default("25s"),
  PONG_TIMEOUT: duration.default("20s"),
  HANDSHAKE_TIMEOUT: duration.default("10s"),
  HANDSHAKE_MAX_PENDING: int(0, 1_000_000).default(256),
  HANDSHAKE_MAX_LAG: duration.default("500ms"),
  HANDSHAKE_RETRY_AFTER: duration.default("5s"),
  FIRST_FRAME_TIMEOUT: duration.default("10s"),
  BAD_FRAME_LIMIT: int(1, 1_000_000).default(10),
  BAD_FRAME_WINDOW: duration.default("1m"),
  DRAIN_PERIOD: duration.default("20s"),

  AUTH_JWT_SECRET: z.string().min(1).optional(),
  AUTH_JWT_PUBLIC_KEY: z.string().min(1).optional(),
  AUTH_JWT_PUBLIC_KEY_FILE: z.string().min(1).optional(),
  AUTH_JWKS_URL: z.string().url().optional(),
  AUTH_JWKS_CACHE_TTL: duration.default("10m"),
  AUTH_JWKS_COOLDOWN: duration.default("30s"),
  AUTH_JWKS_TIMEOUT: duration.default("5s"),
  AUTH_JWT_ISSUER: z.string().min(1).optional(),
  AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
  AUTH_JWT_ALGORITHMS: algorithms.optional(),
  AUTH_CLOCK_SKEW: duration.default("30s"),
  AUTH_DEFAULT_ROOMS: roomPatterns.default("*"),
  MAX_CONNECTIONS: int(0, 10_000_000).default(0),
  MAX_CONNECTIONS_PER_USER: int(0, 10_000_000).default(0),
  MAX_CONNECTIONS_PER_IP: int(0, 10_000_000).default(0),
  TRUST_PROXY: int(0, 100).default(0),
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),
  API_KEY: list.optional(),
  PRESENCE_HEARTBEAT: duration.default("8s"),

  RATE_LIMIT_MESSAGES: rate.default("100/1s"),
  RATE_LIMIT_MESSAGES_BURST: burst(),
  RATE_LIMIT_ROOM_MESSAGES: rate.default("1000/1s"),
  RATE_LIMIT_ROOM_MESSAGES_BURST: burst(),
  RATE_LIMIT_JOINS: rate.default("128/1s"),
  RATE_LIMIT_JOINS_BURST: burst(),
  RATE_LIMIT_HANDSHAKES: rate.default("1000/1s"),
  RATE_LIMIT_HANDSHAKES_BURST: burst(),
  RATE_LIMIT_CLOSE_AFTER: int(0, 1_000_000).default(100),
  RATE_LIMIT_DISTRIBUTED: flag.default("false"),
  RATE_LIMIT_BACKEND: z.enum(["auto", "redis", "postgres", "sqlite"]).default("auto"),
  RATE_LIMIT_REDIS_URL: z.string().min(1).optional(),
  PERMESSAGE_DEFLATE: flag.default("false"),

  STORE: z.enum(["memory", "sqlite", "postgres", "redis", "spanner"]).default("sqlite"),
  SQLITE_PATH: z.string().min(1).default("./data/roomcast.db"),
  POSTGRES_URL: postgresUrl.optional(),
  POSTGRES_POOL_SIZE: int(1, 1000).default(10),
  STORE_REDIS_URL: z.string().min(1).optional(),
  SPANNER_PROJECT: z.string().min(1).optional(),
  SPANNER_INSTANCE: z.string().min(1).optional(),
  SPANNER_DATABASE: z.string().min(1).optional(),
  SPANNER_EMULATOR_HOST: z.string().min(1).optional(),
  STORE_TIMEOUT: duration.default("2s"),
  STORE_BREAKER_FAILURES: int(1, 1000).default(3),
  STORE_BREAKER_RESET: duration.default("1s"),
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
  REDIS_CLUSTER: flag.default("false"),
  BROKER_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default("roomcast"),
  BROKER_TIMEOUT: duration.default("2s"),
  BROKER_BREAKER_FAILURES: int(1, 1000).default(3),
  BROKER_BREAKER_RESET: duration.default("1s"),
  BROKER_RETRY_ATTEMPTS: int(1, 100).default(3),
  BROKER_RETRY_BACKOFF: duration.default("100ms"),
  BROKER_RETRY_BUDGET: z.coerce.number().min(0).max(10).default(0.1),
  GAP_WAIT: duration.default("50ms"),
  HEAD_ANNOUNCE_AFTER: duration.default("1s"),

  METRICS_ENABLED: flag.default("true"),
  METRICS_PATH: z
    .string()
    .regex(/^\/\S*$/, "must start with /")
    .default("/metrics"),
  METRICS_PORT: int(0, 65535).optional(),

  // OpenTelemetry's own variables: validated here, read by tracing.ts and the SDK.
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol.default("grpc"),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol.optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default("roomcast"),
  OTEL_TRACES_SAMPLER: z
    .enum([
      "always_on",
      "always_off",
      "traceidratio",
      "parentbased_always_on",
      "parentbased_always_off",
      "parentbased_traceidratio",
    ])
    .default("parentbased_always_on"),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
});

export type Config = z.infer<typeof configSchema>;
