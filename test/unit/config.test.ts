import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config/load.js";
import { parseDuration } from "../../src/config/duration.js";

test("config - defaults", () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 8080);
  assert.equal(c.WS_PATH, "/ws");
  assert.equal(c.MAX_MESSAGE_BYTES, 65536);
  assert.equal(c.MAX_BUFFERED_BYTES, 1048576);
  assert.equal(c.MAX_ROOMS_PER_MEMBER, 128);
  assert.equal(c.DEDUP_WINDOW, 120_000);
  assert.equal(c.ALLOWED_ORIGINS, undefined);
});

test("config - a bad value names the variable", () => {
  for (const [name, value] of [
    ["PORT", "eighty"],
    ["PORT", "70000"],
    ["DEDUP_WINDOW", "soon"],
    ["STORE", "mongo"],
    ["ALLOWED_ORIGINS", "https://a.example/path"],
    ["WS_PATH", "ws"],
  ] as const) {
    assert.throws(
      () => loadConfig({ [name]: value }),
      (err: unknown) => err instanceof ConfigError && err.message.includes(name),
      `${name}=${value}`,
    );
  }
});

test("config - postgres needs a URL", () => {
  assert.throws(() => loadConfig({ STORE: "postgres" }), /POSTGRES_URL/);
});

test("config - POSTGRES_URL may list several hosts, libpq style", () => {
  const url = "postgres://u@a:5432,b:5433/rc?target_session_attrs=read-write";
  assert.equal(loadConfig({ STORE: "postgres", POSTGRES_URL: url }).POSTGRES_URL, url);
  assert.throws(
    () =>
      loadConfig({ STORE: "postgres", POSTGRES_URL: "postgres://a,b/rc?target_session_attrs=x" }),
    /POSTGRES_URL=.*target_session_attrs/,
  );
});

test("config - a Redis Cluster broker needs the Redis store's own server", () => {
  const cluster = { BROKER: "redis", REDIS_CLUSTER: "true", REDIS_URL: "redis://a:1,redis://b:2" };
  assert.throws(() => loadConfig({ ...cluster, STORE: "redis" }), /STORE_REDIS_URL/);
  assert.equal(
    loadConfig({ ...cluster, STORE: "redis", STORE_REDIS_URL: "redis://c:3" }).REDIS_CLUSTER,
    true,
  );
});

test("config - origins list", () => {
  const c = loadConfig({ ALLOWED_ORIGINS: "https://a.example, http://localhost:3000" });
  assert.deepEqual(c.ALLOWED_ORIGINS, ["https://a.example", "http://localhost:3000"]);
});

test("config - durations", () => {
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("2s"), 2000);
  assert.equal(parseDuration("10m"), 600_000);
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("1500"), 1500);
  assert.equal(parseDuration("-1s"), undefined);
  assert.equal(parseDuration("2 weeks"), undefined);
});
