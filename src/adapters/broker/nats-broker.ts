// Broker over core NATS pub/sub (no JetStream: the store, not the broker,
// closes gaps). One connection per node; one NATS subscription per subject
// however many local handlers (see RoomInterest). Subjects:
//   <prefix>.room.<encoded room id>   and   <prefix>.control
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type {
  Broker,
  BrokerCapabilities,
  BrokerStatusListener,
  PayloadHandler,
  Subscription,
} from "../../ports/broker.js";
import { silentLogger, type Logger } from "../../observability/logging.js";
import { BrokerError, BrokerErrorCode } from "./broker-error.js";
import { RoomInterest, type Detach } from "./room-interest.js";
import { checkPrefix, controlSubject, roomSubject } from "./room-subject.js";

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

export class NatsBroker implements Broker {
  readonly capabilities: BrokerCapabilities = { distributed: true };
  readonly #options: NatsBrokerOptions;
  readonly #prefix: string;
  readonly #log: Logger;
  readonly #interest: RoomInterest;
  readonly #listeners = new Set<BrokerStatusListener>();
  #nc: NatsConnection | undefined;
  #connected = false;
  #closed = false;

  constructor(options: NatsBrokerOptions) {
    this.#options = options;
    this.#prefix = checkPrefix(options.prefix ?? "roomcast");
    this.#log = (options.log ?? silentLogger()).child({ component: "broker", broker: "nats" });
    this.#interest = new RoomInterest((subject) => this.#attach(subject), this.#log);
  }

  get connected(): boolean {
    return this.#connected;
  }

  async open(): Promise<void> {
    if (this.#nc !== undefined || this.#closed) {
      throw new BrokerError(BrokerErrorCode.NotOpen, "broker already opened or closed");
    }
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
    this.#setConnected(true);
  }

  onStatus(listener: BrokerStatusListener): void {
    this.#listeners.add(listener);
  }

  async publish(room: string, payload: Uint8Array): Promise<void> {
    await this.#publish(roomSubject(this.#prefix, room), payload);
  }

  async subscribe(room: string, handler: PayloadHandler): Promise<Subscription> {
    return await this.#subscribe(roomSubject(this.#prefix, room), handler);
  }

  async publishControl(payload: Uint8Array): Promise<void> {
    await this.#publish(controlSubject(this.#prefix), payload);
  }

  async subscribeControl(handler: PayloadHandler): Promise<Subscription> {
    return await this.#subscribe(controlSubject(this.#prefix), handler);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#interest.clear();
    const nc = this.#nc;
    this.#nc = undefined;
    this.#setConnected(false);
    if (nc === undefined) return;
    try {
      await nc.close();
    } catch (err) {
      throw new BrokerError(BrokerErrorCode.OperationFailed, "closing the NATS connection failed", {
        cause: err,
      });
    }
  }

  // Resolves once the payload is in the connection's outbound buffer: core NATS
  // has no publish acknowledgement, and waiting for a round trip per publish
  // would halve throughput. While disconnected it rejects instead of letting
  // the client buffer: a publish that would be delivered late, after the
  // reconnect, is worse for the router than an honest error.
  #publish(subject: string, payload: Uint8Array): Promise<void> {
    try {
      const nc = this.#open();
      if (!this.#connected) {
        throw new BrokerError(
          BrokerErrorCode.Disconnected,
          "NATS is disconnected; publish dropped",
        );
      }
      nc.publish(subject, payload);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(
        err instanceof BrokerError
          ? err
          : new BrokerError(BrokerErrorCode.OperationFailed, "NATS publish failed", { cause: err }),
      );
    }
  }

  async #subscribe(subject: string, handler: PayloadHandler): Promise<Subscription> {
    this.#open();
    return await this.#interest.add(subject, handler);
  }

  async #attach(subject: string): Promise<Detach> {
    const nc = this.#open();
    try {
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err !== null) {
            this.#log.warn({ err, subject }, "NATS subscription error");
            return;
          }
          this.#interest.deliver(subject, msg.data);
        },
      });
      // The client sends SUB asynchronously; a round trip makes "subscribe
      // resolved" mean "the server has the interest". While disconnected this
      // waits for the reconnect, which re-sends every subscription.
      await nc.flush();
      return async () => {
        sub.unsubscribe();
        // A disconnected server holds no interest for us; no round trip needed.
        if (this.#connected && !nc.isClosed()) await nc.flush();
      };
    } catch (err) {
      throw new BrokerError(BrokerErrorCode.OperationFailed, "NATS subscribe failed", {
        cause: err,
      });
    }
  }

  async #watch(nc: NatsConnection): Promise<void> {
    try {
      for await (const status of nc.status()) {
        switch (status.type) {
          case "disconnect":
            this.#log.warn({ server: status.server }, "NATS disconnected; reconnecting");
            this.#setConnected(false);
            break;
          case "reconnect":
            this.#log.info({ server: status.server }, "NATS reconnected");
            // The client re-sends its subscriptions on reconnect; a flush (PING
            // and PONG) returns once the server has them, so "connected" means
            // new publishes reach us and the router's catch-up misses nothing.
            nc.flush().then(
              () => this.#setConnected(!nc.isClosed()),
              (err: unknown) => this.#log.warn({ err }, "NATS flush after reconnect failed"),
            );
            break;
          case "error":
            this.#log.warn({ err: status.error }, "NATS connection error");
            break;
          case "staleConnection":
            this.#log.warn("NATS connection stale; forcing reconnect");
            break;
          default:
            break;
        }
      }
    } catch (err) {
      this.#log.warn({ err }, "NATS status stream failed");
    }
    // The iterator ends when the connection closes, by close() or for good.
    if (!this.#closed) this.#log.error("NATS connection closed unexpectedly");
    this.#setConnected(false);
  }

  #open(): NatsConnection {
    if (this.#nc === undefined) {
      throw new BrokerError(BrokerErrorCode.NotOpen, "broker is not open");
    }
    return this.#nc;
  }

  #setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    if (connected) this.#log.info("NATS connected");
    for (const listener of this.#listeners) {
      try {
        listener(connected);
      } catch (err) {
        this.#log.error({ err }, "broker status listener threw");
      }
    }
  }
}
