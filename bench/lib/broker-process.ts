// Private brokers for the cluster scenario: a nats-server or redis-server child
// process on a free 127.0.0.1 port, started fresh for each run so no state or
// other user's traffic leaks into a measurement, pinned to the server core (the
// broker is part of the server side's cost) and killed for sure at the end
// (the harness kills it on process.exit(), which the runner's watchdog and
// SIGINT paths end with without waiting for finally blocks).
import { freePort, tcpOpen } from "../../tools/process-harness.js";
import { PinnedServer } from "./pinned-server.js";

export type BrokerKind = "nats" | "redis";

const READY_TIMEOUT_MS = 10_000;

export class BrokerProcess extends PinnedServer {
  readonly kind: BrokerKind;

  private constructor(kind: BrokerKind, port: number) {
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
    super(`${kind} broker`, argv, port, { stderrTailChars: 2000 });
    this.kind = kind;
  }

  /** The URL the servers under test are given (NATS_URL or REDIS_URL). */
  get url(): string {
    return `${this.kind}://127.0.0.1:${this.port}`;
  }

  static async start(kind: BrokerKind): Promise<BrokerProcess> {
    const broker = new BrokerProcess(kind, await freePort());
    await broker.waitReady(`${kind} broker did not start`, () => tcpOpen(broker.port), {
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 50,
    });
    return broker;
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
