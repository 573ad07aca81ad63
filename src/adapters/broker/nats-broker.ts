// Broker over core NATS pub/sub (no JetStream: the store, not the broker,
// closes gaps). One connection per node; one NATS subscription per subject
// however many local handlers (see RoomInterest). Subjects:
//   <prefix>.room.<encoded room id>   and   <prefix>.control
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { BrokerCapabilities } from "../../ports/broker.js";
import { silentLogger, type Logger } from "../../observability/logging.js";
import { BrokerBase, type Detach } from "./broker-base.js";
import { BrokerError, BrokerErrorCode } from "./broker-error.js";

export interface NatsBrokerOptions {
  /** Server URL, e.g. nats://127.0.0.1:4222 (several may be given comma-separated). */
  readonly url: string;
  /** Subject prefix, dot-separated tokens. Default "roomcast". */
  readonly prefix?: string;
  readonly log?: Logger;
  /** Wait between reconnect attempts; the client adds up to a quarter of it as jitter. Default 2000 ms. */
  readonly reconnectTimeWaitMs?: number;
  /** Client name shown in the server's monitoring. Default "roomcast". */
  readonly name?: string;
}

export class NatsBroker extends BrokerBase {
  readonly capabilities: BrokerCapabilities = { distributed: true };
  readonly #options: NatsBrokerOptions;
  #nc: NatsConnection | undefined;

  constructor(options: NatsBrokerOptions) {
    super({
      name: "NATS",
      prefix: options.prefix,
      log: (options.log ?? silentLogger()).child({ component: "broker", broker: "nats" }),
      connected: false,
    });
    this.#options = options;
  }

  async open(): Promise<void> {
    this.checkFirstOpen();
    const wait = this.#options.reconnectTimeWaitMs ?? 2000;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: this.#options.url.split(",").map((s) => s.trim()),
        name: this.#options.name ?? "roomcast",
        // Reconnect forever: a node outlives broker restarts; /readyz reports the gap.
        maxReconnectAttempts: -1,
        reconnectTimeWait: wait,
        reconnectJitter: Math.ceil(wait / 4),
      });
    } catch (err) {
      throw new BrokerError(BrokerErrorCode.ConnectFailed, "cannot connect to NATS", {
        cause: err,
      });
    }
    this.#nc = nc;
    void this.#watch(nc);
    this.setConnected(true);
  }

  protected get opened(): boolean {
    return this.#nc !== undefined;
  }

  // Done once the payload is in the connection's outbound buffer: core NATS
  // has no publish acknowledgement, and waiting for a round trip per publish
  // would halve throughput. The base refuses publishes while disconnected
  // instead of letting the client buffer them for after the reconnect.
  protected send(subject: string, payload: Uint8Array): void {
    this.#connection().publish(subject, payload);
  }

  protected async attach(subject: string): Promise<Detach> {
    const nc = this.#connection();
    const sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) {
          this.log.warn({ err, subject }, "NATS subscription error");
          return;
        }
        this.deliver(subject, msg.data);
      },
    });
    // The client sends SUB asynchronously; a round trip makes "subscribe
    // resolved" mean "the server has the interest". While disconnected this
    // waits for the reconnect, which re-sends every subscription.
    await nc.flush();
    return async () => {
      sub.unsubscribe();
      // A disconnected server holds no interest for us; no round trip needed.
      if (this.connected && !nc.isClosed()) await nc.flush();
    };
  }

  protected async release(): Promise<void> {
    const nc = this.#nc;
    this.#nc = undefined;
    await nc?.close();
  }

  async #watch(nc: NatsConnection): Promise<void> {
    try {
      for await (const status of nc.status()) {
        switch (status.type) {
          case "disconnect":
            this.log.warn({ server: status.server }, "NATS disconnected; reconnecting");
            this.setConnected(false);
            break;
          case "reconnect":
            this.log.info({ server: status.server }, "NATS reconnected");
            // The client re-sends its subscriptions on reconnect; a flush (PING
            // and PONG) returns once the server has them, so "connected" means
            // new publishes reach us and the router's catch-up misses nothing.
            nc.flush().then(
              () => this.setConnected(!nc.isClosed()),
              (err: unknown) => this.log.warn({ err }, "NATS flush after reconnect failed"),
            );
            break;
          case "error":
            this.log.warn({ err: status.error }, "NATS connection error");
            break;
          case "staleConnection":
            this.log.warn("NATS connection stale; forcing reconnect");
            break;
          default:
            break;
        }
      }
    } catch (err) {
      this.log.warn({ err }, "NATS status stream failed");
    }
    // The iterator ends when the connection closes, by close() or for good.
    if (!this.closed) this.log.error("NATS connection closed unexpectedly");
    this.setConnected(false);
  }

  #connection(): NatsConnection {
    if (this.#nc === undefined) {
      throw new BrokerError(BrokerErrorCode.NotOpen, "broker is not open");
    }
    return this.#nc;
  }
}
