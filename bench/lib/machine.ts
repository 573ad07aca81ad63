// The machine and software a run was measured on, printed with every table.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { fileURLToPath } from "node:url";

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  packages: Record<string, string>;
  gitCommit: string;
  pinned: boolean;
}

const PACKAGES = ["ws", "socket.io", "socket.io-client", "@socket.io/redis-adapter", "ioredis"];

function lscpuModel(): string {
  try {
    const out = execFileSync("lscpu", { encoding: "utf8" });
    return /^Model name:\s*(.+)$/m.exec(out)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  } catch {
    return cpus()[0]?.model ?? "unknown";
  }
}

function packageVersion(name: string): string {
  try {
    // dist/bench/lib → the repository root; read directly as some packages hide package.json behind "exports".
    const file = fileURLToPath(
      new URL(`../../../node_modules/${name}/package.json`, import.meta.url),
    );
    return (JSON.parse(readFileSync(file, "utf8")) as { version?: string }).version ?? "?";
  } catch {
    return "not installed";
  }
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

export function machineInfo(pinned: boolean): MachineInfo {
  const packages: Record<string, string> = {};
  for (const p of PACKAGES) packages[p] = packageVersion(p);
  return {
    cpuModel: lscpuModel(),
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    packages,
    gitCommit: gitCommit(),
    pinned,
  };
}

export function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
}
