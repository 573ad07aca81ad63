// What the client does with each class of close code, against a scripted
// `ws` server that opens a session and then closes with the code under test
// (the real server's codes are exercised in delivery and auth tests; 4502
// needs the server API, which this branch does not have).
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { eventually } from "../../test/helpers/eventually.js";
import { Roomcast, type RoomcastError, type StateEvent } from "../src/index.js";

async function scripted(
  code: number,
): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  let n = 0;
  wss.on("connection", (ws) => {
    n++;
    ws.send(JSON.stringify({ session: { token: `t${n}`, member_id: "m1", resumed: n > 1 } }));
    setTimeout(() => ws.close(code, "scripted"), 20);
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`,
    connections: () => n,
    close: () => new Promise<void>((resolve) => wss.close(() => resolve())),
  };
}

test("client close codes - 4502 stops: no reconnect, pending publishes rejected", async () => {
  const server = await scripted(4502);
  const states: StateEvent[] = [];
  const client = new Roomcast(server.url, {
    WebSocket,
    reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
  });
  client.on("state", (s) => states.push(s));
  const pending = client.room("r").publish("never acked");
  await assert.rejects(pending, (err: RoomcastError) => err.code === "closed");
  assert.equal(client.state, "closed");
  assert.deepEqual(states.at(-1), { state: "closed", code: 4502, reason: "scripted" });
  assert.equal(server.connections(), 1);
  await server.close();
});

test("client close codes - 4000 reconnects with the resume token", async () => {
  const server = await scripted(4000);
  const urls: string[] = [];
  class Recording extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      urls.push(url);
    }
  }
  const client = new Roomcast(server.url, {
    WebSocket: Recording,
    reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
  });
  await eventually(() => server.connections() >= 3);
  client.close();
  assert.equal(new URL(urls[0]!).searchParams.get("session"), null);
  assert.equal(new URL(urls[1]!).searchParams.get("session"), "t1");
  assert.equal(new URL(urls[2]!).searchParams.get("session"), "t2");
  await server.close();
});

test("client close codes - handshakes refused with 503 and a 1013 close are retried with growing, jittered backoff until one gets in", async () => {
  // An overloaded node (server handshake shedding): three upgrades refused
  // with 503 + Retry-After, then a session closed with 1013, then a session.
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true });
  let upgrades = 0;
  let sessions = 0;
  http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (++upgrades <= 3) {
      socket.end("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sessions++;
      ws.send(JSON.stringify({ session: { token: `t${sessions}`, member_id: "m1" } }));
      if (sessions === 1) setTimeout(() => ws.close(1013, "try again later"), 20);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws`;
  const states: StateEvent[] = [];
  const client = new Roomcast(url, {
    WebSocket,
    reconnect: { initialDelayMs: 20, maxDelayMs: 1000 },
    random: () => 0.99,
  });
  client.on("state", (s) => states.push(s));
  await eventually(() => sessions === 2 && client.state === "open", { timeoutMs: 10_000 });
  client.close();
  const retries = states.filter((s) => s.state === "reconnecting" && s.delayMs !== undefined);
  assert.deepEqual(
    retries.map((s) => s.code),
    [1006, 1006, 1006, 1013],
  );
  // Each refusal doubles the cap (full jitter draws under it); a session resets it.
  assert.deepEqual(
    retries.map((s) => s.delayMs),
    [19, 39, 79, 19],
  );
  wss.close();
  await new Promise<void>((resolve) => http.close(() => resolve()));
});

test("client close codes - an attempt that brings no session frame in time is dropped and retried", async (t) => {
  // A stuck node: the first upgrade is never answered, the second is
  // accepted but no session frame follows; the third gets a session.
  const http = createServer();
  const wss = new WebSocketServer({ noServer: true });
  let upgrades = 0;
  const hung: Duplex[] = [];
  http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const n = ++upgrades;
    if (n === 1) {
      hung.push(socket);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (n >= 3) ws.send(JSON.stringify({ session: { token: `t${n}`, member_id: "m1" } }));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    for (const socket of hung) socket.destroy();
    wss.close();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws`;
  const states: StateEvent[] = [];
  const errors: RoomcastError[] = [];
  const client = new Roomcast(url, {
    WebSocket,
    sessionTimeoutMs: 150,
    reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
  });
  client.on("state", (s) => states.push(s));
  client.on("error", (e) => errors.push(e));
  await eventually(() => client.state === "open", { timeoutMs: 10_000 });
  client.close();
  assert.equal(upgrades, 3);
  assert.deepEqual(
    errors.map((e) => [e.code, e.message]),
    [
      ["connect", "no session frame within 150 ms"],
      ["connect", "no session frame within 150 ms"],
    ],
  );
  assert.deepEqual(
    states
      .filter((s) => s.state === "reconnecting" && s.delayMs !== undefined)
      .map((s) => [s.code, s.reason]),
    [
      [1006, "session timeout"],
      [1006, "session timeout"],
    ],
  );
});
