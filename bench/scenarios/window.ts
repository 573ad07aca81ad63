// One measurement window: generator counters and server CPU before and after.
import { setTimeout as sleep } from "node:timers/promises";
import type { LoadGenerator, Snapshot } from "../load/generator.js";
import { cpuSeconds, writeSyscalls } from "../lib/proc-stats.js";
import type { ServerProcess } from "../lib/server-process.js";

export interface WindowResult {
  seconds: number;
  deliveredPerSec: number;
  acksPerSec: number;
  publishedPerSec: number;
  skipped: number;
  errors: number;
  closed: number;
  /** Server CPU µs per delivered message (all its threads). */
  serverCpuUsPerDelivered: number;
  /** Server CPU µs per acknowledged publish. */
  serverCpuUsPerAck: number;
  /**
   * Server write system calls per delivered message: 1 when every message
   * is its own write, below 1 when writes carry several.
   */
  serverWritesPerDelivered: number;
  /** Fraction of one core the server and the generator used. */
  serverCpuUtil: number;
  generatorCpuUtil: number;
  end: Snapshot;
}

export async function measureWindow(
  gen: LoadGenerator,
  server: ServerProcess,
  ms: number,
): Promise<WindowResult> {
  const a = await gen.snapshot(true);
  const cpuA = cpuSeconds(server.pid);
  const writesA = writeSyscalls(server.pid);
  const tA = performance.now();
  await sleep(ms);
  const b = await gen.snapshot(false);
  const cpuB = cpuSeconds(server.pid);
  const writesB = writeSyscalls(server.pid);
  const seconds = (performance.now() - tA) / 1000;
  const delivered = b.counters.delivered - a.counters.delivered;
  const acks = b.counters.acks - a.counters.acks;
  const cpu = cpuB - cpuA;
  return {
    seconds,
    deliveredPerSec: delivered / seconds,
    acksPerSec: acks / seconds,
    publishedPerSec: (b.counters.published - a.counters.published) / seconds,
    skipped: b.counters.skipped - a.counters.skipped,
    errors: b.counters.errors - a.counters.errors,
    closed: b.counters.closed - a.counters.closed,
    serverCpuUsPerDelivered: delivered > 0 ? (cpu * 1e6) / delivered : Number.NaN,
    serverCpuUsPerAck: acks > 0 ? (cpu * 1e6) / acks : Number.NaN,
    serverWritesPerDelivered: delivered > 0 ? (writesB - writesA) / delivered : Number.NaN,
    serverCpuUtil: cpu / seconds,
    generatorCpuUtil: (b.cpuSeconds - a.cpuSeconds) / seconds,
    end: b,
  };
}

/** Waits until deliveries stop arriving (a backlog drained), at most maxMs. */
export async function waitQuiet(gen: LoadGenerator, maxMs: number): Promise<boolean> {
  const deadline = performance.now() + maxMs;
  let last = (await gen.snapshot(false)).counters.delivered;
  while (performance.now() < deadline) {
    await sleep(250);
    const now = (await gen.snapshot(false)).counters.delivered;
    if (now === last) return true;
    last = now;
  }
  return false;
}
