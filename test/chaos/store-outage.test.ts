// The store dies mid-stream and comes back, for PostgreSQL (a crash: immediate
// stop) and Redis (a stop of the AOF-backed server): publishes get
// `unavailable` and are never acknowledged, sockets stay open, nothing
// crashes, and service recovers by itself. (The Spanner emulator keeps data
// only in memory, so it has no restart to test.)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import {
  REDIS_AOF_EVERYSEC,
  redisServerAvailable,
  startRedisServer,
  type RedisServer,
} from "../helpers/redis.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

interface Outage {
  readonly name: string;
  readonly skip: boolean;
  /** Starts the store's server; returns the node settings for it. */
  start(): Promise<Record<string, string>>;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

function postgresOutage(): Outage {
  let pg: PostgresServer | undefined;
  return {
    name: "postgres",
    skip: !postgresAvailable() || Boolean(process.env["ROOMCAST_TEST_POSTGRES_URL"]),
    async start() {
      pg = await startPostgres();
      return { STORE: "postgres", POSTGRES_URL: await pg.createDatabase("outage") };
    },
    down: () => pg!.stop("immediate"),
    up: () => pg!.start(),
    close: async () => pg?.close(),
  };
}

function redisOutage(): Outage {
  let redis: RedisServer | undefined;
  return {
    name: "redis",
    skip: !redisServerAvailable(),
    async start() {
      redis = await startRedisServer({
        args: REDIS_AOF_EVERYSEC,
      });
      return { STORE: "redis", STORE_REDIS_URL: redis.url };
    },
    // SIGTERM: Redis writes its AOF out before it exits. (SIGKILL may lose
    // the last second of acknowledged appends: docs/operations.md.)
    down: () => redis!.stop(),
    up: () => redis!.start(),
    close: async () => redis?.close(),
  };
}

for (const outage of [postgresOutage(), redisOutage()]) {
  describe(`store outage - ${outage.name}`, { skip: outage.skip }, () => {
    let server: ServerProcess;
    before(async () => {
      const env = await outage.start();
      server = await startServer({ ...env, STORE_TIMEOUT: "500ms" });
    });
    after(async () => {
      await server.stop();
      await outage.close();
    });

    const readyz = async () => (await fetch(`${server.httpUrl}/readyz`)).status;

    test("store outage - unavailable, never acked, sockets open, recovery", async () => {
      const [a] = await TestClient.open(server.wsUrl);
      const [b] = await TestClient.open(server.wsUrl);
      for (const c of [a, b]) {
        c.send({ join_room: { room_id: "o" } });
        await c.next("room_joined");
      }
      for (let i = 0; i < 5; i++)
        a.send({ message: { target: "o", content: `up${i}`, message_id: `up${i}` } });
      for (let i = 0; i < 5; i++) await a.next("ack");

      await outage.down();
      for (let i = 0; i < 3; i++) {
        a.send({ message: { target: "o", content: `down${i}`, message_id: `down${i}` } });
        const e = await a.next("error", 10_000);
        assert.equal(e["code"], "unavailable");
        assert.equal(e["ref"], `down${i}`);
        assert.ok(Number(e["retry_after_ms"]) > 0);
      }
      assert.equal(await readyz(), 503);
      await assert.rejects(TestClient.connect(server.wsUrl), /HTTP 503/);
      assert.equal(
        (await fetch(`${server.httpUrl}/healthz`)).status,
        200,
        "liveness never depends on the store",
      );
      assert.equal(a.ws.readyState, WebSocket.OPEN);
      assert.equal(b.ws.readyState, WebSocket.OPEN);

      await outage.up();
      // Retry as a client would, with the same message_ids, until acknowledged.
      for (let i = 0; i < 3; i++) {
        await eventually(
          async () => {
            a.send({ message: { target: "o", content: `down${i}`, message_id: `down${i}` } });
            const reply = await Promise.race([
              a.next("ack", 2000, (x) => x["message_id"] === `down${i}`).then(() => "ack"),
              a.next("error", 2000).then(() => "error"),
            ]);
            return reply === "ack";
          },
          { timeoutMs: 20_000, intervalMs: 200 },
        );
      }
      await eventually(async () => (await readyz()) === 200);

      // A retry whose first attempt did land is acked again as a duplicate.
      const acks = a.all("ack").filter((x) => x["duplicate"] === false);
      assert.deepEqual(
        acks.map((x) => x["offset"]),
        ["1", "2", "3", "4", "5", "6", "7", "8"],
        "only stored messages were acknowledged, each once",
      );
      const got = [];
      for (let i = 0; i < 8; i++) got.push(await b.next("message"));
      assert.deepEqual(
        got.map((m) => m["message_id"]),
        ["up0", "up1", "up2", "up3", "up4", "down0", "down1", "down2"],
      );
      a.close();
      b.close();
    });
  });
}
