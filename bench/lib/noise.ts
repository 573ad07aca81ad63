// How busy the rest of the machine was during a measurement: all CPU time the
// kernel counted (/proc/stat) minus what the generator and the servers under test
// used. A figure measured while others compiled or tested says so.
import { readFileSync } from "node:fs";
import { clockTicks, cpuSeconds } from "./proc-stats.js";

function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  // cpu user nice system idle iowait irq softirq steal ...
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy / clockTicks();
}

function ownSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

let serverSeconds = 0;
const tracked = new Map<number, number>();

/** Servers report their pid when started and once more just before they stop. */
export function trackServer(pid: number): void {
  try {
    tracked.set(pid, cpuSeconds(pid));
  } catch {
    // already gone
  }
}

export function untrackServer(pid: number): void {
  const last = tracked.get(pid);
  tracked.delete(pid);
  try {
    serverSeconds += cpuSeconds(pid) - (last ?? 0);
  } catch {
    // already gone: its last reading stands
  }
}

function serversSoFar(): number {
  let sum = serverSeconds;
  for (const [pid, start] of tracked) {
    try {
      sum += cpuSeconds(pid) - start;
    } catch {
      // exited
    }
  }
  return sum;
}

export interface NoiseMeter {
  /** Average number of cores used by everything else since the meter started. */
  otherCores(): number;
}

export function startNoiseMeter(): NoiseMeter {
  const t0 = performance.now();
  const busy0 = machineBusySeconds();
  const own0 = ownSeconds();
  const servers0 = serversSoFar();
  return {
    otherCores: () => {
      const seconds = (performance.now() - t0) / 1000;
      const other =
        machineBusySeconds() - busy0 - (ownSeconds() - own0) - (serversSoFar() - servers0);
      return Math.max(0, other / seconds);
    },
  };
}
