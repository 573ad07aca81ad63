// One room on one node: its local members and the ordered stream they see.
// Messages arrive from local publishes and from the broker in any order; the
// room emits them strictly by offset. A message ahead of a missing offset waits
// `gapWaitMs`, then the gap is read from the store; anything at or below the
// delivered offset is a duplicate and dropped.
import type { Logger } from "../observability/logging.js";
import type { Store } from "../ports/store.js";
import { Delivery } from "./delivery.js";
import type { Outlet } from "./outlet.js";

/** A member's place in a room: live, or catching up (buffering) during replay. */
export class Membership {
  readonly outlet: Outlet;
  readonly roomId: string;
  live = false;
  /** Deliveries emitted while catching up; flushed in order when going live. */
  buffer: Delivery[] | undefined = [];
  /** The highest offset the client acknowledged, if it ever did. */
  acked: bigint | undefined;
  /** The last offset handed to the connection (replayed or live). */
  sentUpTo = 0n;

  constructor(outlet: Outlet, roomId: string) {
    this.outlet = outlet;
    this.roomId = roomId;
  }
}

export interface RoomOptions {
  readonly store: Store;
  readonly gapWaitMs: number;
  readonly log: Logger;
}

const MAX_GAP_READ = 1000;
const MAX_GAP_BACKOFF_MS = 1000;

export class Room {
  readonly id: string;
  readonly #opts: RoomOptions;
  readonly #members = new Set<Membership>();
  readonly #pending = new Map<bigint, Delivery>();
  #started = false;
  #epoch = "";
  #delivered = 0n;
  #gapTimer: NodeJS.Timeout | undefined;
  #gapBackoffMs: number;
  #closed = false;

  constructor(id: string, opts: RoomOptions) {
    this.id = id;
    this.#opts = opts;
    this.#gapBackoffMs = opts.gapWaitMs;
  }

  get epoch(): string {
    return this.#epoch;
  }

  /** The highest offset emitted to this node's members. */
  get delivered(): bigint {
    return this.#delivered;
  }

  get size(): number {
    return this.#members.size;
  }

  /** Starts emitting after `head` (read from the store after subscribing). */
  start(head: bigint, epoch: string): void {
    this.#started = true;
    this.#epoch = epoch;
    this.#delivered = head;
    for (const offset of this.#pending.keys()) if (offset <= head) this.#pending.delete(offset);
    this.#drain();
  }

  add(m: Membership): void {
    this.#members.add(m);
  }

  remove(m: Membership): void {
    this.#members.delete(m);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#gapTimer);
    this.#members.clear();
    this.#pending.clear();
  }

  /** Offers one message (local publish, broker, or gap read). */
  offer(d: Delivery): void {
    if (this.#closed) return;
    if (this.#started && d.offset <= this.#delivered) return;
    if (this.#started && d.offset === this.#delivered + 1n) {
      this.#emit(d);
      this.#drain();
      return;
    }
    this.#pending.set(d.offset, d);
    if (this.#started) this.#scheduleGapFill();
  }

  /**
   * Reads what this node may have missed up to the store's head (after a
   * broker outage, messages published meanwhile are only in the store).
   */
  async catchUp(): Promise<void> {
    if (!this.#started || this.#closed) return;
    await this.#fill(undefined);
  }

  #emit(d: Delivery): void {
    this.#delivered = d.offset;
    for (const m of this.#members) {
      if (!m.live) m.buffer?.push(d);
      else if (m.outlet.send(d.encoded(m.outlet.codec))) m.sentUpTo = d.offset;
    }
  }

  #drain(): void {
    for (;;) {
      const next = this.#pending.get(this.#delivered + 1n);
      if (next === undefined) break;
      this.#pending.delete(next.offset);
      this.#emit(next);
    }
    if (this.#pending.size === 0) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
      this.#gapBackoffMs = this.#opts.gapWaitMs;
    } else {
      this.#scheduleGapFill();
    }
  }

  #scheduleGapFill(): void {
    if (this.#gapTimer !== undefined) return;
    this.#gapTimer = setTimeout(() => {
      this.#gapTimer = undefined;
      void this.#fill(this.#highestPending());
    }, this.#gapBackoffMs);
  }

  #highestPending(): bigint {
    let max = this.#delivered;
    for (const offset of this.#pending.keys()) if (offset > max) max = offset;
    return max;
  }

  /** Reads from the store after the delivered offset, up to `upTo` (or the head). */
  async #fill(upTo: bigint | undefined): Promise<void> {
    const from = this.#delivered;
    const want = upTo === undefined ? MAX_GAP_READ : Number(upTo - from);
    if (want <= 0) return;
    try {
      const page = await this.#opts.store.read(this.id, from, Math.min(want, MAX_GAP_READ));
      if (this.#closed) return;
      if (page.oldest > this.#delivered + 1n && page.head > this.#delivered) {
        // Trimmed before this node read it: the gap can never be filled, so
        // move past it rather than stall the room. Members resume with
        // recovered: false if they need what was lost.
        this.#opts.log.warn(
          { room: this.id, from: String(this.#delivered), to: String(page.oldest - 1n) },
          "history trimmed inside a gap; skipping it",
        );
        this.#delivered = page.oldest - 1n;
        for (const offset of this.#pending.keys())
          if (offset <= this.#delivered) this.#pending.delete(offset);
      }
      for (const m of page.messages) this.offer(Delivery.fromStored(m));
      this.#gapBackoffMs = this.#opts.gapWaitMs;
      // A head beyond what the page held means more to read (a long outage).
      if (upTo === undefined && page.head > this.#delivered && page.messages.length > 0) {
        await this.#fill(undefined);
      }
    } catch (err) {
      this.#opts.log.warn({ err, room: this.id }, "gap fill from the store failed; retrying");
      this.#gapBackoffMs = Math.min(this.#gapBackoffMs * 2, MAX_GAP_BACKOFF_MS);
    }
    if (this.#pending.size > 0) {
      this.#drain();
    }
  }
}
