// Hands stored messages to the broker for the other nodes. The broker is at
// most once, and other nodes only notice a missing message when a later one
// arrives: a message lost on its way to a node (a publish that failed, a
// subscription briefly gone, a broker restart) in a room that then goes
// quiet would never reach that node's members. Two things bound that:
// - the last message of each room whose publish failed is kept and
//   published again once the broker is back (or after RETRY_MS);
// - once a room this node published to has been quiet for at most
//   `announceAfterMs` (HEAD_ANNOUNCE_AFTER), the node announces the room's
//   head: an offset, a few bytes. Nodes that have it drop it; a node that
//   lost a message sees the head past what it delivered and reads the rest
//   from the store. A room that stays busy is never announced (its next
//   message shows the gap), so the cost is one small broker message per room
//   per quiet spell, and on the fanout path one Map.set per publish.
//   A connection that dies with bytes in flight loses them silently, and an
//   announcement sent into it too; so after this node's broker reconnects,
//   it announces again the head of every room it published to within
//   REANNOUNCE_WINDOW_MS (longer than a dead connection goes unnoticed).
import type { Logger } from "../observability/logging.js";
import type { Broker } from "../ports/broker.js";
import { headAnnouncement, type Delivery } from "./delivery.js";

const RETRY_MS = 1000;
/** How far back a reconnect re-announces heads: NATS and Redis notice a dead connection within a few ping intervals. */
const REANNOUNCE_WINDOW_MS = 5 * 60_000;
/** HEAD_ANNOUNCE_AFTER's default. */
export const DEFAULT_ANNOUNCE_AFTER_MS = 1000;

export class BrokerFanout {
  readonly #broker: Broker;
  readonly #log: Logger;
  /** room → the highest-offset message whose publish failed. */
  readonly #unsent = new Map<string, Delivery>();
  #timer: NodeJS.Timeout | undefined;
  /**
   * Two generations of the rooms this node published to: `#fresh` since the
   * last tick, `#settling` in the tick before. A room in `#settling` but not
   * in `#fresh` has been quiet for a whole tick: its head is announced. With
   * ticks every announceAfterMs / 2, the announcement follows the room's last
   * publish by between half and all of announceAfterMs.
   */
  #fresh = new Map<string, bigint>();
  #settling = new Map<string, bigint>();
  /** room → [head, when announced]: what a reconnect announces again. */
  readonly #announced = new Map<string, [bigint, number]>();
  readonly #ticker: NodeJS.Timeout | undefined;

  /** `announceAfterMs` 0 turns head announcements off. */
  constructor(broker: Broker, log: Logger, announceAfterMs = DEFAULT_ANNOUNCE_AFTER_MS) {
    this.#broker = broker;
    this.#log = log;
    broker.onStatus((connected) => {
      if (!connected) return;
      this.#retry();
      this.#reannounce();
    });
    if (announceAfterMs > 0) {
      this.#ticker = setInterval(() => this.#tick(), Math.max(1, Math.floor(announceAfterMs / 2)));
      this.#ticker.unref();
    }
  }

  publish(room: string, delivery: Delivery): void {
    if (this.#ticker !== undefined) this.#seen(room, delivery.offset);
    this.#broker.publish(room, delivery.envelopeBytes()).catch((err: unknown) => {
      this.#log.warn({ err, room }, "broker publish failed; will announce the room's head again");
      this.#remember(room, delivery);
    });
  }

  #seen(room: string, offset: bigint): void {
    const known = this.#fresh.get(room);
    if (known === undefined || known < offset) this.#fresh.set(room, offset);
  }

  #tick(): void {
    const quiet = this.#settling;
    this.#settling = this.#fresh;
    this.#fresh = new Map();
    const now = Date.now();
    for (const [room, offset] of quiet) {
      if (this.#settling.has(room)) continue; // still busy: its next message shows any gap
      this.#announce(room, offset);
      this.#announced.delete(room); // re-inserted last: the map stays in announcement order
      this.#announced.set(room, [offset, now]);
    }
    for (const [room, [, at]] of this.#announced) {
      if (now - at < REANNOUNCE_WINDOW_MS) break;
      this.#announced.delete(room);
    }
  }

  #announce(room: string, offset: bigint): void {
    this.#broker.publish(room, headAnnouncement(room, offset)).catch((err: unknown) => {
      this.#log.debug({ err, room }, "head announcement failed; trying again next tick");
      this.#seen(room, offset);
    });
  }

  #reannounce(): void {
    for (const [room, [offset]] of this.#announced) this.#announce(room, offset);
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
    clearInterval(this.#ticker);
    this.#unsent.clear();
    this.#fresh.clear();
    this.#settling.clear();
    this.#announced.clear();
  }
}
