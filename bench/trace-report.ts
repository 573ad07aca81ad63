// Prints what a `--trace` run recorded (bench/lib/trace.ts): for each latency
// window, the 100 ms stretches that held a delivery slower than 15 ms, and
// what Roomcast's event loop and garbage collector did in the window.
//   node dist/bench/trace-report.js bench/results/<run>/trace
import { readTrace, SLOW_MS } from "./lib/trace.js";

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write("usage: node dist/bench/trace-report.js TRACE_DIR\n");
  process.exit(2);
}
for (const w of readTrace(dir)) {
  const share = w.deliveries === 0 ? 0 : (100 * w.slow) / w.deliveries;
  process.stdout.write(
    `${w.server} ${w.window} ${w.start.toFixed(1)}-${w.end.toFixed(1)}: ${w.slow} of ${w.deliveries} deliveries over ${SLOW_MS} ms (${share.toFixed(2)} %)\n`,
  );
  for (const b of w.slowBuckets) {
    process.stdout.write(
      `  ${(b.at - w.start).toFixed(1).padStart(5)} s  ${String(b.slow).padStart(6)} slow of ${String(b.count).padStart(6)}, max ${b.maxMs.toFixed(1)} ms\n`,
    );
  }
  for (const e of w.serverEvents) {
    const [at = "0", ...rest] = e.split(" ");
    process.stdout.write(
      `  ${(Number(at) - w.start).toFixed(2).padStart(6)} s  server ${rest.join(" ")}\n`,
    );
  }
}
