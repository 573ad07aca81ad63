// CPU pinning with taskset(1): the server gets core 0 and the generator core 1 so
// neither steals the other's CPU. Without taskset both float and the report says so.
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";

export const SERVER_CORE = 0;
export const GENERATOR_CORE = 1;

let available: boolean | undefined;

export function canPin(): boolean {
  if (available === undefined) {
    try {
      execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
      available = cpus().length >= 2;
    } catch {
      available = false;
    }
  }
  return available;
}

/** Pins every thread of this process (and the threads it starts later) to one core. */
export function pinSelf(core: number): boolean {
  if (!canPin()) return false;
  try {
    execFileSync("taskset", ["-a", "-p", "-c", String(core), String(process.pid)], {
      stdio: "ignore",
    });
    return true;
  } catch {
    return false;
  }
}

/** The command line prefix that starts a program pinned to a core, or nothing. */
export function pinnedCommand(core: number, argv: string[]): string[] {
  return canPin() ? ["taskset", "-c", String(core), ...argv] : argv;
}
