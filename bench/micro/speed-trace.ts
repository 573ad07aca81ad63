// A time series of how fast a core is: every `everyMs`, a slice of the fixed
// work of fixed-work.ts is timed by this process's CPU time, and its ns per
// operation printed with the time, one JSON line per sample. The runner's
// --machine-speed keeps it beside the servers on their core
// (bench/lib/machine-speed.ts; 5,000 operations every 250 ms, about 2.5 ms of
// work, 1 % of the core; smaller slices read mostly the cold cache the server
// left), to show whether a slow run had a slow machine under it
// (docs/benchmarks.md, "Slow runs: the machine has two speeds").
// Usage: taskset -c 0 node dist/bench/micro/speed-trace.js [everyMs=250] [ops=5000]
import { fixedWork, type WorkMap } from "./fixed-work.js";

const everyMs = Number(process.argv[2] ?? 250);
const ops = Number(process.argv[3] ?? 5000);

let sink = 0;
const map: WorkMap = new Map();
function slice(): number {
  const start = process.cpuUsage();
  sink += fixedWork(map, ops);
  // This process's CPU time, so a slice the scheduler interrupts still counts
  // only its own work.
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / ops;
}

for (let i = 0; i < 1000; i++) slice(); // warm up the optimiser
const timer = setInterval(() => {
  const ns = slice();
  process.stdout.write(`${JSON.stringify({ t: Date.now() / 1000, ns: Math.round(ns) })}\n`);
}, everyMs);
// Whoever read the trace is gone (EPIPE): so is the trace.
process.stdout.on("error", () => process.exit(0));
process.on("SIGTERM", () => {
  clearInterval(timer);
  if (sink < 0) console.log(sink);
  process.exit(0);
});
