// One room on one node: its local members and the ordered stream they see.
// Messages arrive from local publishes and from the broker in any order; the
// room emits them strictly by offset. A message ahead of a missing offset waits
// `gapWaitMs`, then the gap is read from the store; anything at or below the
// delivered offset is a duplicate and dropped.
//
// The room also owns the switch from replay to live (`join`): a member never
// receives an offset at or below one it was already sent, whether this node's
// copy of the room is ahead of, equal to, or behind the store's head when the
// member goes live (the node may still be waiting for the broker, or filling
// a gap from the store, while the replay already read past it).
import { create } from "@bufbuild/protobuf";
import { envelope } from "../protocol/codec.js";
import { ErrorCode, WireError } from "../protocol/errors.js";
import { RoomJoinedSchema } from "../protocol/gen/roomcast/v1/envelope_pb.js";
import type { Logger } from "../observability/logging.js";
import type { HistoryPage, SessionRoom, Store } from "../ports/store.js";
import { noMetrics, type CoreMetrics } from "../ports/telemetry.js";
import { Delivery } from "./delivery.js";
import type { Outlet } from "./outlet.js";
import { unavailable } from "./store-failure.js";

/** Where a client stands in a room: the last offset it has, in an epoch. */
export interface Position {
  readonly offset: bigint;
  /** '' when the client does not know it (any epoch is accepted). */
  readonly epoch: string;
}

/** A member's place in a room, as its connection sees it. */
export interface Seat {
  readonly room: Room;
  /** The last offset handed to the connection (replayed or live). */
  readonly sentUpTo: bigint;
  /** The highest offset the client acknowledged, if it ever did. */
  readonly acked: bigint | undefined;
  /**
   * Records a cumulative ack, clamped to what was sent (a bogus ack would
   * otherwise make the next resume fail with offset_out_of_range). True when
   * it moved the position forward.
   */
  ack(offset: bigint): boolean;
  /** What a session saves for this room: the ack, or else what was sent. */
  position(): SessionRoom;
  /** The member watches the room's presence (join_room.presence); saved with the session. */
  presence: boolean;
}

export interface JoinHooks {
  seated(seat: Seat): void;
  /** Makes the membership durable; a rejection aborts the join. */
  persist(): Promise<void>;
  /** Runs right after room_joined is sent, before any replayed message. */
  joined?(): void;
}

export interface RoomOptions {
  readonly store: Store;
  readonly gapWaitMs: number;
  /** Most messages a join with `since` replays; more missed → recovered: false. */
  readonly replayLimit: number;
  readonly log: Logger;
  readonly metrics?: CoreMetrics;
}

const MAX_GAP_READ = 1000;
/** The largest offset a store holds (int64). */
const MAX_STORE_OFFSET = 2n ** 63n - 1n;
const MAX_GAP_BACKOFF_MS = 1000;

class Membership implements Seat {
  readonly outlet: Outlet;
  readonly room: Room;
  /** False while catching up: emitted deliveries go to `buffer` instead. */
  live = false;
  buffer: Delivery[] | undefined = [];
  /**
   * True while this member went live ahead of the room (its replay read past
   * what the room had emitted): deliveries at or below `sentUpTo` are skipped
   * until the room catches up. Keeps the common path to one flag check.
   */
  ahead = false;
  acked: bigint | undefined;
  sentUpTo: bigint;
  presence = false;

  constructor(outlet: Outlet, room: Room, sentUpTo: bigint) {
    this.outlet = outlet;
    this.room = room;
    this.sentUpTo = sentUpTo;
  }

  ack(offset: bigint): boolean {
    const clamped = offset < this.sentUpTo ? offset : this.sentUpTo;
    if (this.acked !== undefined && clamped <= this.acked) return false;
    this.acked = clamped;
    return true;
  }

  position(): SessionRoom {
    const room = this.room.id;
    const offset = this.acked ?? this.sentUpTo;
    const epoch = this.room.epoch;
    // Not `{ ...at, presence }`: see Entry in adapters/store/memory-store.ts.
    return this.presence ? { room, offset, epoch, presence: true } : { room, offset, epoch };
  }

