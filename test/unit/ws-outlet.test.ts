// How the outlet writes: nothing while the turn runs, then each socket's
// frames of the turn in one write, in the order they were sent. Real
// `ws` sockets over loopback; the server side's TCP writes are counted by
// wrapping the socket's own write, and the client checks what arrived.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { test } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import { WsOutlet } from "../../src/gateway/ws-outlet.js";
import { jsonCodec } from "../../src/protocol/codec.js";
import { silentLogger } from "../../src/observability/logging.js";
import { eventually } from "../helpers/eventually.js";

interface Pair {
  readonly outlet: WsOutlet;
  /** Byte lengths of the server socket's writes, in order. */
  readonly writes: number[];
  /** Text frames the client received, in order. */
  readonly received: string[];
  readonly client: WebSocket;
}

const limits = { maxBufferedBytes: 1 << 20, slowConsumerGraceMs: 10_000 };

async function listen(): Promise<{ server: Server; wss: WebSocketServer }> {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, wss };
}

async function connect(server: Server, wss: WebSocketServer, id: string): Promise<Pair> {
  const accepted = new Promise<{ ws: WebSocket; raw: Socket }>((resolve) => {
    server.once("upgrade", (req, raw: Socket, head) => {
      wss.handleUpgrade(req, raw, head, (ws) => resolve({ ws, raw }));
    });
  });
  const { port } = server.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  const received: string[] = [];
  client.on("message", (data: Buffer) => received.push(data.toString("utf8")));
  const { ws, raw } = await accepted;
  await new Promise<void>((resolve) => client.once("open", () => resolve()));
  const writes: number[] = [];
  const write = raw.write.bind(raw);
  // Counting, not replacing: every write still reaches the kernel.
  raw.write = (chunk: Buffer) => {
    writes.push(chunk.length);
    return write(chunk);
  };
  const outlet = new WsOutlet(ws, raw, jsonCodec, limits, silentLogger(), id);
  return { outlet, writes, received, client };
}

/** Resolves once the current callback's ticks and microtasks have run. */
const afterCallback = () => new Promise<void>((resolve) => process.nextTick(resolve));
/** Resolves after the turn's flush: it was scheduled before this. */
const afterTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const payload = (text: string) => Buffer.from(text);

test("ws outlet - a turn's frames leave after the turn, in one write per socket", async () => {
  const { server, wss } = await listen();
  const a = await connect(server, wss, "a");
  const b = await connect(server, wss, "b");
  try {
    a.outlet.send(payload("1"));
    b.outlet.send(payload("x"));
    a.outlet.send(payload("22"));
    a.outlet.send(payload("333"));
    await afterCallback();
    assert.deepEqual(a.writes, [], "nothing written while the turn runs");
    await afterTurn();
    // Each text frame of n < 126 bytes is a 2-byte header and n bytes.
    assert.deepEqual(a.writes, [3 + 4 + 5], "a's three frames in one write");
    assert.deepEqual(b.writes, [3], "b's frame in its own write");
    a.outlet.send(payload("4444"));
    await afterTurn();
    assert.deepEqual(a.writes, [12, 6], "the next turn's frame in the next write");
    await eventually(() => a.received.length === 4);
    assert.deepEqual(a.received, ["1", "22", "333", "4444"], "in the order sent");
    await eventually(() => b.received.length === 1);
  } finally {
    a.client.terminate();
    b.client.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("ws outlet - a turn over the copy limit leaves whole and in order", async () => {
  const { server, wss } = await listen();
  const a = await connect(server, wss, "a");
  try {
    const sent = ["a", "b", "c", "d"].map((c) => c.repeat(10_000));
    for (const text of sent) a.outlet.send(payload(text));
    await afterTurn();
    // 40 KB in one turn: written frame by frame under one cork, not copied.
    assert.equal(a.writes.length, sent.length, "one corked write call per frame");
    await eventually(() => a.received.length === sent.length);
    assert.deepEqual(a.received, sent, "every frame whole, in the order sent");
  } finally {
    a.client.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
