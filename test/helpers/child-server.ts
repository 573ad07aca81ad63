// Shared plumbing for test servers run as child processes (nats-server,
// redis-server, ...): spawn with output to a log file, wait for readiness,
// stop, and never leave one behind when the test process ends.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { eventually } from "./eventually.js";

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;

function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
  live.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

// `after` hooks do not run when the test process is killed or crashes; these do.
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      killAll();
      process.kill(process.pid, signal); // the default action, now that our listener is gone
    });
  }
}

/** A fresh temp dir for a server's files, removed by removeTempDir or when the process ends. */
export async function makeTempDir(name: string): Promise<string> {
  hookExit();
  const dir = await mkdtemp(join(tmpdir(), `roomcast-${name}-`));
  dirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  dirs.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

/** True when `name` can be run (it answers `--version`). */
export function hasBinary(name: string): boolean {
  return spawnSync(name, ["--version"], { stdio: "ignore" }).error === undefined;
}

export interface ChildServer {
  readonly child: ChildProcess;
  /** Settles when the process exits; rejects so readiness waits fail fast on an early exit. */
  readonly exited: Promise<never>;
}

/** Spawns a server with stdout and stderr appended to `logFile`. */
export function spawnServer(
  command: string,
  args: readonly string[],
  logFile: string,
): ChildServer {
  hookExit();
  const fd = openSync(logFile, "a");
  const child = spawn(command, args, { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  live.add(child);
  const exited = new Promise<never>((_, reject) => {
    child.once("exit", (code, signal) => {
      live.delete(child);
      reject(
        new Error(
          `${command} exited (code ${String(code)}, signal ${String(signal)}); see ${logFile}`,
        ),
      );
    });
    child.once("error", (err) => {
      live.delete(child);
      reject(err);
    });
  });
  exited.catch(() => undefined); // observed by whoever races it; never unhandled
  return { child, exited };
}

/** Stops a child and waits for it to be gone. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, "exit");
  child.kill(signal);
  await gone;
}

/** Resolves once a TCP connection to 127.0.0.1:port opens. */
export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Waits for `check` while watching the server: an early exit fails at once. */
export async function waitReady<T>(
  server: ChildServer,
  check: () => T | Promise<T>,
): Promise<Exclude<T, false | undefined>> {
  return await Promise.race([eventually(check, { timeoutMs: 15_000 }), server.exited]);
}
