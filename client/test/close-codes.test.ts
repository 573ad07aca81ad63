// What the client does with each class of close code, against a scripted
// `ws` server that opens a session and then closes with the code under test
// (the real server's codes are exercised in delivery and auth tests; 4502
// needs the server API, which this branch does not have).
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
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
