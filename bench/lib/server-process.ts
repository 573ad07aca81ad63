// Starts one server under test as a child process pinned to the server core,
// waits until GET /readyz answers 200, and stops it for sure.
import { freePort, spawnChild, type Child } from "../../tools/process-harness.js";
import { trackServer, untrackServer } from "./noise.js";
import { pinnedCommand, SERVER_CORE } from "./pin.js";
import type { ServerSpec } from "./servers.js";

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 2_000;

export class ServerProcess {
  readonly #process: Child;
  readonly pid: number;
  readonly port: number;

  private constructor(process: Child, port: number) {
    if (process.pid === undefined) throw new Error("server process has no pid");
    this.#process = process;
    this.pid = process.pid;
    this.port = port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.#process.alive;
  }

  get stderrTail(): string {
    return this.#process.stderrTail;
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
    const child = spawnChild(command, args, {
      env: { ...process.env, ...spec.env, ...extraEnv, PORT: String(port), NODE_ENV: "production" },
    });
    const server = new ServerProcess(child, port);
    trackServer(server.pid);
    try {
      await child.waitReady(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200,
        { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 },
      );
    } catch (err) {
      await server.stop();
      throw new Error(
        `${spec.name} did not become ready (no 200 from /readyz): ${(err as Error).message}\n${child.stderrTail}`,
      );
    }
    return server;
  }

  /** SIGTERM, then SIGKILL after graceMs (a profiled server needs time to drain and write its profile). */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    if (!this.#process.alive) return;
    untrackServer(this.pid);
    await this.#process.stop({ graceMs });
  }
}
