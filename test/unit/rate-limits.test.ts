// GCRA arithmetic, the RateLimits rules (whose quota, refund on a room
// refusal), the local fallback of RATE_LIMIT_DISTRIBUTED, rate parsing, and
// the router's refused publish and join: nothing stored, delivered or acked.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { MemoryBroker } from "../../src/adapters/broker/memory-broker.js";
import { FallbackLimiter } from "../../src/adapters/ratelimit/fallback-limiter.js";
import { gcra } from "../../src/adapters/ratelimit/gcra.js";
import { MemoryLimiter } from "../../src/adapters/ratelimit/memory-limiter.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { ConfigError, loadConfig } from "../../src/config/load.js";
import { parseRate } from "../../src/config/rate.js";
import { rateLimitBackend } from "../../src/adapters.js";
import { RateLimits, type RateLimitSettings } from "../../src/core/rate-limits.js";
import { Router } from "../../src/core/router.js";
import { silentLogger } from "../../src/observability/logging.js";
import { CloseCode, ErrorCode, WireError } from "../../src/protocol/errors.js";
import { MessageSchema } from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";
import type { Decision, Rate, RateLimiter } from "../../src/ports/rate-limiter.js";
import { eventually } from "../helpers/eventually.js";
import { RecordingOutlet } from "../helpers/recording-outlet.js";
import { routerOptions, settle } from "../helpers/core.js";

describe("rate limits - gcra", () => {
  test("burst from rest, then one per interval, refusals unchanged", () => {
    const rate = { intervalMs: 10, burst: 3 };
    let tat: number | undefined;
    const passed: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const s = gcra(tat, 1000, rate);
      passed.push(s.allowed);
      if (s.allowed) tat = s.tat;
      else assert.equal(s.retryAfterMs, 10);
    }
    assert.deepEqual(passed, [true, true, true, false]);
    assert.equal(gcra(tat, 1010, rate).allowed, true);
  });
});

describe("rate limits - config", () => {
  test("N/DURATION and off", () => {
    assert.deepEqual(parseRate("20/1s"), { count: 20, periodMs: 1000 });
    assert.deepEqual(parseRate("600/1m"), { count: 600, periodMs: 60_000 });
    assert.equal(parseRate("off"), null);
    for (const bad of ["0/1s", "20", "20/", "x/1s", "20/0s", "-1/1s", "OFF"]) {
      assert.equal(parseRate(bad), undefined, bad);
    }
  });

  test("variables: defaults, off, bad values named, the distributed backend", () => {
    const defaults = loadConfig({});
    assert.deepEqual(defaults.RATE_LIMIT_MESSAGES, { count: 100, periodMs: 1000 });
    assert.equal(defaults.RATE_LIMIT_MESSAGES_BURST, undefined);
    assert.equal(defaults.RATE_LIMIT_DISTRIBUTED, false);
    assert.equal(loadConfig({ RATE_LIMIT_JOINS: "off" }).RATE_LIMIT_JOINS, null);
    assert.throws(
      () => loadConfig({ RATE_LIMIT_ROOM_MESSAGES: "fast" }),
      /RATE_LIMIT_ROOM_MESSAGES/,
    );
    assert.throws(
      () => loadConfig({ RATE_LIMIT_DISTRIBUTED: "true", RATE_LIMIT_BACKEND: "postgres" }),
      ConfigError,
    );
    assert.equal(rateLimitBackend(loadConfig({ BROKER: "redis", STORE: "memory" })), "redis");
    const pgUrl = "postgres://h/db";
    assert.equal(
      rateLimitBackend(loadConfig({ BROKER: "nats", STORE: "postgres", POSTGRES_URL: pgUrl })),
      "postgres",
    );
    assert.equal(rateLimitBackend(loadConfig({ STORE: "memory" })), undefined);
    // A Redis Cluster's seed list is no place for the limiter: the SQL store, or its own Redis.
    const cluster = { BROKER: "redis", REDIS_CLUSTER: "true" };
    assert.equal(
      rateLimitBackend(loadConfig({ ...cluster, STORE: "postgres", POSTGRES_URL: pgUrl })),
      "postgres",
    );
    assert.equal(
      rateLimitBackend(loadConfig({ ...cluster, RATE_LIMIT_REDIS_URL: "redis://r:6379" })),
      "redis",
    );
  });
});

