// The store (a private PostgreSQL) dies mid-stream and comes back: publishes
// get `unavailable` and are never acknowledged, sockets stay open, nothing
// crashes, and service recovers by itself.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const skip = !postgresAvailable() || Boolean(process.env["ROOMCAST_TEST_POSTGRES_URL"]);
let pg: PostgresServer;
let server: ServerProcess;

before(async () => {
  if (skip) return;
  pg = await startPostgres();
  const url = await pg.createDatabase("outage");
  server = await startServer({ STORE: "postgres", POSTGRES_URL: url, STORE_TIMEOUT: "500ms" });
});
after(async () => {
  if (skip) return;
  await server.stop();
  await pg.close();
});

const readyz = async () => (await fetch(`${server.httpUrl}/readyz`)).status;

test("store outage - unavailable, never acked, sockets open, recovery", { skip }, async () => {
  const [a] = await TestClient.open(server.wsUrl);
  const [b] = await TestClient.open(server.wsUrl);
  for (const c of [a, b]) {
    c.send({ join_room: { room_id: "o" } });
    await c.next("room_joined");
  }
  for (let i = 0; i < 5; i++)
    a.send({ message: { target: "o", content: `up${i}`, message_id: `up${i}` } });
  for (let i = 0; i < 5; i++) await a.next("ack");

  await pg.stop("immediate");
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

  await pg.start();
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
