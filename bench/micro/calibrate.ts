// How fast this machine is right now, with no server in the picture: the
// fixed JavaScript workload of fixed-work.ts and a fixed
// loopback TCP workload (one write system call per 256-byte chunk, read back
// in the same process). Prints ns of this process's CPU per operation of each,
// as one JSON line. Run it pinned to the server's core before and after a
// benchmark run, to tell a slow machine from a slow server (docs/benchmarks.md,
// "Slow runs: the machine has two speeds").
// Usage: taskset -c 0 node dist/bench/micro/calibrate.js [rounds=5]
import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { spread } from "../lib/stats.js";
import { fixedWork } from "./fixed-work.js";

const rounds = Number(process.argv[2] ?? 5);

function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

let sink = 0;

/** ns of CPU per operation of the fixed JS workload. */
function jsWork(ops: number): number {
  const start = cpuNs();
  sink += fixedWork(new Map(), ops);
  return (cpuNs() - start) / ops;
}

/** ns of CPU per 256-byte write over loopback TCP (writer and reader both here). */
async function tcpWork(writes: number): Promise<number> {
  let received = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const server = createServer((s: Socket) => {
    s.on("data", (d: Buffer) => {
      received += d.length;
      if (received >= writes * 256) done();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const client = connect((server.address() as AddressInfo).port, "127.0.0.1");
  client.setNoDelay(true);
  await new Promise<void>((r) => client.once("connect", r));
  const chunk = Buffer.alloc(256, 7);
  const start = cpuNs();
  // One write per event-loop turn in batches of 64 sockets' worth, as a
  // server flushing once per turn would.
  for (let i = 0; i < writes; i += 64) {
    for (let j = 0; j < 64 && i + j < writes; j++) client.write(chunk);
    await new Promise((r) => setImmediate(r));
  }
  await finished;
  const ns = (cpuNs() - start) / writes;
  client.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return ns;
}

jsWork(200_000); // warm up the optimiser
await tcpWork(20_000);
const js: number[] = [];
const tcp: number[] = [];
for (let i = 0; i < rounds; i++) {
  js.push(jsWork(1_000_000));
  tcp.push(await tcpWork(100_000));
}
console.log(
  JSON.stringify({
    at: new Date().toISOString(),
    jsNsPerOp: Math.round(spread(js).median),
    tcpNsPerWrite: Math.round(spread(tcp).median),
    js: js.map(Math.round),
    tcp: tcp.map(Math.round),
    sink: sink > 0,
  }),
);