/** A limiter whose backend can be switched off. */
class FlakyLimiter implements RateLimiter {
  readonly capabilities = { shared: true };
  readonly inner = new MemoryLimiter();
  down = false;
  hang = false;
  calls = 0;
  open(): Promise<void> {
    return Promise.resolve();
  }
  take(key: string, rate: Rate): Promise<Decision> {
    this.calls++;
    if (this.hang) return new Promise(() => undefined);
    if (this.down) return Promise.reject(new Error("ECONNREFUSED"));
    return this.inner.take(key, rate);
  }
  refund(key: string, rate: Rate): Promise<void> {
    if (this.down) return Promise.reject(new Error("ECONNREFUSED"));
    return this.inner.refund(key, rate);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe("rate limits - fallback", () => {
  test("a failing or hanging backend falls back to the same limit locally, then recovers", async () => {
    const shared = new FlakyLimiter();
    const events: string[] = [];
    const limiter = new FallbackLimiter(shared, new MemoryLimiter(), {
      timeoutMs: 50,
      retryMs: 100,
      log: silentLogger(),
      onFallback: () => events.push("fallback"),
      onRestore: () => events.push("restore"),
    });
    await limiter.open();
    const rate = { intervalMs: 60_000, burst: 3 };
    assert.equal((await limiter.take("k", rate)).allowed, true);
    shared.down = true;
    // The same limit holds locally: 3 pass there, the 4th is refused.
    const local = [];
    for (let i = 0; i < 4; i++) local.push((await limiter.take("k", rate)).allowed);
    assert.deepEqual(local, [true, true, true, false]);
    assert.equal(limiter.fallenBack, true);
    assert.deepEqual(events, ["fallback"]);
    const callsWhileDown = shared.calls;
    await limiter.take("k", rate);
    assert.equal(shared.calls, callsWhileDown, "no probe before retryMs");
    shared.down = false;
    await new Promise((r) => setTimeout(r, 120));
    assert.equal((await limiter.take("k", rate)).allowed, true);
    assert.equal(limiter.fallenBack, false);
    shared.hang = true;
    await new Promise((r) => setTimeout(r, 120));
    const started = Date.now();
    assert.equal((await limiter.take("other", rate)).allowed, true);
    assert.ok(Date.now() - started < 1000);
    assert.deepEqual(events, ["fallback", "restore", "fallback"]);
    await limiter.close();
  });

  test("a backend down at start is opened later, when it is back", async () => {
    const shared = new FlakyLimiter();
    let opens = 0;
    shared.open = () => (++opens === 1 ? Promise.reject(new Error("down")) : Promise.resolve());
    const limiter = new FallbackLimiter(shared, new MemoryLimiter(), {
      timeoutMs: 50,
      retryMs: 50,
      log: silentLogger(),
    });
    await limiter.open();
    const rate = { intervalMs: 60_000, burst: 1 };
    assert.equal(limiter.fallenBack, true);
    assert.equal((await limiter.take("k", rate)).allowed, true);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal((await limiter.take("k2", rate)).allowed, true);
    assert.equal(opens, 2);
    assert.equal(limiter.fallenBack, false);
    assert.equal(shared.calls, 1);
  });
});

describe("rate limits - rules", () => {
  const settings: RateLimitSettings = {
    messages: { intervalMs: 60_000, burst: 2 },
    roomMessages: { intervalMs: 60_000, burst: 3 },
    closeAfter: 0,
  };

  test("a publish refused by the room limit gives the user's quota back", async () => {
    const limiter = new MemoryLimiter();
    const limits = new RateLimits(settings, limiter, limiter);
    assert.equal(await limits.publish("r", { user: "a" }), 0);
    assert.equal(await limits.publish("r", { user: "b" }), 0);
    assert.equal(await limits.publish("r", { user: "b" }), 0);
    assert.ok((await limits.publish("r", { user: "a" })) > 0, "room is full");
    // a's refused publish consumed nothing: a still has one in another room.
    assert.equal(await limits.publish("r2", { user: "a" }), 0);
    assert.ok((await limits.publish("r3", { user: "a" })) > 0);
  });

  test("the server spends only the room's quota; anonymous connections their own", async () => {
    const limiter = new MemoryLimiter();
    const limits = new RateLimits(settings, limiter, limiter);
    for (let i = 0; i < 3; i++) assert.equal(await limits.publish("s", undefined), 0);
    assert.ok((await limits.publish("s", undefined)) > 0);
    assert.equal(await limits.publish("t", { connection: "c1" }), 0);
    assert.equal(await limits.publish("t", { connection: "c1" }), 0);
    assert.ok((await limits.publish("t", { connection: "c1" })) > 0);
    assert.equal(await limits.publish("t", { connection: "c2" }), 0);
  });

  test("off limits never refuse", async () => {
    const limits = RateLimits.off(new MemoryLimiter());
    for (let i = 0; i < 1000; i++) assert.equal(await limits.publish("r", { user: "u" }), 0);
    assert.equal(await limits.join("c"), 0);
    assert.equal(await limits.handshake("1.2.3.4"), 0);
  });
});

describe("rate limits - router", () => {
  const routers: Router[] = [];
  after(async () => {
    for (const r of routers) await r.close();
  });

  async function setup(settings: RateLimitSettings) {
    const store = new MemoryStore({ dedupWindowMs: 60_000 });
    const broker = new MemoryBroker();
    await broker.open();
    const limiter = new MemoryLimiter();
    const router = new Router(
      store,
      broker,
      routerOptions,
      silentLogger(),
      undefined,
      new RateLimits(settings, limiter, limiter),
    );
    await router.start();
    routers.push(router);
    const connect = async () => {
      const outlet = new RecordingOutlet();
      const member = router.attach(await router.openSession(undefined), outlet);
      const send = (frame: object) =>
        member.receive(new TextEncoder().encode(JSON.stringify(frame)));
      return { outlet, member, send };
    };
    return { router, store, connect };
  }

  test("a refused publish is not stored, delivered or acked, and its id works later", async () => {
    const { store, connect } = await setup({
      messages: { intervalMs: 200, burst: 2 },
      closeAfter: 0,
    });
    const a = await connect();
    const watcher = await connect();
    for (const c of [a, watcher]) c.send({ join_room: { room_id: "r" } });
    await eventually(() => a.outlet.kinds("roomJoined").length === 1);
    await eventually(() => watcher.outlet.kinds("roomJoined").length === 1);
    for (const id of ["m1", "m2", "m3"])
      a.send({ message: { target: "r", content: id, message_id: id } });
    await eventually(() => a.outlet.kinds("error").length === 1);
    const err = a.outlet.kinds("error")[0]!;
    assert.equal(err.code, ErrorCode.RateLimited);
    assert.equal(err.ref, "m3");
    assert.ok((err.retryAfterMs ?? 0) > 0 && (err.retryAfterMs ?? 0) <= 200);
    await eventually(() => a.outlet.kinds("ack").length === 2);
    await settle();
    assert.deepEqual(
      watcher.outlet.kinds("message").map((m) => m.content),
      ["m1", "m2"],
    );
    assert.equal((await store.read("r", 0n, 10)).messages.length, 2);
    await new Promise((r) => setTimeout(r, err.retryAfterMs ?? 0));
    a.send({ message: { target: "r", content: "m3", message_id: "m3" } });
    await eventually(() => a.outlet.kinds("ack").length === 3);
    assert.equal(a.outlet.kinds("ack")[2]!.duplicate, false);
    // The server API obeys the room limit through the same path.
    const limited = await setup({ roomMessages: { intervalMs: 60_000, burst: 1 }, closeAfter: 0 });
    const msg = create(MessageSchema, { target: "s", content: "x" });
    await limited.router.publish("s", msg, { senderId: "server" });
    await assert.rejects(
      limited.router.publish("s", msg, { senderId: "server" }),
      (e: unknown) => e instanceof WireError && e.code === ErrorCode.RateLimited,
    );
  });

  test("joins over the limit get rate_limited with the room as ref; flooding closes with 1008", async () => {
    const { connect } = await setup({ joins: { intervalMs: 60_000, burst: 2 }, closeAfter: 5 });
    const c = await connect();
    for (let i = 0; i < 3; i++) c.send({ join_room: { room_id: `j${i}` } });
    await eventually(() => c.outlet.kinds("error").length === 1);
    assert.equal(c.outlet.kinds("roomJoined").length, 2);
    const err = c.outlet.kinds("error")[0]!;
    assert.deepEqual([err.code, err.ref], [ErrorCode.RateLimited, "j2"]);
    for (let i = 3; i < 20; i++) c.send({ join_room: { room_id: `j${i}` } });
    await eventually(() => c.outlet.closedWith === CloseCode.PolicyViolation);
    assert.equal(c.outlet.kinds("error").length, 5);
  });
});
