// What the private nats-server and redis-server of the tests (and the
// benchmark's redis-server) share: one child process at a time with its log
// and files in a temp dir, killed with the process that started it; stop() and
// start() keep the same address, for reconnect and chaos tests.
import { join } from "node:path";
import { removeTempDir, spawnChild, type Child } from "./process-harness.js";

export interface RestartableServer {
  /** <scheme>://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Starts the server again on the same address after stop(). */
  start(): Promise<void>;
  /** Stops the server (SIGTERM by default; SIGKILL for a crash). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server and removes its temp dir. */
  close(): Promise<void>;
  /** Sends a signal and returns at once: SIGSTOP and SIGCONT make a hang, not a refusal. */
  signal(signal: NodeJS.Signals): void;
}

export abstract class RestartableServerProcess implements RestartableServer {
  abstract readonly url: string;
  abstract readonly port: number;
  protected readonly dir: string;
  readonly #binary: string;
  #child: Child | undefined;

  readonly #cpus: string | undefined;

  protected constructor(binary: string, dir: string, cpus?: string) {
    this.#binary = binary;
    this.dir = dir;
    this.#cpus = cpus;
  }

  /** The server's arguments for this start (the address it must keep included). */
  protected abstract args(): readonly string[];

  /** Resolves once the just-started child serves; `child.waitReady` fails early if it exits. */
  protected abstract ready(child: Child): Promise<void>;

  async start(): Promise<void> {
    if (this.#child !== undefined) return;
    const child = spawnChild(this.#binary, this.args(), {
      logFile: join(this.dir, `${this.#binary}.log`),
      killOnSignals: true,
      ...(this.#cpus === undefined ? {} : { cpus: this.#cpus }),
    });
    this.#child = child;
    try {
      await this.ready(child);
    } catch (err) {
      await this.stop("SIGKILL");
      throw err;
    }
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    await child?.stop({ signal });
  }

  signal(signal: NodeJS.Signals): void {
    this.#child?.child.kill(signal);
  }

  async close(): Promise<void> {
    // A stopped (SIGSTOP) process still dies of SIGKILL.
    await this.stop("SIGKILL");
    await removeTempDir(this.dir);
  }
}
