// Hands stored messages to the broker for the other nodes. The broker is at
// most once, and other nodes only notice a missing message when a later one
// arrives; if this node's publishes fail (its broker connection is down) and
// the room then goes quiet, they would never notice. So the last message of
// each room whose publish failed is kept and published again once the broker
// is back (or after RETRY_MS): nodes that have it drop it as a duplicate,
// nodes that don't see a gap and read it, and all before it, from the store.
import type { Logger } from "../observability/logging.js";
import type { Broker } from "../ports/broker.js";
import type { Delivery } from "./delivery.js";

const RETRY_MS = 1000;

export class BrokerFanout {
  readonly #broker: Broker;
  readonly #log: Logger;
  /** room → the highest-offset message whose publish failed. */
  readonly #unsent = new Map<string, Delivery>();
  #timer: NodeJS.Timeout | undefined;

  constructor(broker: Broker, log: Logger) {
    this.#broker = broker;
    this.#log = log;
    broker.onStatus((connected) => {
      if (connected) this.#retry();
    });
  }

  publish(room: string, delivery: Delivery): void {
    this.#broker.publish(room, delivery.envelopeBytes()).catch((err: unknown) => {
      this.#log.warn({ err, room }, "broker publish failed; will announce the room's head again");
      this.#remember(room, delivery);
    });
  }

  #remember(room: string, delivery: Delivery): void {
    const kept = this.#unsent.get(room);
    if (kept === undefined || kept.offset < delivery.offset) this.#unsent.set(room, delivery);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#retry();
    }, RETRY_MS);
  }

  #retry(): void {
    const pending = [...this.#unsent];
    this.#unsent.clear();
    for (const [room, delivery] of pending) this.publish(room, delivery);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#unsent.clear();
  }
}
