// The server API and presence on one real node (memory store and broker):
// publish reaches WebSocket members with the right offset, an idempotent
// repeat, the key check, the API off, bad input (room, JSON, size), history
// paging, presence, and disconnect (4502, no resume).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import { API_TEST_KEY, API_TEST_SECRET as SECRET, api, token } from "../helpers/api.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const KEY = API_TEST_KEY;

const code = (r: { body: Record<string, unknown> }) =>
  (r.body["error"] as Record<string, unknown> | undefined)?.["code"];

describe("server API - one node", () => {
  let node: ServerProcess;
  let off: ServerProcess;
  const clients: TestClient[] = [];

  async function member(room: string, sub = "u", presence = false) {
    const [c, s] = await TestClient.open(node.wsUrl, {
      headers: { Authorization: `Bearer ${await token(sub)}` },
    });
    clients.push(c);
    c.send({ join_room: { room_id: room, presence } });
    await c.next("room_joined");
    return [c, s] as const;
  }

  before(async () => {
    [node, off] = await Promise.all([
      startServer({
        API_KEY: ` old-key , ${KEY} `,
        AUTH_JWT_SECRET: SECRET,
        MAX_MESSAGE_BYTES: "4096",
      }),
      startServer({}),
    ]);
  });

  after(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all([node.stop(), off.stop()]);
  });

  test("publish reaches members with the next offset and sender_id server; a repeat is a duplicate", async () => {
    const [c] = await member("orders");
    c.send({ message: { target: "orders", content: "from ws" } });
    assert.equal((await c.next("ack"))["offset"], "1");
    const first = await api(node, "POST", "/api/v1/rooms/orders/messages", {
      content: "shipped",
      message_id: "order-7",
    });
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, {
      room_id: "orders",
      message_id: "order-7",
      offset: "2",
      duplicate: false,
    });
    await c.next("message");
    const got = await c.next("message");
    assert.equal(got["offset"], "2");
    assert.equal(got["content"], "shipped");
    assert.equal(got["sender_id"], "server");
    const again = await api(node, "POST", "/api/v1/rooms/orders/messages", {
      content: "shipped",
      message_id: "order-7",
    });
    assert.deepEqual(again.body, { ...first.body, duplicate: true });
    // Either key of the comma-separated list works (rotation), scheme case-insensitive.
    const res = await fetch(`${node.httpUrl}/api/v1/rooms/orders/messages`, {
      method: "POST",
      headers: { Authorization: "bearer old-key" },
      body: JSON.stringify({ content: "x" }),
    });
    assert.equal(res.status, 200);
  });

  test("errors: bad key 401, API off 404, invalid room 400, bad JSON 400, oversized 413", async () => {
    const bad = await api(node, "POST", "/api/v1/rooms/r/messages", { content: "x" }, "nope");
    assert.equal(bad.status, 401);
    assert.equal(code(bad), "unauthorized");
    assert.equal(bad.headers.get("www-authenticate"), "Bearer");
    assert.equal((await api(node, "GET", "/api/v1/rooms/r/presence", undefined, null)).status, 401);

    const offRes = await api(off, "POST", "/api/v1/rooms/r/messages", { content: "x" });
    assert.equal(offRes.status, 404);
    assert.equal(code(offRes), "not_found");

    const invalid = await api(node, "POST", "/api/v1/rooms/bad%20room/messages", { content: "x" });
    assert.equal(invalid.status, 400);
    assert.equal(code(invalid), "invalid_room");

    for (const body of ["{not json", "[1]", "null", JSON.stringify({ content: 5 })]) {
      const r = await api(node, "POST", "/api/v1/rooms/r/messages", body);
      assert.equal(r.status, 400, body);
      assert.equal(code(r), "bad_request");
    }
    const big = await api(node, "POST", "/api/v1/rooms/r/messages", { content: "x".repeat(5000) });
    assert.equal(big.status, 413);
    assert.equal(code(big), "too_large");

    const malformed = await api(node, "POST", "/api/v1/users/a%ZZ/disconnect");
    assert.equal(malformed.status, 400);
    assert.equal(code(malformed), "bad_request");

    const unknown = await api(node, "GET", "/api/v1/nothing-here");
    assert.equal(unknown.status, 404);
    assert.equal(code(unknown), "not_found");
    // Percent-decoded path segments: ':' and '@' are room id characters.
    const decoded = await api(node, "POST", "/api/v1/rooms/chat%3Alobby%40x/messages", {
      content: "y",
    });
    assert.equal(decoded.body["room_id"], "chat:lobby@x");
    // The node survived all of it.
    assert.equal((await fetch(`${node.httpUrl}/healthz`)).status, 200);
  });

  test("history: since and limit page through; beyond the head is offset_out_of_range", async () => {
    const room = "hist";
    for (let i = 1; i <= 5; i++) {
      await api(node, "POST", `/api/v1/rooms/${room}/messages`, { content: `m${i}` });
    }
    const empty = await api(node, "GET", "/api/v1/rooms/never-used/history");
    assert.equal(empty.status, 200);
    assert.equal(empty.body["offset"], "0");
    assert.deepEqual(empty.body["messages"], []);

    const page1 = await api(node, "GET", `/api/v1/rooms/${room}/history?limit=2`);
    assert.equal(page1.body["offset"], "5");
    assert.equal(typeof page1.body["epoch"], "string");
    const msgs1 = page1.body["messages"] as Record<string, unknown>[];
    assert.deepEqual(
      msgs1.map((m) => [m["offset"], m["content"], m["sender_id"]]),
      [
        ["1", "m1", "server"],
        ["2", "m2", "server"],
      ],
    );
    const page2 = await api(node, "GET", `/api/v1/rooms/${room}/history?since=2&limit=2`);
    assert.deepEqual(
      (page2.body["messages"] as Record<string, unknown>[]).map((m) => m["offset"]),
      ["3", "4"],
    );
    const rest = await api(node, "GET", `/api/v1/rooms/${room}/history?since=4&limit=99999`);
    assert.deepEqual(
      (rest.body["messages"] as Record<string, unknown>[]).map((m) => m["offset"]),
      ["5"],
    );
    const beyond = await api(node, "GET", `/api/v1/rooms/${room}/history?since=6`);
    assert.equal(beyond.status, 400);
    assert.equal(code(beyond), "offset_out_of_range");
    const malformed = await api(node, "GET", `/api/v1/rooms/${room}/history?limit=-1`);
    assert.equal(code(malformed), "bad_request");
  });

  test("presence: the API and a watcher see who is in the room; diffs on join and close", async () => {
    const room = "lobby";
    const [watcher, ws] = await member(room, "alice", true);
    const state = await watcher.next("presence_state");
    assert.deepEqual(state["members"], [{ member_id: ws["member_id"], user_id: "alice" }]);
    const [bob, bs] = await member(room, "bob");
    const joined = await watcher.next("presence_diff");
    assert.deepEqual(joined["joined"], [{ member_id: bs["member_id"], user_id: "bob" }]);
    const seen = await api(node, "GET", `/api/v1/rooms/${room}/presence`);
    assert.equal(seen.status, 200);
    assert.deepEqual(
      (seen.body["members"] as Record<string, unknown>[]).map((m) => m["user_id"]).sort(),
      ["alice", "bob"],
    );
    bob.close();
    const left = await watcher.next("presence_diff");
    assert.deepEqual(left["left"], [{ member_id: bs["member_id"], user_id: "bob" }]);
    assert.equal(bob.all("presence_state").length + bob.all("presence_diff").length, 0);
  });

  test("disconnect: every socket of the user closes with 4502; its session no longer resumes", async () => {
    const [c1, s1] = await member("d", "carol");
    const [c2] = await member("d", "carol");
    const [other] = await member("d", "dave");
    const res = await api(node, "POST", "/api/v1/users/carol/disconnect");
    assert.equal(res.status, 202);
    assert.equal((await c1.closed).code, 4502);
    assert.equal((await c2.closed).code, 4502);
    const [again, session] = await TestClient.open(node.wsUrl, {
      session: String(s1["token"]),
      headers: { Authorization: `Bearer ${await token("carol")}` },
    });
    clients.push(again);
    assert.equal(session["resumed"], false); // not a ban: a fresh session
    assert.equal(other.ws.readyState, other.ws.OPEN);
    assert.equal((await api(node, "POST", "/api/v1/users/nobody/disconnect")).status, 202);
  });
});
