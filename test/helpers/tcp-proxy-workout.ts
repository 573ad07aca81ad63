// A child process for test/integration/tcp-proxy.test.ts: drives proxies
// through every mode at once (latency with jitter, down, hang, resets,
// half-closes from either side, a target that accepts but never reads, a
// target that refuses), closes everything, and must then exit on its own.
// A socket or timer the proxy leaks keeps it alive, or (a handle whose reset
// failed) spins Node's exit cleanup forever: the parent kills it after a
// bound and fails. Prints "closed" once every close() has resolved.
import { connect, createServer, type Server, type Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { resetSocket, startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

const SECONDS = Number(process.argv[2] ?? 2);
let seed = Number(process.argv[3] ?? 1) >>> 0;
const random = (): number => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const serverSockets = new Set<Socket>();
async function listen(server: Server): Promise<number> {
  server.on("connection", (s: Socket) => {
    serverSockets.add(s);
    s.on("close", () => serverSockets.delete(s));
    s.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return address !== null && typeof address === "object" ? address.port : 0;
}

// Echoes, and answers a half-close with "bye" and its own.
const echoServer = (): Server =>
  createServer({ allowHalfOpen: true }, (s) => {
    s.on("data", (chunk) => s.write(chunk));
    s.on("end", () => s.end("bye"));
  });
const echoes = [echoServer(), echoServer()];
// Accepts and never reads: the proxy's writes back up, as towards a stopped server.
const stalled = createServer({ pauseOnConnect: true });
const targets = [await listen(echoes[0]!), await listen(echoes[1]!), await listen(stalled)];
// A port nobody listens on: every upstream connection is refused.
const refusing = createServer();
targets.push(await listen(refusing));
await new Promise((resolve) => refusing.close(resolve));

const proxies: TcpProxy[] = [];
for (const port of targets) proxies.push(await startTcpProxy({ host: "127.0.0.1", port }));

const clients = new Set<Socket>();
function dial(): void {
  const socket = connect({ host: "127.0.0.1", port: pick(proxies).port, allowHalfOpen: true });
  clients.add(socket);
  socket.on("close", () => clients.delete(socket));
  socket.on("error", () => undefined);
  socket.on("data", () => undefined);
  socket.write(Buffer.alloc(Math.floor(random() * 256 * 1024), 1));
}

const actions: (() => void)[] = [
  dial,
  dial,
  () => pick(proxies).setLatency(Math.floor(random() * 50), Math.floor(random() * 50)),
  () => pick(proxies).setMode(pick(["up", "down", "hang"] as const)),
  () => pick(proxies).resetAll(),
  () => {
    const s = [...clients][Math.floor(random() * clients.size)];
    s?.end(); // a half-close from the client side
  },
  () => {
    const s = [...serverSockets][Math.floor(random() * serverSockets.size)];
    s?.end(); // from the target's side
  },
  () => [...clients][Math.floor(random() * clients.size)]?.destroy(),
  () => {
    const s = [...serverSockets][Math.floor(random() * serverSockets.size)];
    if (s !== undefined) resetSocket(s);
  },
];
const until = Date.now() + SECONDS * 1000;
while (Date.now() < until) {
  pick(actions)();
  if (random() < 0.3) await delay(Math.floor(random() * 20));
}

// Closed while links hang, lag and carry data: close() must still end them all.
for (const proxy of proxies) {
  proxy.setMode(pick(["up", "hang"] as const));
  proxy.setLatency(Math.floor(random() * 200), 50);
}
await Promise.all(proxies.map((p) => p.close()));
for (const s of clients) s.destroy();
for (const s of serverSockets) s.destroy();
await Promise.all([...echoes, stalled].map((s) => new Promise((resolve) => s.close(resolve))));
console.log("closed");
