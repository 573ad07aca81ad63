// How the outlet writes. A hot socket (sent frames in the previous turn too)
// gets nothing while the turn runs, then its frames of the turn in one write.
// A cold socket gets what it is sent in one callback in one write as soon as
// the callback's work is done, and what follows in the turn after the turn.
// In the order sent, always. Real
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
  readonly raw: Socket;
}

// High enough that no test here reaches the backlog logic, which holds frames too.
const limits = { maxBufferedBytes: 1 << 30, slowConsumerGraceMs: 10_000 };

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
  return { outlet, writes, received, client, raw };
}

/** Runs `body` with two connected pairs on a fresh server, then closes everything. */
async function withPairs(body: (a: Pair, b: Pair) => Promise<void>): Promise<void> {
  const { server, wss } = await listen();
  const pairs: Pair[] = [];
  try {
    const a = await connect(server, wss, "a");
    pairs.push(a);
    const b = await connect(server, wss, "b");
    pairs.push(b);
    await body(a, b);
  } finally {
    for (const pair of pairs) pair.client.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Resolves once the current callback's ticks and microtasks have run. */
const afterCallback = () => new Promise<void>((resolve) => process.nextTick(resolve));
/** Resolves after the turn's flush: it was scheduled before this. */
const afterTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const payload = (text: string) => Buffer.from(text);

test("ws outlet - cold sockets write when the callback is done, hot ones after the turn", async () => {
  await withPairs(async (a, b) => {
    // Turn 1: both cold. What one callback sends leaves together right after it.
    a.outlet.send(payload("1"));
    b.outlet.send(payload("x"));
    a.outlet.send(payload("22"));
    assert.deepEqual(a.writes, [], "nothing written inside the callback");
    await afterCallback();
    // Each text frame of n < 126 bytes is a 2-byte header and n bytes.
    assert.deepEqual(a.writes, [3 + 4], "a's frames of the callback in one write");
    assert.deepEqual(b.writes, [3], "b's frame in its own write");
    a.outlet.send(payload("333"));
    a.outlet.send(payload("4444"));
    await afterCallback();
    assert.deepEqual(a.writes, [7], "what follows in the turn is held");
    await afterTurn();
    assert.deepEqual(a.writes, [7, 5 + 6], "and leaves in one write after the turn");

    // Turn 2: a was sent frames in turn 1, so it is hot: all held to the end.
    a.outlet.send(payload("5"));
    await afterCallback();
    assert.deepEqual(a.writes, [7, 11], "a hot socket holds even its first frame");
    a.outlet.send(payload("6"));
    await afterTurn();
    assert.deepEqual(a.writes, [7, 11, 3 + 3], "one write for the hot socket's turn");

    // Turn 3 sends only to b; in turn 4, a (which sat turn 3 out) is cold again.
    b.outlet.send(payload("y"));
    await afterTurn();
    a.outlet.send(payload("7"));
    await afterCallback();
    assert.deepEqual(a.writes, [7, 11, 6, 3], "cold again after a turn without frames");
    await afterTurn();

    await eventually(() => a.received.length === 7);
    assert.deepEqual(a.received, ["1", "22", "333", "4444", "5", "6", "7"], "in the order sent");
    await eventually(() => b.received.length === 2);
    assert.deepEqual(b.received, ["x", "y"]);
  });
});

test("ws outlet - a cold socket's frame waits behind bytes Node still buffers", async () => {
  await withPairs(async (a, b) => {
    // The client stops reading, so the kernel's buffers fill and Node keeps the rest.
    a.client.pause();
    const big = payload("y".repeat(256 * 1024));
    let sent = 0;
    while (a.raw.writableLength === 0 && sent < 400) {
      a.outlet.send(big);
      sent++;
      await afterTurn();
    }
    assert.ok(a.raw.writableLength > 0, `Node buffers bytes after ${sent} large frames`);
    // A turn that sends only to b makes a cold.
    b.outlet.send(payload("x"));
    await afterTurn();
    const before = a.writes.length;
    a.outlet.send(payload("after"));
    await afterCallback();
    assert.equal(a.writes.length, before, "held while earlier bytes wait in Node");
    await afterTurn();
    assert.equal(a.writes.length, before + 1, "written after the turn");
    a.client.resume();
    await eventually(() => a.received.length === sent + 1);
    assert.equal(a.received.at(-1), "after", "the small frame arrives last");
  });
});

test("ws outlet - a turn over the copy limit leaves whole and in order", async () => {
  await withPairs(async (a) => {
    const sent = ["a", "b", "c", "d"].map((c) => c.repeat(10_000));
    for (const text of sent) a.outlet.send(payload(text));
    await afterTurn();
    // 40 KB in one callback of a cold socket: written frame by frame under one cork, not copied.
    assert.equal(a.writes.length, sent.length, "one corked write call per frame");
    await eventually(() => a.received.length === sent.length);
    assert.deepEqual(a.received, sent, "every frame whole, in the order sent");
  });
});