  /** Sends `d` unless it was already sent; false when the outlet dropped it. */
  send(d: Delivery): boolean {
    if (d.offset <= this.sentUpTo) return true;
    if (!this.outlet.send(d.encoded(this.outlet.codec))) return false;
    this.sentUpTo = d.offset;
    return true;
  }
}

/** What a join decided before the member goes live. */
interface JoinPlan {
  readonly joinedAt: bigint;
  readonly recovered: boolean;
  readonly replay: readonly Delivery[];
  /** Where the member stands before the replay. */
  readonly from: bigint;
}

export class Room {
  readonly id: string;
  readonly #opts: RoomOptions;
  readonly #metrics: CoreMetrics;
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
    this.#metrics = opts.metrics ?? noMetrics;
    this.#gapBackoffMs = opts.gapWaitMs;
  }

  get epoch(): string {
    return this.#epoch;
  }

  /** The highest offset emitted to this node's members. */
  get delivered(): bigint {
    return this.#delivered;
  }

  /** Starts emitting after `head` (read from the store after subscribing). */
  start(head: bigint, epoch: string): void {
    this.#started = true;
    this.#epoch = epoch;
    this.#delivered = head;
    for (const offset of this.#pending.keys()) if (offset <= head) this.#pending.delete(offset);
    this.#drain();
  }

  /**
   * Adds a member: replays what it missed since `since` (all or nothing),
   * then switches it to live with no gap and no repeat. `hooks.seated` hears
   * of the seat at once (so a session saved meanwhile includes the room);
   * `hooks.persist` runs once the join is decided and before the client
   * hears of it; the room_joined frame follows, then the replay.
   * Undefined when the connection closed meanwhile (nothing is kept).
   * Throws WireError: offset_out_of_range, unavailable.
   */
  async join(
    outlet: Outlet,
    since: Position | undefined,
    hooks: JoinHooks,
  ): Promise<Seat | undefined> {
    const liveFrom = this.#delivered;
    // Until it goes live, the member stands where it asked to start.
    const m = new Membership(outlet, this, since?.offset ?? liveFrom);
    this.#members.add(m);
    hooks.seated(m);
    try {
      const plan = since === undefined ? undefined : await this.#plan(since, liveFrom);
      if (outlet.closed) return this.#drop(m);
      m.sentUpTo = plan?.from ?? liveFrom;
      await hooks.persist();
      if (outlet.closed) return this.#drop(m);
      sendJoined(
        outlet,
        this.id,
        this.#epoch,
        plan?.joinedAt ?? liveFrom,
        plan?.recovered ?? false,
      );
      hooks.joined?.();
      await this.#goLive(m, plan?.replay ?? []);
      if (outlet.closed) return this.#drop(m);
      return m;
    } catch (err) {
      this.#drop(m);
      throw err;
    }
  }

  /**
   * Answers a second join of a member already in the room (one membership):
   * `room_joined` at where its stream stands, which is ahead of this node's
   * copy of the room when its replay read past it.
   */
  rejoined(seat: Seat): void {
    const m = seat as Membership;
    const at = m.sentUpTo > this.#delivered ? m.sentUpTo : this.#delivered;
    sendJoined(m.outlet, this.id, this.#epoch, at, false);
  }

  leave(seat: Seat): void {
    this.#members.delete(seat as Membership);
  }

  async #plan(since: Position, liveFrom: bigint): Promise<JoinPlan> {
    const limit = this.#opts.replayLimit;
    let page: HistoryPage;
    try {
      // Offsets are uint64 on the wire but stores keep int64: a position past
      // int64 is past any head, and reading after the largest int64 says so
      // without asking the store for a number it cannot hold.
      const after = since.offset > MAX_STORE_OFFSET ? MAX_STORE_OFFSET : since.offset;
      page = await this.#opts.store.read(this.id, after, limit + 1);
    } catch (err) {
      throw unavailable(err, this.id);
    }
    const sameEpoch = since.epoch === "" || since.epoch === page.epoch;
    if (sameEpoch && since.offset > page.head) {
      throw new WireError(
        ErrorCode.OffsetOutOfRange,
        `offset ${since.offset} is beyond the head ${page.head}`,
        this.id,
      );
    }
    const missed = page.head - since.offset;
    const recovered =
      sameEpoch &&
      missed <= BigInt(limit) &&
      page.oldest <= since.offset + 1n &&
      BigInt(page.messages.length) >= missed;
    // All-or-nothing: recovered → room_joined at the head and every missed
    // message; not recovered → room_joined where live delivery starts, and
    // no replay.
    if (!recovered) return { joinedAt: liveFrom, recovered, replay: [], from: liveFrom };
    const replay = page.messages
      .filter((msg) => msg.offset <= page.head)
      .map((msg) => Delivery.fromStored(msg));
    this.#metrics.replayed(replay.length);
    return { joinedAt: page.head, recovered, replay, from: since.offset };
  }

  /**
   * Sends the replay, then whatever the room emitted meanwhile, then marks
   * the member live. Waits for the outlet to drain between messages when
   * it is backlogged, so a replay larger than the outbound buffer is paced,
   * not a slow-consumer close.
   */
  async #goLive(m: Membership, replay: readonly Delivery[]): Promise<void> {
    let batch: readonly Delivery[] = replay;
    let sent = 0;
    for (;;) {
      for (const d of batch) {
        if (m.outlet.backlogged) await m.outlet.drained();
        if (m.outlet.closed) return;
        // The room skipped a trimmed gap while this member caught up
        // (#skipTrimmed tells live members only): say so before the jump.
        if (d.offset > m.sentUpTo + 1n) {
          sendJoined(m.outlet, this.id, this.#epoch, d.offset - 1n, false);
        }
        const before = m.sentUpTo;
        m.send(d);
        if (m.sentUpTo !== before) sent++;
      }
      const buffered = m.buffer ?? [];
      if (buffered.length === 0) break;
      m.buffer = [];
      batch = buffered;
    }
    if (sent > 0) this.#metrics.delivered(sent);
    m.buffer = undefined;
    m.live = true;
    m.ahead = m.sentUpTo > this.#delivered;
  }

  #drop(m: Membership): undefined {
    this.#members.delete(m);
    return undefined;
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

  /**
   * Another node says the room's stored history reaches `head` (a head
   * announcement after the room went quiet, see broker-fanout.ts). Past
   * what this node delivered, something was lost on the way: read it now
   * rather than wait for the room's next message, which may never come.
   */
  headAt(head: bigint): void {
    if (!this.#started || this.#closed || head <= this.#delivered) return;
    // A gap fill already waiting reads at least this far when it runs.
    if (this.#gapTimer !== undefined && this.#highestPending() >= head) return;
    void this.#fill(head);
  }

  #emit(d: Delivery): void {
    this.#delivered = d.offset;
    // Counted here, once per message, not per member (see ports/telemetry.ts).
    let sent = 0;
    for (const m of this.#members) {
      if (!m.live) {
        m.buffer?.push(d);
        continue;
      }
      if (m.ahead) {
        if (d.offset <= m.sentUpTo) continue;
        m.ahead = false;
      }
      if (m.outlet.send(d.encoded(m.outlet.codec))) {
        m.sentUpTo = d.offset;
        sent++;
      }
    }
    if (sent > 0) this.#metrics.delivered(sent);
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
        this.#skipTrimmed(page.oldest - 1n);
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

  /**
   * History was trimmed before this node read it: the gap can never be
   * filled, so the room moves past it rather than stall. Each live member is
   * told with `room_joined{recovered: false}` at the offset its stream
   * continues after — the same signal a resume gives when it could not
   * replay everything.
   */
  #skipTrimmed(to: bigint): void {
    this.#opts.log.warn(
      { room: this.id, from: String(this.#delivered + 1n), to: String(to) },
      "history trimmed inside a gap; skipping it",
    );
    this.#delivered = to;
    for (const offset of this.#pending.keys()) if (offset <= to) this.#pending.delete(offset);
    for (const m of this.#members) {
      if (!m.live || m.sentUpTo >= to) continue;
      m.sentUpTo = to;
      m.ahead = false;
      sendJoined(m.outlet, this.id, this.#epoch, to, false);
    }
  }
}

function sendJoined(
  outlet: Outlet,
  roomId: string,
  epoch: string,
  offset: bigint,
  recovered: boolean,
): void {
  outlet.send(
    outlet.codec.encode(
      envelope({
        case: "roomJoined",
        value: create(RoomJoinedSchema, { roomId, epoch, offset, recovered }),
      }),
    ),
  );
}
