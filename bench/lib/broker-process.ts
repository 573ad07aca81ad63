// Private brokers for the cluster scenario: a nats-server or redis-server child
// process on a free 127.0.0.1 port, started fresh for each run so no state or
// other user's traffic leaks into a measurement, pinned to the server core (the
// broker is part of the server side's cost) and killed for sure at the end
// (the harness kills it on process.exit(), which the runner's watchdog and
// SIGINT paths end with without waiting for finally blocks).
import { freePort, spawnChild, tcpOpen, type Child } from "../../tools/process-harness.js";
import { trackServer, untrackServer } from "./noise.js";
import { pinnedCommand, SERVER_CORE } from "./pin.js";

export type BrokerKind = "nats" | "redis";

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;

export class BrokerProcess {
  readonly #process: Child;
  readonly kind: BrokerKind;
  readonly pid: number;
  readonly port: number;

  private constructor(kind: BrokerKind, process: Child, port: number) {
    if (process.pid === undefined) throw new Error(`${kind} broker process has no pid`);
    this.kind = kind;
    this.#process = process;
    this.pid = process.pid;
    this.port = port;
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
    const child = spawnChild(command, args, { stderrTailChars: 2000 });
    const broker = new BrokerProcess(kind, child, port);
    trackServer(broker.pid);
    try {
      await child.waitReady(() => tcpOpen(port), { timeoutMs: READY_TIMEOUT_MS, intervalMs: 50 });
    } catch (err) {
      await broker.stop();
      throw new Error(
        `${kind} broker did not start: ${(err as Error).message}\n${child.stderrTail}`,
      );
    }
    return broker;
  }

  get alive(): boolean {
    return this.#process.alive;
  }

  async stop(): Promise<void> {
    if (!this.#process.alive) return;
    untrackServer(this.pid);
    await this.#process.stop({ graceMs: STOP_GRACE_MS });
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
