// The broker guard against a broker that hangs rather than refuses: a
// SIGSTOPped redis-server keeps its TCP connections open, so the adapter still
// reports "connected" and a publish waits for a reply that does not come.
// The guard turns that into a timeout, then fast circuit_open refusals, and
// service returns after SIGCONT without a reconnect.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { GuardedBroker } from "../../src/adapters/broker/guarded-broker.js";
import { BrokerErrorCode } from "../../src/adapters/broker/broker-error.js";
import { RedisBroker } from "../../src/adapters/broker/redis-broker.js";
import { eventually } from "../helpers/eventually.js";
import { redisServerAvailable, startRedisServer, type RedisServer } from "../helpers/redis.js";

const skip = !redisServerAvailable();
let server: RedisServer;

before(async () => {
  if (!skip) server = await startRedisServer();
});
after(async () => {
  server?.signal("SIGCONT");
  await server?.close();
});

test(
  "broker guard - a hung Redis times out, opens the breaker, and recovers on SIGCONT",
  { skip },
  async () => {
    const broker = new GuardedBroker(new RedisBroker({ url: server.url }), {
      timeoutMs: 300,
      failures: 2,
      halfOpenAfterMs: 200,
    });
    await broker.open();
    const got: Uint8Array[] = [];
    await broker.subscribe("hang", (p) => got.push(p));
    await broker.publish("hang", new Uint8Array([1]));
    await eventually(() => got.length === 1);

    server.signal("SIGSTOP");
    try {
      for (let i = 0; i < 2; i++) {
        const started = performance.now();
        await assert.rejects(broker.publish("hang", new Uint8Array([2])), {
          code: BrokerErrorCode.Timeout,
        });
        assert.ok(performance.now() - started < 1000, "the timeout bounds the wait");
      }
      assert.equal(broker.connected, true, "a hang is not a disconnect");
      assert.equal(broker.healthy, false);
      const started = performance.now();
      await assert.rejects(broker.publish("hang", new Uint8Array([3])), {
        code: BrokerErrorCode.CircuitOpen,
      });
      assert.ok(performance.now() - started < 50, "an open breaker refuses at once");
    } finally {
      server.signal("SIGCONT");
    }
    await eventually(async () => {
      await broker.publish("hang", new Uint8Array([4]));
      return true;
    });
    assert.equal(broker.healthy, true);
    await eventually(() => got.some((p) => p[0] === 4));
    await broker.close();
  },
);
