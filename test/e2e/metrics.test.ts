// Metrics from a real node: a scripted session moves each counter by exactly
// what it did, read back through /metrics with a Prometheus text-format
// parser; METRICS_PORT serves them on that port only; METRICS_ENABLED=false
// serves nothing; no label value is a room, user or member id.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { Scrape } from "../helpers/metrics.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const ROOM = "metrics-room-7f3a";

describe("metrics - scripted session", () => {
  let server: ServerProcess;
  const clients: TestClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  });

  async function member(session?: string): Promise<[TestClient, Record<string, unknown>]> {
    const pair = await TestClient.open(server.wsUrl, session === undefined ? {} : { session });
    clients.push(pair[0]);
    return pair;
  }

  async function publish(c: TestClient, n: number, prefix: string): Promise<void> {
    for (let i = 0; i < n; i++) c.send({ message: { target: ROOM, content: `${prefix}-${i}` } });
    for (let i = 0; i < n; i++) await c.next("ack");
  }

  const scrape = () => Scrape.from(`${server.httpUrl}/metrics`);

  test("counters move by exactly what the clients did", async () => {
    server = await startServer({ STORE: "memory", ACK_FLUSH_INTERVAL: "50ms" });
    const before = await scrape();
    assert.equal(before.value("roomcast_connections"), 0);
    assert.equal(before.value("roomcast_messages_published_total"), 0);

    // Three members in one room; one publishes 10 messages.
    const [a] = await member();
    const [b] = await member();
    const [c, sessionC] = await member();
    for (const m of [a, b, c]) {
      m.send({ join_room: { room_id: ROOM } });
      await m.next("room_joined");
    }
    await publish(a, 10, "first");
    for (const m of [a, b, c]) for (let i = 0; i < 10; i++) await m.next("message");

    let s = await scrape();
    assert.equal(s.value("roomcast_connections"), 3);
    assert.equal(s.value("roomcast_rooms"), 1);
    assert.equal(s.value("roomcast_messages_published_total"), 10);
    assert.equal(s.value("roomcast_messages_delivered_total"), 30);
    assert.equal(s.histogram("roomcast_publish_duration_seconds").count, 10);
    assert.equal(s.histogram("roomcast_store_duration_seconds", { operation: "append" }).count, 10);
    assert.ok(
      s.histogram("roomcast_store_duration_seconds", { operation: "create_session" }).count >= 3,
    );

    // Errors by code.
    a.send({ message: { target: "never-joined", content: "x" } });
    await a.next("error");
    a.send({ join_room: { room_id: "not a room id!" } });
    await a.next("error");
    s = await scrape();
    assert.equal(s.value("roomcast_errors_total", { code: "not_joined" }), 1);
    assert.equal(s.value("roomcast_errors_total", { code: "invalid_room" }), 1);

    // C leaves (close 1000), misses 2 messages, resumes and gets them replayed.
    c.ws.close(1000);
    await c.closed;
    await eventually(async () => (await scrape()).value("roomcast_connections") === 2);
    await publish(a, 2, "while-away");
    for (const m of [a, b]) for (let i = 0; i < 2; i++) await m.next("message");
    const [c2] = await member(String(sessionC["token"]));
    for (let i = 0; i < 2; i++) await c2.next("message");
    // A token nobody issued: a failed resume (and a fresh session).
    const [d] = await member("not-a-token");
    d.ws.close(4000 + 999);
    await d.closed;

    s = await eventually(async () => {
      const next = await scrape();
      return next.value("roomcast_connections") === 3 ? next : undefined;
    });
    assert.equal(s.value("roomcast_messages_published_total"), 12);
    // 30 + 2 × 2 live + 2 replayed to C.
    assert.equal(s.value("roomcast_messages_delivered_total"), 36);
    assert.equal(s.value("roomcast_resumes_total", { result: "resumed" }), 1);
    assert.equal(s.value("roomcast_resumes_total", { result: "expired" }), 1);
    assert.deepEqual(s.histogram("roomcast_replay_messages"), { count: 1, sum: 2 });
    assert.equal(s.value("roomcast_disconnects_total", { code: "1000" }), 1);
    // An unregistered close code is counted, under "other".
    assert.equal(s.value("roomcast_disconnects_total", { code: "other" }), 1);
    assert.equal(s.value("roomcast_rooms"), 1);
    // Five upgrades (A, B, C, C again, D), all connected.
    assert.equal(s.value("roomcast_upgrades_total", { status: "101" }), 5);

    // A refused upgrade (no supported subprotocol) counts by its status.
    await assert.rejects(TestClient.connect(server.wsUrl, { protocols: "nope.v9" }), /HTTP 400/);
    s = await eventually(async () => {
      const next = await scrape();
      return next.value("roomcast_upgrades_total", { status: "400" }) === 1 ? next : undefined;
    });

    // No label value anywhere is one of the ids this session used.
    const ids = [ROOM, String(sessionC["member_id"]), String(sessionC["token"])];
    for (const value of s.labelValues()) assert.ok(!ids.includes(value), value);
    assert.ok(!s.text.includes(ROOM));

    // Standard process and Node.js metrics are there.
    assert.ok(s.families.has("process_cpu_seconds_total"));
    assert.ok(s.families.has("nodejs_eventloop_lag_p99_seconds"));
  });
});

describe("metrics - where they are served", () => {
  const servers: ServerProcess[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  test("METRICS_PORT serves them on that port only, at METRICS_PATH", async () => {
    const server = await startServer({ METRICS_PORT: "0", METRICS_PATH: "/internal/prom" });
    servers.push(server);
    const listening = server.logs.find((r) => r["msg"] === "listening");
    const metricsPort = Number(listening?.["metricsPort"]);
    assert.ok(metricsPort > 0 && metricsPort !== server.port);
    const s = await Scrape.from(`http://127.0.0.1:${metricsPort}/internal/prom`);
    assert.equal(s.value("roomcast_connections"), 0);
    // Not on the main port, and only at its path on its own port.
    assert.equal((await fetch(`${server.httpUrl}/internal/prom`)).status, 404);
    assert.equal((await fetch(`${server.httpUrl}/metrics`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status, 404);
    // The main port still serves health.
    assert.equal((await fetch(`${server.httpUrl}/healthz`)).status, 200);
  });

  test("METRICS_ENABLED=false serves nothing", async () => {
    const server = await startServer({ METRICS_ENABLED: "false" });
    servers.push(server);
    assert.equal((await fetch(`${server.httpUrl}/metrics`)).status, 404);
  });
});
