// Starts one server under test as a child process pinned to the server core,
// waits until GET /readyz answers 200, and stops it for sure.
import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./free-port.js";
import { trackServer, untrackServer } from "./noise.js";
import { pinnedCommand, SERVER_CORE } from "./pin.js";
import type { ServerSpec } from "./servers.js";

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 2_000;

export class ServerProcess {
  readonly #child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  #stderr = "";
  #exited = false;

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    if (child.pid === undefined) throw new Error("server process has no pid");
    this.pid = child.pid;
    this.port = port;
    child.stdout?.resume();
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000);
    });
    child.on("exit", () => {
      this.#exited = true;
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return !this.#exited;
  }

  get stderrTail(): string {
    return this.#stderr;
  }

  static async start(
    spec: ServerSpec,
    extraEnv: Record<string, string> = {},
    nodeArgs: string[] = [],
  ): Promise<ServerProcess> {
    const port = await freePort();
    const [command, ...args] = pinnedCommand(SERVER_CORE, [
      process.execPath,
      ...nodeArgs,
      spec.script,
    ]);
    if (command === undefined) throw new Error("empty command");
    const child = spawn(command, args, {
      env: { ...process.env, ...spec.env, ...extraEnv, PORT: String(port), NODE_ENV: "production" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const server = new ServerProcess(child, port);
    trackServer(server.pid);
    try {
      await server.#waitReady();
    } catch (err) {
      await server.stop();
      throw new Error(
        `${spec.name} did not become ready: ${(err as Error).message}\n${server.#stderr}`,
      );
    }
    return server;
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.#exited) throw new Error("exited during start");
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/readyz`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`no 200 from /readyz in ${READY_TIMEOUT_MS} ms`);
  }

  /** SIGTERM, then SIGKILL after graceMs (a profiled server needs time to drain and write its profile). */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    if (this.#exited) return;
    untrackServer(this.pid);
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.#child.kill("SIGTERM");
    const timedOut = await Promise.race([
      exited.then(() => false),
      sleep(graceMs).then(() => true),
    ]);
    if (timedOut && !this.#exited) {
      this.#child.kill("SIGKILL");
      await exited;
    }
  }
}
