// Fixtures for unit tests of the core: the in-memory store and broker with a
// few hooks to hold a call at a chosen moment, so a test can order events
// (a store read, a session save, a broker arrival) exactly as it wants.
import { Grants, type Identity } from "../../src/core/access.js";
import { setImmediate as nextTurn } from "node:timers/promises";
import { MemoryBroker, type MemoryBrokerOptions } from "../../src/adapters/broker/memory-broker.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { Delivery } from "../../src/core/delivery.js";
import type { RouterOptions } from "../../src/core/router.js";
import type { BrokerCapabilities } from "../../src/ports/broker.js";
import type { HistoryPage, NewMessage } from "../../src/ports/store.js";

export const routerOptions: RouterOptions = {
  gapWaitMs: 20,
  replayLimit: 100,
  maxRoomsPerMember: 128,
  sessionTtlMs: 60_000,
  ackFlushIntervalMs: 50,
  badFrameLimit: 10,
  badFrameWindowMs: 60_000,
};

export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Lets every queued microtask and immediate run. Used only to show that
 * something did NOT happen (a negative cannot be awaited); positive
 * conditions use `eventually`.
 */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await nextTurn();
}

/** A MemoryStore whose next `read` can be held after it took its snapshot. */
export class GatedStore extends MemoryStore {
  #next: { gate: Deferred; reading: Deferred } | undefined;
  #held: Deferred | undefined;
  reads = 0;
  /** When each read was called (Date.now()). */
  readonly readAt: number[] = [];

  constructor() {
    super({ dedupWindowMs: 60_000 });
  }

  /** Holds the next read until `release()`; resolves once it has read. Later reads pass. */
  hold(): Promise<void> {
    this.#next = { gate: deferred(), reading: deferred() };
    return this.#next.reading.promise;
  }

  release(): void {
    const gate = this.#held ?? this.#next?.gate;
    this.#held = undefined;
    this.#next = undefined;
    gate?.resolve();
  }

  override async read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    this.reads++;
    this.readAt.push(Date.now());
    const next = this.#next;
    this.#next = undefined;
    const page = await super.read(room, afterOffset, limit);
    if (next !== undefined) {
      this.#held = next.gate;
      next.reading.resolve();
      await next.gate.promise;
    }
    return page;
  }
}

/**
 * A MemoryBroker that says it is distributed, so routers on one MemoryBus
 * exchange room traffic as nodes on NATS or Redis do (the plain one is the
 * single-node broker, and rooms skip it).
 */
export class ClusterMemoryBroker extends MemoryBroker {
  override readonly capabilities: BrokerCapabilities = { distributed: true };

  constructor(options: MemoryBrokerOptions = {}) {
    super(options);
  }
}

/**
 * A node's broker that loses room messages on their way in, as a node whose
 * subscription is briefly gone would (the Broker port is at most once). The
 * fault is injected at the port, below the core: the router sees nothing.
 */
export class LossyBroker extends ClusterMemoryBroker {
  #lose = 0;
  #loseAnnouncements = 0;
  /** Messages lost so far. */
  lost = 0;
  /** Head announcements that reached this node. */
  announcements = 0;

  /** Loses the next `count` room messages (not presence, not announcements) arriving here. */
  loseIncoming(count = 1): void {
    this.#lose += count;
  }

  /** Loses the next `count` head announcements arriving here. */
  loseAnnouncements(count = 1): void {
    this.#loseAnnouncements += count;
  }

  /** The connection drops and comes back (status listeners hear false, then true). */
  reconnect(): void {
    this.setConnected(false);
    this.setConnected(true);
  }

  protected override deliver(subject: string, payload: Uint8Array): void {
    const kind = roomPayloadKind(payload);
    if (kind === "head" && this.#loseAnnouncements > 0) {
      this.#loseAnnouncements--;
      this.lost++;
      return;
    }
    if (kind === "head") this.announcements++;
    if (kind === "message" && this.#lose > 0) {
      this.#lose--;
      this.lost++;
      return;
    }
    super.deliver(subject, payload);
  }
}

function roomPayloadKind(payload: Uint8Array): "message" | "head" | undefined {
  if (payload[0] === 0) return undefined; // presence
  try {
    const decoded = Delivery.fromRoomPayload(payload);
    if (decoded instanceof Delivery) return "message";
    return decoded === undefined ? undefined : "head";
  } catch {
    return undefined; // node control
  }
}

export function newMessage(id: string, content = id): NewMessage {
  return { messageId: id, senderId: "s", sentAt: "2024-01-01T00:00:00Z", content };
}

/** Appends `count` messages m<offset> to `room`; returns the epoch. */
export async function fill(store: MemoryStore, room: string, count: number): Promise<string> {
  let epoch = "";
  for (let i = 0; i < count; i++) {
    const head = (await store.read(room, 0n, 0)).head;
    epoch = (await store.append(room, newMessage(`m${head + 1n}`))).epoch;
  }
  return epoch;
}

/** The stored messages in (after, upTo], as deliveries (what the broker would carry). */
export async function stored(
  store: MemoryStore,
  room: string,
  after: bigint,
  upTo: bigint,
): Promise<Delivery[]> {
  if (upTo <= after) return [];
  const page = await store.read(room, after, Number(upTo - after));
  return page.messages.map((m) => Delivery.fromStored(m));
}

export function range(from: bigint, to: bigint): bigint[] {
  const out: bigint[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

/** A verified credential for `userId`, valid for an hour, with `grants` (everything by default). */
export function identity(userId: string, grants: Grants = Grants.all): Identity {
  return { userId, expiresAt: Date.now() + 3_600_000, grants };
}
