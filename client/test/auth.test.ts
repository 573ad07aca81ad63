// Token refresh against a real server with AUTH_JWT_SECRET: the SDK refreshes
// before expires_at on the same socket, and after a refused refresh it takes
// the 4501 close, asks getToken for a new token and resumes.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { eventually } from "../../test/helpers/eventually.js";
import { startServer, type ServerProcess } from "../../test/helpers/server.js";
import { Roomcast, type RoomcastError, type StateEvent, type TokenReason } from "../src/index.js";
import { tap } from "./tapped-socket.js";

const SECRET = "client-test-secret-of-at-least-32-bytes";
const key = new TextEncoder().encode(SECRET);
let server: ServerProcess;
const clients: Roomcast[] = [];

function token(
  sub: string,
  ttlSeconds: number,
  claims: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(key);
}

before(async () => {
  server = await startServer({ AUTH_JWT_SECRET: SECRET, AUTH_CLOCK_SKEW: "0s" });
});

after(async () => {
  for (const c of clients) c.close();
  await server.stop();
});

test("client auth - refreshes before expires_at on the same connection", async () => {
  const reasons: TokenReason[] = [];
  const t = tap();
  const client = new Roomcast(server.wsUrl, {
    WebSocket: t.WebSocket,
    refreshMarginMs: 1_500,
    getToken: ({ reason }) => {
      reasons.push(reason);
      return token("alice", 3);
    },
  });
  clients.push(client);
  let refreshed = 0;
  client.on("refreshed", () => refreshed++);
  const room = client.room("auth-refresh");
  await eventually(() => room.joined);
  assert.equal(client.session?.userId, "alice");
  const firstExpiry = client.session?.expiresAt?.getTime() ?? 0;

  await eventually(() => refreshed >= 2, { timeoutMs: 10_000 });
  assert.equal(t.sockets.length, 1, "no reconnect");
  assert.equal(client.state, "open");
  assert.deepEqual(reasons.slice(0, 3), ["connect", "refresh", "refresh"]);
  assert.ok((client.session?.expiresAt?.getTime() ?? 0) > firstExpiry);
  const result = await room.publish("still here");
  assert.equal(result.duplicate, false);
});

test("client auth - a refused refresh, then 4501: a new token from getToken and a resume", async () => {
  const reasons: TokenReason[] = [];
  const states: StateEvent[] = [];
  const errors: RoomcastError[] = [];
  const client = new Roomcast(server.wsUrl, {
    WebSocket,
    refreshMarginMs: 1_000,
    reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    getToken: ({ reason }) => {
      reasons.push(reason);
      // A refresh token for another user is refused (unauthorized), so the
      // credential runs out and the server closes with 4501.
      return token(reason === "refresh" ? "mallory" : "bob", 2);
    },
  });
  clients.push(client);
  client.on("state", (s) => states.push(s));
  client.on("error", (e) => errors.push(e));
  const room = client.room("auth-4501");
  await eventually(() => room.joined);
  const member = client.session?.memberId;

  await eventually(() => states.some((s) => s.code === 4501), { timeoutMs: 10_000 });
  await eventually(() => client.state === "open" && room.joined);
  assert.ok(
    errors.some((e) => e.code === "unauthorized"),
    "the refresh was refused",
  );
  assert.ok(reasons.includes("expired"), `getToken reasons: ${reasons.join(",")}`);
  assert.equal(client.session?.resumed, true);
  assert.equal(client.session?.memberId, member);
  assert.equal(client.session?.userId, "bob");
  client.close();
});

test("client auth - a join outside the token's rooms: an error event, its publishes rejected", async () => {
  const client = new Roomcast(server.wsUrl, {
    WebSocket,
    getToken: () => token("carol", 60, { rooms: ["open-*"] }),
  });
  clients.push(client);
  const denied = client.room("closed-room");
  const errors: RoomcastError[] = [];
  denied.on("error", (e) => errors.push(e));
  const publish = denied.publish("never stored");
  await assert.rejects(publish, (err: RoomcastError) => err.code === "forbidden");
  assert.deepEqual(
    errors.map((e) => [e.code, e.ref]),
    [["forbidden", "closed-room"]],
  );
  assert.equal(denied.joined, false);
  const allowed = client.room("open-1");
  assert.equal((await allowed.publish("fine")).offset, 1n);
  client.close();
});
