// --machine-speed: a slow machine and a slow server look the same in a run's
// figures. This KVM guest has been seen switching between two speeds for
// minutes at a time with nothing else running (a fixed JavaScript workload
// at 421-472 ns per operation in one state, 725-748 in the other), and every
// server's CPU per message follows. So the runner can keep a speed trace on
// the server's core (bench/micro/speed-trace.ts: a 5,000-operation slice of
// fixed work, about 2.5 ms, every 250 ms: 1 % of the core) and record the
// median slice cost over each run beside that run's figures.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { pinnedCommand } from "./pin.js";
import { spread } from "./stats.js";

export interface SpeedSample {
  /** Unix seconds. */
  readonly t: number;
  /** ns of CPU per operation of the fixed slice. */
  readonly ns: number;
}

export interface MachineSpeed {
  /** Median ns per operation between two Unix times (seconds), or NaN with no sample. */
  median(from: number, to: number): number;
  stop(): void;
}

/** Splits the trace's output (one JSON sample per line) into samples. */
export function parseSpeedLines(text: string): SpeedSample[] {
  const out: SpeedSample[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const v = JSON.parse(line) as Partial<SpeedSample>;
    if (typeof v.t === "number" && typeof v.ns === "number") out.push({ t: v.t, ns: v.ns });
  }
  return out;
}

export function medianBetween(samples: readonly SpeedSample[], from: number, to: number): number {
  return spread(samples.filter((s) => s.t >= from && s.t <= to).map((s) => s.ns)).median;
}

export function startMachineSpeed(core: number): MachineSpeed {
  const script = fileURLToPath(new URL("../micro/speed-trace.js", import.meta.url));
  const [cmd, ...args] = pinnedCommand(core, [process.execPath, script, "250", "5000"]);
  const child: ChildProcess = spawn(cmd!, args, { stdio: ["ignore", "pipe", "inherit"] });
  const samples: SpeedSample[] = [];
  let partial = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    const text = partial + chunk;
    const end = text.lastIndexOf("\n");
    partial = text.slice(end + 1);
    samples.push(...parseSpeedLines(text.slice(0, end + 1)));
  });
  // The runner may leave by its watchdog or SIGINT: the trace goes with it.
  const stop = (): void => void child.kill("SIGTERM");
  process.once("exit", stop);
  return {
    median: (from, to) => medianBetween(samples, from, to),
    stop: () => {
      process.off("exit", stop);
      stop();
    },
  };
}
