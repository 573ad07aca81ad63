// In-process broker for the embedded (single-node) mode and for tests. Several
// MemoryBroker instances on one MemoryBus behave like nodes on one server, so
// the contract suite runs the same two-node checks here as on NATS and Redis.
import type { BrokerCapabilities } from "../../ports/broker.js";
import { silentLogger, type Logger } from "../../observability/logging.js";
import { BrokerBase, type Detach } from "./broker-base.js";
import { BrokerError, BrokerErrorCode } from "./broker-error.js";

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

export class MemoryBroker extends BrokerBase {
  readonly capabilities: BrokerCapabilities = { distributed: false };
  readonly #bus: MemoryBus;
  readonly #deliver: Deliver;
  #opened = false;

  constructor(options: MemoryBrokerOptions = {}) {
    // In-process there is no connection to lose: connected until closed.
    super({
      name: "memory broker",
      prefix: options.prefix,
      log: options.log ?? silentLogger(),
      connected: true,
    });
    this.#bus = options.bus ?? new MemoryBus();
    this.#deliver = (subject, payload) => {
      if (this.opened) this.deliver(subject, payload);
    };
  }

  open(): Promise<void> {
    if (this.closed) {
      return Promise.reject(new BrokerError(BrokerErrorCode.NotOpen, "broker is not open"));
    }
    this.#opened = true;
    return Promise.resolve();
  }

  protected get opened(): boolean {
    return this.#opened && !this.closed;
  }

  protected send(subject: string, payload: Uint8Array): void {
    this.#bus.publish(subject, payload);
  }

  protected attach(subject: string): Promise<Detach> {
    const detach = this.#bus.attach(subject, this.#deliver);
    return Promise.resolve(() => {
      detach();
      return Promise.resolve();
    });
  }

  protected release(subjects: readonly string[]): Promise<void> {
    // Drop this node's interest on the shared bus, as a closed connection would.
    for (const subject of subjects) this.#bus.detach(subject, this.#deliver);
    this.log.info("memory broker closed");
    return Promise.resolve();
  }
}
