// Rate limits and abuse protection end to end, one real node per case:
// floods (accepted within burst + rate, every refusal coded with ref and
// retry_after_ms, members never see a refused message, a retry after the
// hint succeeds), the flood close, the room limit shared by two publishers,
// joins, handshakes (429 + Retry-After), `off`, slowloris, header floods,
// deep JSON and prototype keys.
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect as tcpConnect } from "node:net";
import { after, describe, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { JWT_SECRET, flood, tokenFor } from "../helpers/rate-flood.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const servers: ServerProcess[] = [];
const clients: TestClient[] = [];
after(async () => {
  for (const c of clients) c.ws.terminate();
  for (const s of servers) await s.stop();
});

async function server(env: Record<string, string>): Promise<ServerProcess> {
  const s = await startServer(env);
  servers.push(s);
  return s;
}

async function joined(
  s: ServerProcess,
  room: string,
  headers: Record<string, string> = {},
): Promise<TestClient> {
  const [c] = await TestClient.open(s.wsUrl, { headers });
  clients.push(c);
  c.send({ join_room: { room_id: room } });
  await c.next("room_joined");
  return c;
}

/** The raw HTTP answer to an upgrade attempt. */
function upgradeAttempt(
  s: ServerProcess,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${s.httpUrl}/ws`, {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: "" });
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("rate limits - publish", () => {
  test("a flood is accepted within burst + rate; refusals carry ref and retry_after_ms; members see only accepted; the hinted retry succeeds", async () => {
    const s = await server({
      RATE_LIMIT_MESSAGES: "20/1s",
      RATE_LIMIT_MESSAGES_BURST: "10",
      RATE_LIMIT_CLOSE_AFTER: "0",
    });
    const watcher = await joined(s, "flood");
    const publisher = await joined(s, "flood");
    const started = Date.now();
    const r = await flood(publisher, "flood", 100, "f");
    const elapsed = Date.now() - started;
    const allowed = 10 + Math.floor((elapsed / 1000) * 20) + 1;
    assert.ok(r.acked.length >= 10, `acked ${r.acked.length}`);
    assert.ok(r.acked.length <= allowed, `acked ${r.acked.length} > ${allowed} in ${elapsed} ms`);
    assert.equal(r.acked.length + r.refused.length, 100);
    for (const e of r.refused) {
      assert.equal(e.code, "rate_limited");
      assert.match(e.ref, /^f-\d+$/);
      assert.ok(e.retryAfterMs > 0 && e.retryAfterMs <= 50, `retry ${e.retryAfterMs}`);
    }
    // Members see exactly the accepted messages, none of the refused ones.
    const seen = await eventually(() => {
      const got = watcher.all("message").map((m) => String(m["content"]));
      return got.length >= r.acked.length && got;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      watcher.all("message").map((m) => String(m["content"])),
      seen,
    );
    assert.deepEqual([...seen].sort(), [...r.acked].sort());
    // Each refusal is counted by its limit.
    const scraped = await (await fetch(`${s.httpUrl}/metrics`)).text();
    const counted = /^roomcast_rate_limited_total\{limit="messages"\} (\d+)$/m.exec(scraped);
    assert.equal(Number(counted?.[1]), r.refused.length);
    assert.match(scraped, /^roomcast_rate_limited_total\{limit="room_messages"\} 0$/m);
    // The same message_id after the hint is a normal publish (not a duplicate).
    const first = r.refused[0]!;
    await new Promise((resolve) => setTimeout(resolve, first.retryAfterMs + 100));
    publisher.send({ message: { target: "flood", content: "again", message_id: first.ref } });
    const ack = await publisher.next("ack", 5000, (a) => a["message_id"] === first.ref);
    assert.equal(ack["duplicate"], false);
    await eventually(() => watcher.all("message").some((m) => m["content"] === "again"));
  });

  test("a connection that keeps flooding after refusals is closed with 1008; others carry on", async () => {
    const s = await server({
      RATE_LIMIT_MESSAGES: "10/1s",
      RATE_LIMIT_CLOSE_AFTER: "20",
    });
    const other = await joined(s, "close");
    const flooder = await joined(s, "close");
    for (let i = 0; i < 200; i++) flooder.send({ message: { target: "close", content: `x${i}` } });
    const closed = await flooder.closed;
    assert.equal(closed.code, 1008);
    assert.ok(flooder.all("error").length >= 20);
    other.send({ message: { target: "close", content: "still here" } });
    await other.next("ack");
  });

  test("the room limit is shared by two publishers", async () => {
    const s = await server({
      RATE_LIMIT_MESSAGES: "off",
      RATE_LIMIT_ROOM_MESSAGES: "10/10s",
      RATE_LIMIT_CLOSE_AFTER: "0",
    });
    const [a, b] = [await joined(s, "shared"), await joined(s, "shared")];
    const started = Date.now();
    const [ra, rb] = await Promise.all([flood(a, "shared", 30, "a"), flood(b, "shared", 30, "b")]);
    const elapsed = Date.now() - started;
    const total = ra.acked.length + rb.acked.length;
    assert.ok(total >= 10 && total <= 10 + Math.ceil(elapsed / 1000), `accepted ${total}`);
    for (const e of [...ra.refused, ...rb.refused]) assert.equal(e.code, "rate_limited");
    // Another room is not affected.
    const c = await joined(s, "elsewhere");
    assert.equal((await flood(c, "elsewhere", 5, "c")).acked.length, 5);
  });

  test("the limit is per user across its connections", async () => {
    const s = await server({
      AUTH_JWT_SECRET: JWT_SECRET,
      RATE_LIMIT_MESSAGES: "10/1m",
      RATE_LIMIT_CLOSE_AFTER: "0",
    });
    const auth = async (sub: string) => ({ Authorization: `Bearer ${await tokenFor(sub)}` });
    const [u1, u2] = [await joined(s, "u", await auth("u")), await joined(s, "u", await auth("u"))];
    const v = await joined(s, "u", await auth("v"));
    const [r1, r2] = await Promise.all([flood(u1, "u", 10, "u1"), flood(u2, "u", 10, "u2")]);
    assert.equal(r1.acked.length + r2.acked.length, 10);
    assert.equal((await flood(v, "u", 10, "v")).acked.length, 10, "another user is unaffected");
  });

  test("off lets everything through", async () => {
    const s = await server({
      RATE_LIMIT_MESSAGES: "off",
      RATE_LIMIT_ROOM_MESSAGES: "off",
      RATE_LIMIT_JOINS: "off",
      RATE_LIMIT_HANDSHAKES: "off",
    });
    const c = await joined(s, "free");
    const r = await flood(c, "free", 500, "o");
    assert.equal(r.acked.length, 500);
    for (let i = 0; i < 150; i++) c.send({ join_room: { room_id: `free-${i}` } });
    await eventually(() => c.all("room_joined").length + c.all("error").length >= 151);
    assert.ok(c.all("error").every((e) => e["code"] === "too_many_rooms"));
  });
});

describe("rate limits - joins and handshakes", () => {
  test("joins over the limit get rate_limited with the room as ref and no room_joined", async () => {
    const s = await server({ RATE_LIMIT_JOINS: "5/10s", RATE_LIMIT_CLOSE_AFTER: "0" });
    const [c] = await TestClient.open(s.wsUrl);
    clients.push(c);
    for (let i = 0; i < 8; i++) c.send({ join_room: { room_id: `j${i}` } });
    await eventually(() => c.all("room_joined").length + c.all("error").length >= 8);
    assert.equal(c.all("room_joined").length, 5);
    const errors = c.all("error");
    assert.deepEqual(
      errors.map((e) => [e["code"], e["ref"]]),
      [5, 6, 7].map((i) => ["rate_limited", `j${i}`]),
    );
    assert.ok(errors.every((e) => Number(e["retry_after_ms"]) > 0));
  });

  test("handshakes over the limit get 429 with Retry-After before the upgrade", async () => {
    const s = await server({ RATE_LIMIT_HANDSHAKES: "3/10s" });
    for (let i = 0; i < 3; i++) assert.equal((await upgradeAttempt(s)).status, 101);
    const refused = await upgradeAttempt(s);
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers["retry-after"]);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 4, `${retryAfter}`);
    assert.equal(
      (JSON.parse(refused.body) as { error: { code: string } }).error.code,
      "rate_limited",
    );
    const health = await fetch(`${s.httpUrl}/healthz`);
    assert.equal(health.status, 200);
  });
});

describe("abuse protection", () => {
  test("a slowloris client is cut off within the handshake timeout while others are served", async () => {
    const s = await server({ HANDSHAKE_TIMEOUT: "1s" });
    const socket = tcpConnect(s.port, "127.0.0.1");
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (answer += d));
    socket.on("error", () => undefined);
    const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(Date.now())));
    await new Promise((resolve) => socket.once("connect", resolve));
    const opened = Date.now();
    socket.write("GET /ws HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => socket.writable && socket.write("X-A: b\r\n"), 100);
    const c = await joined(s, "served");
    c.send({ message: { target: "served", content: "ok" } });
    await c.next("ack");
    const at = await closed;
    clearInterval(drip);
    assert.ok(at - opened < 2500, `cut after ${at - opened} ms`);
    assert.match(answer, /^HTTP\/1\.1 408/);
  });

  test("a request with hundreds of headers is not upgraded and the node keeps serving", async () => {
    const s = await server({});
    const junk = Array.from({ length: 300 }, (_, i) => `X-Junk-${i}: ${"v".repeat(20)}`);
    const answer = await new Promise<string>((resolve) => {
      const socket = tcpConnect(s.port, "127.0.0.1", () => {
        socket.write(
          [
            "GET /ws HTTP/1.1",
            "Host: x",
            ...junk,
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "",
            "",
          ].join("\r\n"),
        );
      });
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => (text += d));
      socket.on("error", () => resolve(text));
      socket.on("close", () => resolve(text));
      setTimeout(() => socket.destroy(), 2000);
    });
    assert.doesNotMatch(answer, /^HTTP\/1\.1 101/);
    await joined(s, "after-headers");
  });

  test("10,000-deep JSON is bad_request, prototype keys are harmless, the connection keeps working", async () => {
    const s = await server({});
    const c = await joined(s, "deep");
    c.ws.send(
      `{"message":{"target":"deep","content":"x","x":${"[".repeat(10_000)}${"]".repeat(10_000)}}}`,
    );
    const err = await c.next("error");
    assert.equal(err["code"], "bad_request");
    c.ws.send(
      '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},"message":{"target":"deep","content":"proto","__proto__":{"offset":"99"}}}',
    );
    const ack = await c.next("ack");
    assert.equal(ack["offset"], "1");
    const msg = await c.next("message");
    assert.equal(msg["content"], "proto");
    assert.equal(msg["offset"], "1");
  });
});
