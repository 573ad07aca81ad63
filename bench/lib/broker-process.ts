// Private brokers for the cluster scenario: a nats-server or redis-server child
// process on a free 127.0.0.1 port, started fresh for each run so no state or
// other user's traffic leaks into a measurement, pinned to the server core (the
// broker is part of the server side's cost) and killed for sure at the end.
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./free-port.js";
import { trackServer, untrackServer } from "./noise.js";
import { pinnedCommand, SERVER_CORE } from "./pin.js";

export type BrokerKind = "nats" | "redis";

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;

const live = new Set<ChildProcess>();

// The runner's watchdog and SIGINT paths end with process.exit(), which does not
// wait for finally blocks: a broker must not outlive the benchmark, so whatever
// is still running is killed synchronously on the way out.
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export class BrokerProcess {
  readonly #child: ChildProcess;
  readonly kind: BrokerKind;
  readonly pid: number;
  readonly port: number;
  #stderr = "";
  #exited = false;

  private constructor(kind: BrokerKind, child: ChildProcess, port: number) {
    if (child.pid === undefined) throw new Error(`${kind} broker process has no pid`);
    this.kind = kind;
    this.#child = child;
    this.pid = child.pid;
    this.port = port;
    child.stdout?.resume();
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-2000);
    });
    child.on("exit", () => {
      this.#exited = true;
      live.delete(child);
    });
  }

  /** The URL the servers under test are given (NATS_URL or REDIS_URL). */
  get url(): string {
    return `${this.kind}://127.0.0.1:${this.port}`;
  }

  static async start(kind: BrokerKind): Promise<BrokerProcess> {
    const port = await freePort();
    const argv =
      kind === "nats"
        ? ["nats-server", "-a", "127.0.0.1", "-p", String(port)]
        : // No persistence: a benchmark broker writes nothing to disk.
          [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            String(port),
            "--save",
            "",
            "--appendonly",
            "no",
          ];
    const [command, ...args] = pinnedCommand(SERVER_CORE, argv);
    if (command === undefined) throw new Error("empty command");
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    // spawn reports a missing binary asynchronously; without a listener it would crash the runner.
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    live.add(child);
    let broker: BrokerProcess;
    try {
      broker = new BrokerProcess(kind, child, port);
    } catch (err) {
      child.kill("SIGKILL");
      live.delete(child);
      throw err;
    }
    trackServer(broker.pid);
    const failed = await Promise.race([
      broker.#waitReady().then(() => undefined),
      spawnError,
    ]).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    if (failed !== undefined) {
      await broker.stop();
      throw new Error(`${kind} broker did not start: ${failed.message}\n${broker.#stderr}`);
    }
    return broker;
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.#exited) throw new Error("exited during start");
      if (await canConnect(this.port)) return;
      await sleep(50);
    }
    throw new Error(`not listening on ${this.port} after ${READY_TIMEOUT_MS} ms`);
  }

  get alive(): boolean {
    return !this.#exited;
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    untrackServer(this.pid);
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.#child.kill("SIGTERM");
    const timedOut = await Promise.race([
      exited.then(() => false),
      sleep(STOP_GRACE_MS).then(() => true),
    ]);
    if (timedOut && !this.#exited) {
      this.#child.kill("SIGKILL");
      await exited;
    }
  }
}

/** Starts a broker, runs body, and stops the broker on every path. */
export async function withBroker<T>(
  kind: BrokerKind,
  body: (broker: BrokerProcess) => Promise<T>,
): Promise<T> {
  const broker = await BrokerProcess.start(kind);
  try {
    return await body(broker);
  } finally {
    await broker.stop();
  }
}
