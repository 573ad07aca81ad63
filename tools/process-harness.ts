// Child processes for the tests and the benchmark (nats-server, redis-server,
// Roomcast nodes, peer servers): a free port, waiting until something answers,
// and starting and stopping a process so that none outlives the one that
// started it. One copy, so test/helpers and bench/lib cannot drift apart; it
// sits outside both so neither depends on the other.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, openSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

/** A free TCP port on 127.0.0.1, for servers that must be told their port (Redis, PostgreSQL). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = addr !== null && typeof addr === "object" ? addr.port : 0;
      srv.close(() => (port === 0 ? reject(new Error("no free port")) : resolve(port)));
    });
  });
}

/** True once a TCP connection to 127.0.0.1:port opens; false when it is refused. */
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

/** True when `name` can be run (it answers `--version`). */
export function hasBinary(name: string): boolean {
  return spawnSync(name, ["--version"], { stdio: "ignore" }).error === undefined;
}

export interface WaitOptions {
  /** Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Pause between checks. Default 20 ms. */
  readonly intervalMs?: number;
  /** Gives up at once, with the signal's reason, when aborted. */
  readonly signal?: AbortSignal;
}

/**
 * Polls `check` until it returns something other than false or undefined, and
 * resolves with that. A check that throws counts as "not yet"; on timeout the
 * last failure is the error's cause.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 20, signal }: WaitOptions = {},
): Promise<Exclude<T, false | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = new Error("condition never held");
  for (;;) {
    signal?.throwIfAborted();
    try {
      const value = await check();
      if (value !== false && value !== undefined) return value as Exclude<T, false | undefined>;
      last = new Error("condition returned " + String(value));
    } catch (err) {
      last = err;
    }
    signal?.throwIfAborted();
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms`, { cause: last });
    }
    try {
      await delay(intervalMs, undefined, signal === undefined ? {} : { signal });
    } catch {
      signal?.throwIfAborted();
    }
  }
}

// Work that must happen however this process ends: children killed, temp dirs
// removed. "exit" handlers run on a normal end and on process.exit(); SIGINT and
// SIGTERM skip them, so a caller that owns no signal handling of its own (a test
// run) asks for those too. The benchmark does not: its runner handles SIGINT
// itself, stopping its servers gracefully before process.exit().
const onExitTasks = new Set<() => void>();
let exitHooked = false;
let signalsHooked = false;

function runExitTasks(): void {
  for (const task of [...onExitTasks]) {
    try {
      task();
    } catch {
      // the process is ending; the next task still runs
    }
  }
  onExitTasks.clear();
}

/**
 * Runs `task` (synchronous) when this process exits; with `signals`, also on
 * SIGINT and SIGTERM, after which the signal takes its default action. Returns
 * a function that cancels the task.
 */
export function onExit(task: () => void, { signals = false } = {}): () => void {
  if (!exitHooked) {
    exitHooked = true;
    process.on("exit", runExitTasks);
  }
  if (signals && !signalsHooked) {
    signalsHooked = true;
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        runExitTasks();
        process.kill(process.pid, signal); // the default action, now that our listener is gone
      });
    }
  }
  onExitTasks.add(task);
  return () => onExitTasks.delete(task);
}

const tempDirs = new Map<string, () => void>();

/** A fresh temp dir for a server's files, removed by removeTempDir or when the process ends. */
export async function makeTempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `roomcast-${name}-`));
  const cancel = onExit(() => rmSync(dir, { recursive: true, force: true }), { signals: true });
  tempDirs.set(dir, cancel);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  tempDirs.get(dir)?.();
  tempDirs.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

export interface SpawnOptions {
  /** The child's whole environment. Default: this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Appends stdout and stderr to this file. Without it both are piped: stdout
   * is drained (or read by the caller through `child.stdout`) and the tail of
   * stderr kept for error messages.
   */
  readonly logFile?: string;
  /** How much of stderr `stderrTail` keeps. Default 4000 characters. */
  readonly stderrTailChars?: number;
  /** Also kill the child on SIGINT and SIGTERM, not only on exit (see onExit). Default false. */
  readonly killOnSignals?: boolean;
  /**
   * Starts the child in a process group of its own (setsid) and signals the
   * whole group, for servers that start helpers of their own (the Spanner
   * emulator's gateway_main starts emulator_main). Default false.
   */
  readonly processGroup?: boolean;
  /**
   * Runs the child on these CPUs only (taskset's list, e.g. "0,1"), whatever
   * the caller is pinned to: the benchmark pins itself to its generator core
   * and a child inherits that. Default: the caller's CPUs.
   */
  readonly cpus?: string;
}

