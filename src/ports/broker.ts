// The Broker port: how nodes hand each other room traffic and control
// messages. Adapters live in src/adapters/broker/ and all pass
// test/contract/broker.contract.ts.

export interface BrokerCapabilities {
  /** Reaches other processes (NATS, Redis); false for the in-process broker. */
  readonly distributed: boolean;
}

/** Called with each payload, in the order the broker delivers them. */
export type PayloadHandler = (payload: Uint8Array) => void;

export interface Subscription {
  /** Stops delivery to this handler; resolves once the broker dropped interest. */
  unsubscribe(): Promise<void>;
}

/** Broker connection state as `/readyz` and the router see it. */
export type BrokerStatusListener = (connected: boolean) => void;

/**
 * Guarantees every adapter keeps (the contract suite checks each):
 * - At most once: a payload reaches each current subscriber of its room on
 *   every node zero or one time. Gaps are closed from the store, not here.
 * - Per publisher and room, payloads arrive in the order published.
 * - Room ids are encoded before they reach the broker, so no id acts as a
 *   wildcard or reaches another room's subscribers.
 * - The adapter reconnects by itself with backoff and reports its state to
 *   status listeners; subscriptions survive a reconnect.
 */
export interface Broker {
  readonly capabilities: BrokerCapabilities;

  /** Connects; resolves when ready to publish and subscribe. */
  open(): Promise<void>;

  /** True while connected to the broker (always true in-process). */
  readonly connected: boolean;

  /** Registers a listener for connection state changes. */
  onStatus(listener: BrokerStatusListener): void;

  /** Publishes one room payload to every node subscribed to the room. */
  publish(room: string, payload: Uint8Array): Promise<void>;

  /** Subscribes this node to a room; resolves once the broker has the interest. */
  subscribe(room: string, handler: PayloadHandler): Promise<Subscription>;

  /** Publishes on the node-control channel, which every node receives (the sender included). */
  publishControl(payload: Uint8Array): Promise<void>;

  /** Subscribes to the node-control channel. */
  subscribeControl(handler: PayloadHandler): Promise<Subscription>;

  /** Closes the connection; subscriptions end. */
  close(): Promise<void>;
}
