// This node's rooms: one Room per room id with local members, opened on first
// join (broker subscription, then the store's head) and closed with its last
// member. It is also where stored messages enter the stream: `deliver` hands a
// freshly stored message to the local room and to the other nodes, and
// `announce` re-sends a stored one whose first announcement may have been lost.
import { ErrorCode, WireError } from "../protocol/errors.js";
import type { Logger } from "../observability/logging.js";
import type { Broker, Subscription } from "../ports/broker.js";
import type { Store } from "../ports/store.js";
import { noTelemetry, noTracing, type Telemetry } from "../ports/telemetry.js";
import { BrokerFanout } from "./broker-fanout.js";
import { Delivery } from "./delivery.js";
import { isPresencePayload } from "./presence.js";
import { Room } from "./room.js";
import { RETRY_AFTER_MS } from "./store-failure.js";

export interface RoomsOptions {
  readonly gapWaitMs: number;
  readonly replayLimit: number;
  /** HEAD_ANNOUNCE_AFTER in ms (see broker-fanout.ts); 0 turns it off. Default 1 s. */
  readonly headAnnounceAfterMs?: number | undefined;
  readonly telemetry?: Telemetry;
}

interface Entry {
  readonly room: Room;
  ready: Promise<void>;
  /** Memberships plus joins in progress; the room closes at zero. */
  users: number;
  subscription: Subscription | undefined;
}

export class Rooms {
  readonly #store: Store;
  readonly #broker: Broker;
  readonly #opts: RoomsOptions;
  readonly #log: Logger;
  readonly #telemetry: Telemetry;
  /**
   * Tracing is on: deliveries run inside a span. Off, a delivery calls the
   * room directly, without the closure the span needs (one per message).
   */
  readonly #traced: boolean;
  readonly #entries = new Map<string, Entry>();
  /** Publishes to other nodes; absent for the in-process broker (one node). */
  readonly #fanout: BrokerFanout | undefined;

  constructor(store: Store, broker: Broker, opts: RoomsOptions, log: Logger) {
    this.#store = store;
    this.#broker = broker;
    this.#opts = opts;
    this.#log = log;
    this.#telemetry = opts.telemetry ?? noTelemetry;
    this.#traced = this.#telemetry.tracing !== noTracing;
    this.#fanout = broker.capabilities.distributed
      ? new BrokerFanout(broker, log, opts.headAnnounceAfterMs)
      : undefined;
    // After a broker outage, messages published meanwhile are only in the store.
    broker.onStatus((connected) => {
      if (connected) this.#catchUpAll();
    });
  }

  get(roomId: string): Room | undefined {
    return this.#entries.get(roomId)?.room;
  }

  /** Opens (or shares) the room; pair every call with `release`. Throws WireError unavailable. */
  async acquire(roomId: string): Promise<Room> {
    let entry = this.#entries.get(roomId);
    if (entry === undefined) {
      const room = new Room(roomId, {
        store: this.#store,
        gapWaitMs: this.#opts.gapWaitMs,
        replayLimit: this.#opts.replayLimit,
        log: this.#log,
        metrics: this.#telemetry.metrics,
      });
      this.#telemetry.metrics.rooms(1);
      const created: Entry = { room, ready: Promise.resolve(), users: 0, subscription: undefined };
      created.ready = this.#open(created);
      this.#entries.set(roomId, created);
      entry = created;
    }
    entry.users++;
    try {
      await entry.ready;
    } catch (err) {
      this.release(roomId);
      // Store or broker down: the join can be retried once they are back.
      throw new WireError(ErrorCode.Unavailable, undefined, roomId, RETRY_AFTER_MS, { cause: err });
    }
    return entry.room;
  }

  release(roomId: string): void {
    const entry = this.#entries.get(roomId);
    if (entry === undefined) return;
    entry.users--;
    if (entry.users > 0) return;
    this.#entries.delete(roomId);
    this.#telemetry.metrics.rooms(-1);
    entry.room.close();
    // The subscription may still be opening; drop it once it exists.
    entry.ready
      .then(() => entry.subscription?.unsubscribe())
      .catch((err: unknown) =>
        this.#log.debug({ err, room: roomId }, "unsubscribe after close failed"),
      );
  }

  /** A message was just stored: this node's members and every other node get it. */
  deliver(roomId: string, delivery: Delivery): void {
    const room = this.#entries.get(roomId)?.room;
    if (room !== undefined) {
      if (this.#traced) {
        this.#telemetry.tracing.deliver(roomId, delivery.message, false, () =>
          room.offer(delivery),
        );
      } else {
        room.offer(delivery);
      }
    }
    this.#fanout?.publish(roomId, delivery);
  }

  /**
   * A publish turned out to be a duplicate of the message at `offset`. Its
   * first publisher may have died between storing it and handing it to the
   * broker, so nobody would announce it: read it back and deliver it again.
   * Nodes that have it drop it; nodes that don't fill their gap. Failures
   * only log: the room's next message (or a resume) closes the gap too.
   */
  async announce(roomId: string, offset: bigint): Promise<void> {
    try {
      const page = await this.#store.read(roomId, offset - 1n, 1);
      const stored = page.messages[0];
      if (stored === undefined || stored.offset !== offset) return;
      this.deliver(roomId, Delivery.fromStored(stored));
    } catch (err) {
      this.#log.warn({ err, room: roomId }, "announcing a duplicate's original failed");
    }
  }

  async #open(entry: Entry): Promise<void> {
    const { room } = entry;
    // Subscribe before reading the head, so nothing published in between is missed.
    if (this.#broker.capabilities.distributed) {
      entry.subscription = await this.#broker.subscribe(room.id, (payload) => {
        if (isPresencePayload(payload)) return; // presence.ts has its own handler
        let d;
        try {
          d = Delivery.fromRoomPayload(payload);
        } catch (err) {
          this.#log.warn({ err, room: room.id }, "undecodable broker payload dropped");
          return;
        }
        if (d instanceof Delivery) {
          if (this.#traced) {
            this.#telemetry.tracing.deliver(room.id, d.message, true, () => room.offer(d));
          } else {
            room.offer(d);
          }
        } else if (d !== undefined) {
          room.headAt(d);
        }
      });
    }
    const page = await this.#store.read(room.id, 0n, 0);
    room.start(page.head, page.epoch);
  }

  #catchUpAll(): void {
    for (const entry of this.#entries.values()) {
      void entry.ready.then(() => entry.room.catchUp()).catch(() => undefined);
    }
  }

  close(): void {
    this.#fanout?.close();
  }
}