export interface StopOptions {
  /** Default SIGTERM. */
  readonly signal?: NodeJS.Signals;
  /** SIGKILL after this long if the child is still there. Default: wait as long as it takes. */
  readonly graceMs?: number;
}

/** Starts a child that is killed (SIGKILL) when this process ends, if still running then. */
export function spawnChild(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Child {
  let child: ChildProcess;
  const detached = options.processGroup === true;
  // taskset execs the command, so the child keeps its pid.
  const [file, argv] =
    options.cpus === undefined
      ? [command, args]
      : ["taskset", ["-c", options.cpus, command, ...args]];
  if (options.logFile === undefined) {
    child = spawn(file, argv, { env: options.env, stdio: ["ignore", "pipe", "pipe"], detached });
  } else {
    const fd = openSync(options.logFile, "a");
    child = spawn(file, argv, { env: options.env, stdio: ["ignore", fd, fd], detached });
    closeSync(fd);
  }
  return new Child(child, command, options);
}

export class Child {
  readonly child: ChildProcess;
  /** Resolves with the exit code (null after a signal) once the child is gone, or failed to start; never rejects. */
  readonly exit: Promise<number | null>;
  readonly #name: string;
  readonly #logFile: string | undefined;
  readonly #group: boolean;
  #stderr = "";
  #ended: Error | undefined;

  constructor(child: ChildProcess, name: string, options: SpawnOptions) {
    this.child = child;
    this.#name = name;
    this.#logFile = options.logFile;
    this.#group = options.processGroup === true;
    const cancel = onExit(() => this.#signal("SIGKILL"), {
      signals: options.killOnSignals === true,
    });
    const keep = options.stderrTailChars ?? 4000;
    child.stdout?.resume();
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-keep);
    });
    this.exit = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        cancel();
        this.#ended ??= this.#describe(`exited (code ${String(code)}, signal ${String(signal)})`);
        resolve(code);
      });
      // A missing binary: spawn reports it here, and there is no "exit".
      child.on("error", (err) => {
        if (child.pid !== undefined) return;
        cancel();
        this.#ended ??= this.#describe(`could not start: ${err.message}`, err);
        resolve(null);
      });
    });
  }

  /** The child's pid; undefined when it could not be started. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** False once the child has exited (or failed to start). */
  get alive(): boolean {
    return this.#ended === undefined;
  }

  /** The last characters the child wrote to stderr (empty with a log file). */
  get stderrTail(): string {
    return this.#stderr;
  }

  /** Like waitFor, but fails at once, with the exit status, if the child ends first. Default timeout 15 s. */
  async waitReady<T>(
    check: () => T | Promise<T>,
    options: Omit<WaitOptions, "signal"> = {},
  ): Promise<Exclude<T, false | undefined>> {
    const gone = new AbortController();
    const ended = (): void => gone.abort(this.#ended);
    if (this.#ended !== undefined) ended();
    void this.exit.then(ended);
    return await waitFor(check, { timeoutMs: 15_000, ...options, signal: gone.signal });
  }

  /** Signals the child and waits until it is gone; resolves with its exit code. */
  async stop({ signal = "SIGTERM", graceMs }: StopOptions = {}): Promise<number | null> {
    // A group is signalled even after its leader ended: its helpers may not have.
    if (this.#ended === undefined || this.#group) {
      this.#signal(signal);
      if (graceMs !== undefined) {
        const timer = setTimeout(() => this.#signal("SIGKILL"), graceMs);
        void this.exit.finally(() => clearTimeout(timer));
      }
    }
    return await this.exit;
  }

  /** Signals the child, or its whole process group when it has one. */
  #signal(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (this.#group && pid !== undefined) {
      try {
        process.kill(-pid, signal);
      } catch {
        // the group is already gone
      }
      return;
    }
    this.child.kill(signal);
  }

  #describe(what: string, cause?: unknown): Error {
    const where = this.#logFile === undefined ? "" : `; see ${this.#logFile}`;
    return new Error(`${this.#name} ${what}${where}`, cause === undefined ? {} : { cause });
  }
}
