// Loaded into Roomcast with `node --import` under `--trace` (bench/lib/trace.ts):
// writes the server's event-loop delays of 20 ms or more and its garbage
// collections (all but scavenges) to server-<pid>.log in the trace directory.
// A 5 ms timer measures the delays, so its own cost is a few timer callbacks
// per 5 ms; it is off unless the runner asked for a trace.
import { PerformanceObserver, constants, performance } from "node:perf_hooks";
import { join } from "node:path";
import { appendLines, clockSeconds, traceDir } from "./trace.js";

const TICK_MS = 5;
const REPORT_LAG_MS = 20;

const dir = traceDir();
if (dir !== undefined) {
  const file = join(dir, `server-${process.pid}.log`);
  const lines: string[] = [];
  // performance.now() and the machine clock, tied once.
  const offset = clockSeconds() - performance.now() / 1000;
  const at = (ms: number): string => (offset + ms / 1000).toFixed(3);
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const lag = now - last - TICK_MS;
    if (lag >= REPORT_LAG_MS) lines.push(`${at(last)} lag ${lag.toFixed(1)}`);
    last = now;
  }, TICK_MS).unref();
  const kinds = new Map<number, string>([
    [constants.NODE_PERFORMANCE_GC_MAJOR, "major"],
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL, "incremental"],
    [constants.NODE_PERFORMANCE_GC_WEAKCB, "weakcb"],
  ]);
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as { detail?: { kind?: number } }).detail;
      const kind = kinds.get(detail?.kind ?? 0);
      if (kind !== undefined)
        lines.push(`${at(entry.startTime)} gc ${kind} ${entry.duration.toFixed(1)}`);
    }
  }).observe({ entryTypes: ["gc"] });
  const flush = (): void => {
    appendLines(file, lines.splice(0));
  };
  setInterval(flush, 1000).unref();
  process.on("exit", flush);
}
