// In-process broker for the embedded (single-node) mode and for tests. Several
// MemoryBroker instances on one MemoryBus behave like nodes on one server, so
// the contract suite runs the same two-node checks here as on NATS and Redis.
import type {
  Broker,
  BrokerCapabilities,
  BrokerStatusListener,
  PayloadHandler,
  Subscription,
} from "../../ports/broker.js";
import { silentLogger, type Logger } from "../../observability/logging.js";
import { BrokerError, BrokerErrorCode } from "./broker-error.js";
import { RoomInterest } from "./room-interest.js";
import { checkPrefix, controlSubject, roomSubject } from "./room-subject.js";

type Deliver = (subject: string, payload: Uint8Array) => void;

/** The "server" that MemoryBroker instances share: subjects to interested nodes. */
export class MemoryBus {
  readonly #subjects = new Map<string, Set<Deliver>>();

  /** Queues delivery to every node interested now; each publish is one microtask, so order holds. */
  publish(subject: string, payload: Uint8Array): void {
    const nodes = this.#subjects.get(subject);
    if (nodes === undefined || nodes.size === 0) return;
    // One copy per publish, like a network broker: the publisher may reuse its
    // buffer as soon as publish resolves, and all nodes share the same bytes.
    const bytes = payload.slice();
    const targets = [...nodes];
    queueMicrotask(() => {
      for (const deliver of targets) deliver(subject, bytes);
    });
  }

  attach(subject: string, deliver: Deliver): () => void {
    let nodes = this.#subjects.get(subject);
    if (nodes === undefined) {
      nodes = new Set();
      this.#subjects.set(subject, nodes);
    }
    nodes.add(deliver);
    return () => this.detach(subject, deliver);
  }

  detach(subject: string, deliver: Deliver): void {
    const nodes = this.#subjects.get(subject);
    if (nodes === undefined) return;
    nodes.delete(deliver);
    if (nodes.size === 0) this.#subjects.delete(subject);
  }

  /** How many nodes hold an interest in the subject (what a server's monitoring would show). */
  interestCount(subject: string): number {
    return this.#subjects.get(subject)?.size ?? 0;
  }
}

export interface MemoryBrokerOptions {
  /** Shared bus; brokers on the same bus reach each other. Default: a private bus. */
  readonly bus?: MemoryBus;
  /** Subject prefix, as for the distributed brokers. Default "roomcast". */
  readonly prefix?: string;
  readonly log?: Logger;
}

export class MemoryBroker implements Broker {
  readonly capabilities: BrokerCapabilities = { distributed: false };
  readonly #bus: MemoryBus;
  readonly #prefix: string;
  readonly #log: Logger;
  readonly #interest: RoomInterest;
  readonly #deliver: Deliver;
  readonly #listeners = new Set<BrokerStatusListener>();
  #state: "new" | "open" | "closed" = "new";

  constructor(options: MemoryBrokerOptions = {}) {
    this.#bus = options.bus ?? new MemoryBus();
    this.#prefix = checkPrefix(options.prefix ?? "roomcast");
    this.#log = options.log ?? silentLogger();
    this.#deliver = (subject, payload) => {
      if (this.#state === "open") this.#interest.deliver(subject, payload);
    };
    this.#interest = new RoomInterest((subject) => {
      const detach = this.#bus.attach(subject, this.#deliver);
      return Promise.resolve(() => {
        detach();
        return Promise.resolve();
      });
    }, this.#log);
  }

  get connected(): boolean {
    return this.#state !== "closed";
  }

  open(): Promise<void> {
    if (this.#state === "closed") return Promise.reject(notOpen());
    this.#state = "open";
    return Promise.resolve();
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

  close(): Promise<void> {
    if (this.#state === "closed") return Promise.resolve();
    const subjects = this.#interest.subjects();
    this.#state = "closed";
    // Drop this node's interest on the shared bus, as a closed connection would.
    for (const subject of subjects) this.#bus.detach(subject, this.#deliver);
    this.#interest.clear();
    for (const listener of this.#listeners) listener(false);
    this.#log.info("memory broker closed");
    return Promise.resolve();
  }

  #publish(subject: string, payload: Uint8Array): Promise<void> {
    if (this.#state !== "open") return Promise.reject(notOpen());
    this.#bus.publish(subject, payload);
    return Promise.resolve();
  }

  async #subscribe(subject: string, handler: PayloadHandler): Promise<Subscription> {
    if (this.#state !== "open") throw notOpen();
    return await this.#interest.add(subject, handler);
  }
}

function notOpen(): BrokerError {
  return new BrokerError(BrokerErrorCode.NotOpen, "broker is not open");
}
