// Loads and validates configuration from the environment. A bad value stops
// the process with a message naming the variable.
import { configSchema, type Config } from "./schema.js";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    // An empty variable counts as unset, as shells and Helm often leave them.
    if (value !== undefined && value !== "") input[key] = value;
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) =>
        `${issue.path.join(".")}=${JSON.stringify(input[String(issue.path[0])])}: ${issue.message}`,
    );
    throw new ConfigError(`invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  const config = parsed.data;
  if (config.STORE === "postgres" && config.POSTGRES_URL === undefined) {
    throw new ConfigError("invalid configuration:\n  POSTGRES_URL: required when STORE=postgres");
  }
  if (
    config.RATE_LIMIT_DISTRIBUTED &&
    config.RATE_LIMIT_BACKEND === "postgres" &&
    config.POSTGRES_URL === undefined
  ) {
    throw new ConfigError(
      "invalid configuration:\n  POSTGRES_URL: required when RATE_LIMIT_BACKEND=postgres",
    );
  }
  if (config.REDIS_CLUSTER) {
    // REDIS_URL lists the Cluster's seed nodes, for the broker only: the Redis
    // store and limiter run their scripts on one server, so they need their own.
    if (config.STORE === "redis" && config.STORE_REDIS_URL === undefined) {
      throw new ConfigError(
        "invalid configuration:\n  STORE_REDIS_URL: required with STORE=redis when REDIS_CLUSTER=true (the store needs one Redis server, not the broker's Cluster)",
      );
    }
    if (
      config.RATE_LIMIT_DISTRIBUTED &&
      config.RATE_LIMIT_BACKEND === "redis" &&
      config.RATE_LIMIT_REDIS_URL === undefined
    ) {
      throw new ConfigError(
        "invalid configuration:\n  RATE_LIMIT_REDIS_URL: required with RATE_LIMIT_BACKEND=redis when REDIS_CLUSTER=true",
      );
    }
  }
  if ((config.TLS_CERT_FILE === undefined) !== (config.TLS_KEY_FILE === undefined)) {
    throw new ConfigError(
      "invalid configuration:\n  TLS_CERT_FILE and TLS_KEY_FILE: set both or neither",
    );
  }
  if (config.STORE === "spanner") {
    const missing = (["SPANNER_PROJECT", "SPANNER_INSTANCE", "SPANNER_DATABASE"] as const).filter(
      (name) => config[name] === undefined,
    );
    if (missing.length > 0)
      throw new ConfigError(
        `invalid configuration:\n  ${missing.map((n) => `${n}: required when STORE=spanner`).join("\n  ")}`,
      );
  }
  return config;
}
