// A Broker wrapped for telemetry: failed publishes and reconnects counted,
// and each room publish made inside a traced operation gets its own span.
// Everything else passes straight through to the adapter.
import type {
  Broker,
  BrokerCapabilities,
  BrokerStatusListener,
  PayloadHandler,
  Subscription,
} from "../ports/broker.js";
import type { Metrics } from "./metrics.js";
import type { Tracing } from "./tracing.js";

export class InstrumentedBroker implements Broker {
  readonly #inner: Broker;
  readonly #metrics: Metrics | undefined;
  readonly #tracing: Tracing | undefined;
  #everConnected: boolean;

  constructor(inner: Broker, metrics: Metrics | undefined, tracing: Tracing | undefined) {
    this.#inner = inner;
    this.#metrics = metrics;
    this.#tracing = tracing;
    this.#everConnected = inner.connected;
    inner.onStatus((connected) => {
      if (!connected) return;
      // The first connection is not a reconnect.
      if (this.#everConnected) this.#metrics?.brokerReconnected();
      this.#everConnected = true;
    });
  }

  get capabilities(): BrokerCapabilities {
    return this.#inner.capabilities;
  }

  get connected(): boolean {
    return this.#inner.connected;
  }

  open(): Promise<void> {
    return this.#inner.open();
  }

  onStatus(listener: BrokerStatusListener): void {
    this.#inner.onStatus(listener);
  }

  publish(room: string, payload: Uint8Array): Promise<void> {
    const tracing = this.#tracing;
    const sent =
      tracing === undefined
        ? this.#inner.publish(room, payload)
        : tracing.broker(room, () => this.#inner.publish(room, payload));
    return this.#metrics === undefined ? sent : sent.catch((err: unknown) => this.#failed(err));
  }

  #failed(err: unknown): never {
    this.#metrics?.brokerPublishFailed();
    throw err;
  }

  subscribe(room: string, handler: PayloadHandler): Promise<Subscription> {
    return this.#inner.subscribe(room, handler);
  }

  publishControl(payload: Uint8Array): Promise<void> {
    const sent = this.#inner.publishControl(payload);
    return this.#metrics === undefined ? sent : sent.catch((err: unknown) => this.#failed(err));
  }

  subscribeControl(handler: PayloadHandler): Promise<Subscription> {
    return this.#inner.subscribeControl(handler);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
