// `--trace`: a timeline of each latency window, to say *when* its tail came
// and what the server was doing then. Three kinds of file in one directory,
// every line stamped with the same clock (CLOCK_MONOTONIC through hrtime,
// shared by every process of the machine):
//   windows.log              `<start> <end> <server> <window>` from the runner;
//   generator-<pid>-<t>.log  `<bucket start> <count> <max ms> <count over 15 ms>`
//                            per 100 ms of deliveries, from each generator thread;
//   server-<pid>.log         `<t> lag <ms>` (event-loop delays of 20 ms or more)
//                            and `<t> gc <kind> <ms>` (all but scavenges), from
//                            Roomcast through trace-preload.ts.
// `node dist/bench/trace-report.js DIR` lines them up (bench/trace-report.ts).
import { appendFileSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Where the runner asked for the trace (children inherit it), or undefined. */
export const TRACE_ENV = "ROOMCAST_BENCH_TRACE_DIR";

export function traceDir(): string | undefined {
  const dir = process.env[TRACE_ENV];
  return dir === undefined || dir === "" ? undefined : dir;
}

/** Seconds on the machine-wide monotonic clock. */
export function clockSeconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

const BUCKET_NS = 100_000_000;
/** A delivery later than this counts as slow in the timeline. */
export const SLOW_MS = 15;

/** Deliveries per 100 ms: how many, the latest, how many slow. Flushed by the caller. */
export class LatencyTimeline {
  readonly #buckets = new Map<number, [count: number, maxMs: number, slow: number]>();

  record(receivedNs: number, latencyMs: number): void {
    const key = Math.floor(receivedNs / BUCKET_NS);
    let b = this.#buckets.get(key);
    if (b === undefined) this.#buckets.set(key, (b = [0, 0, 0]));
    b[0]++;
    if (latencyMs > b[1]) b[1] = latencyMs;
    if (latencyMs > SLOW_MS) b[2]++;
  }

  /** The lines recorded since the last drain. */
  drain(): string[] {
    const lines = [...this.#buckets].map(
      ([key, [count, max, slow]]) =>
        `${((key * BUCKET_NS) / 1e9).toFixed(1)} ${count} ${max.toFixed(1)} ${slow}`,
    );
    this.#buckets.clear();
    return lines;
  }
}

export function appendLines(file: string, lines: readonly string[]): void {
  if (lines.length > 0) appendFileSync(file, `${lines.join("\n")}\n`);
}

/** The runner's mark for one latency window. */
export function markWindow(server: string, window: string, start: number, end: number): void {
  const dir = traceDir();
  if (dir === undefined) return;
  appendLines(join(dir, "windows.log"), [
    `${start.toFixed(3)} ${end.toFixed(3)} ${server} ${window}`,
  ]);
}

export interface TraceWindow {
  start: number;
  end: number;
  server: string;
  window: string;
  /** 100 ms buckets (all generator threads summed) with a slow delivery. */
  slowBuckets: { at: number; count: number; maxMs: number; slow: number }[];
  deliveries: number;
  slow: number;
  /** Server lines (lag, gc) inside the window. */
  serverEvents: string[];
}

/** Lines up the three kinds of file: what was slow in each window, and what the server did. */
export function readTrace(dir: string): TraceWindow[] {
  const files = readdirSync(dir);
  const lines = (prefix: string): string[][] =>
    files
      .filter((f) => f.startsWith(prefix))
      .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n"))
      .filter((l) => l !== "")
      .map((l) => l.split(" "));
  const buckets = new Map<string, { at: number; count: number; maxMs: number; slow: number }>();
  for (const [at = "", count = "0", max = "0", slow = "0"] of lines("generator-")) {
    const b = buckets.get(at) ?? { at: Number(at), count: 0, maxMs: 0, slow: 0 };
    b.count += Number(count);
    b.maxMs = Math.max(b.maxMs, Number(max));
    b.slow += Number(slow);
    buckets.set(at, b);
  }
  const sorted = [...buckets.values()].sort((a, b) => a.at - b.at);
  const server = lines("server-")
    .map((p) => ({ at: Number(p[0]), text: p.join(" ") }))
    .sort((a, b) => a.at - b.at);
  return lines("windows.log").map(([start = "0", end = "0", name = "", window = ""]) => {
    const s = Number(start);
    const e = Number(end);
    const inside = sorted.filter((b) => b.at >= s - 0.1 && b.at < e);
    return {
      start: s,
      end: e,
      server: name,
      window,
      slowBuckets: inside.filter((b) => b.slow > 0),
      deliveries: inside.reduce((n, b) => n + b.count, 0),
      slow: inside.reduce((n, b) => n + b.slow, 0),
      serverEvents: server.filter((x) => x.at >= s - 0.1 && x.at < e).map((x) => x.text),
    };
  });
}
