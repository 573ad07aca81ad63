// What a server-side process of a measurement (a server under test, or the
// broker between cluster nodes) gets: pinned to the server core, its CPU time
// counted apart from the machine's noise, ready before the load starts, and
// stopped for sure (SIGTERM, then SIGKILL after a grace period).
import { spawnChild, type Child, type SpawnOptions } from "../../tools/process-harness.js";
import { trackServer, untrackServer } from "./noise.js";
import { pinnedCommand, SERVER_CORE } from "./pin.js";

const STOP_GRACE_MS = 2_000;

export interface ReadyOptions {
  readonly timeoutMs: number;
  readonly intervalMs: number;
}

export abstract class PinnedServer {
  readonly pid: number;
  readonly port: number;
  readonly #child: Child;

  /** Starts argv pinned to the server core; throws when it cannot be started at all. */
  protected constructor(
    what: string,
    argv: readonly string[],
    port: number,
    options: Pick<SpawnOptions, "env" | "stderrTailChars"> = {},
  ) {
    const [command, ...args] = pinnedCommand(SERVER_CORE, [...argv]);
    if (command === undefined) throw new Error("empty command");
    this.#child = spawnChild(command, args, options);
    if (this.#child.pid === undefined) throw new Error(`${what} process has no pid`);
    this.pid = this.#child.pid;
    this.port = port;
    trackServer(this.pid);
  }

  get alive(): boolean {
    return this.#child.alive;
  }

  get stderrTail(): string {
    return this.#child.stderrTail;
  }

  /** SIGTERM, then SIGKILL after graceMs (a profiled server needs time to drain and write its profile). */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    if (!this.#child.alive) return;
    untrackServer(this.pid);
    await this.#child.stop({ graceMs });
  }

  /** Waits for `check`; on failure (early exit included) stops the process and throws `failure` with its stderr. */
  protected async waitReady(
    failure: string,
    check: () => Promise<boolean>,
    options: ReadyOptions,
  ): Promise<void> {
    try {
      await this.#child.waitReady(check, options);
    } catch (err) {
      await this.stop();
      throw new Error(`${failure}: ${(err as Error).message}\n${this.stderrTail}`);
    }
  }
}
