// One room as the application sees it: messages exactly once and in offset
// order (anything at or below the last delivered offset is dropped, whether
// it comes from a resume replay, a `since` replay or a retried publish), the
// publishes waiting for their ack, and the presence set.
import { Emitter } from "./emitter.js";
import { ClientErrorCode, RoomcastError } from "./errors.js";
import { messageId } from "./ids.js";
import type {
  PresenceMember,
  PublishResult,
  RoomEvents,
  RoomMessage,
  RoomOptions,
} from "./types.js";
import { offsetOf, type WireEnvelope, type WireMessage, type WirePresenceMember } from "./wire.js";

/** What a room needs from its client. */
export interface RoomLink {
  /** Sends when a session is open; false otherwise (the frame is dropped). */
  send(envelope: WireEnvelope): boolean;
  /** Increases with every new session, so a room knows what it sent on this one. */
  generation(): number;
  memberId(): string | undefined;
  /** The client was closed (or stopped reconnecting): nothing will be sent. */
  stopped(): boolean;
  forget(room: Room): void;
}

interface Pending {
  readonly messageId: string;
  readonly content: string;
  readonly resolve: (result: PublishResult) => void;
  readonly reject: (err: RoomcastError) => void;
  /** The session generation it was last sent on; -1 when never. */
  sentOn: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Publish errors worth retrying with the same message_id. */
const retryable = new Set(["rate_limited", "unavailable"]);

export class Room {
  readonly id: string;
  readonly options: RoomOptions;
  readonly #link: RoomLink;
  readonly #events = new Emitter<RoomEvents>();
  readonly #pending = new Map<string, Pending>();
  readonly #presence = new Map<string, PresenceMember>();
  #epoch: string | undefined;
  /** The last offset delivered to the application (or the head at the first join). */
  #position = 0n;
  #hasPosition = false;
  #acked = 0n;
  #joined = false;
  #left = false;
  #retryJoin: ReturnType<typeof setTimeout> | undefined;

  /** @internal Use `client.room(id)`. */
  constructor(id: string, options: RoomOptions, link: RoomLink) {
    this.id = id;
    this.options = options;
    this.#link = link;
  }

  on<K extends keyof RoomEvents>(type: K, listener: (event: RoomEvents[K]) => void): () => void {
    return this.#events.on(type, listener);
  }

  off<K extends keyof RoomEvents>(type: K, listener: (event: RoomEvents[K]) => void): void {
    this.#events.off(type, listener);
  }

  /** Joined on the current connection. */
  get joined(): boolean {
    return this.#joined;
  }

  /** The offset of the last message delivered to the application. */
  get offset(): bigint {
    return this.#position;
  }

  get epoch(): string | undefined {
    return this.#epoch;
  }

  /** Everyone present now (with `presence: true`, once the server sent its state). */
  get presence(): readonly PresenceMember[] {
    return [...this.#presence.values()];
  }

  /** Publishes waiting for their ack. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Publishes `content`; resolves with its offset once the server acked it.
   * The client picks the message_id (or takes `options.messageId`) and sends
   * the same one again after every reconnect until it is acked, so the message
   * is stored once however often the connection drops. Rejects on a terminal
   * error (`forbidden`, `bad_request`, …), on `leave()` and on `client.close()`.
   */
  publish(content: string, options: { messageId?: string } = {}): Promise<PublishResult> {
    if (this.#left) {
      return Promise.reject(new RoomcastError(ClientErrorCode.Left, `left room ${this.id}`));
    }
    if (this.#link.stopped()) {
      return Promise.reject(new RoomcastError(ClientErrorCode.Closed, "the client is closed"));
    }
    return new Promise<PublishResult>((resolve, reject) => {
      const pending: Pending = {
        messageId: options.messageId ?? messageId(),
        content,
        resolve,
        reject,
        sentOn: -1,
        timer: undefined,
      };
      this.#pending.set(pending.messageId, pending);
      if (this.#joined) this.#send(pending);
    });
  }

  /** Leaves the room; pending publishes are rejected with `left`. */
  leave(): void {
    if (this.#left) return;
    this.#left = true;
    this.#link.send({ leave_room: { room_id: this.id } });
    this.#stop(new RoomcastError(ClientErrorCode.Left, `left room ${this.id}`));
    this.#link.forget(this);
  }

  // ---- driven by the client ----

  /** @internal The join frame for a new session: `since` once it has a position. */
  joinFrame(): WireEnvelope {
    return {
      join_room: {
        room_id: this.id,
        ...(this.#hasPosition
          ? { since: { offset: this.#position.toString(), epoch: this.#epoch ?? "" } }
          : {}),
        ...(this.options.presence === true ? { presence: true } : {}),
      },
    };
  }

  /** @internal The connection closed: nothing is joined until the next room_joined. */
  disconnected(): void {
    this.#joined = false;
    clearTimeout(this.#retryJoin);
    for (const p of this.#pending.values()) clearTimeout(p.timer);
  }

  /** @internal */
  roomJoined(frame: NonNullable<WireEnvelope["room_joined"]>): void {
    const epoch = frame.epoch ?? "";
    const head = offsetOf(frame.offset);
    const recovered = frame.recovered === true;
    if (!this.#hasPosition) {
      // A first join starts at the head: live messages follow it.
      this.#position = this.#acked = head;
      this.#hasPosition = true;
    } else if (this.#epoch !== undefined && epoch !== this.#epoch) {
      const after = this.#position;
      this.#position = this.#acked = 0n; // a new history: its offsets start again
      this.#events.emit("gap", { after, head, epochChanged: true });
    } else if (!recovered) {
      this.#events.emit("gap", { after: this.#position, head, epochChanged: false });
    }
    this.#epoch = epoch;
    this.#joined = true;
    this.#events.emit("joined", { epoch, offset: head, recovered });
    for (const p of this.#pending.values()) {
      if (p.sentOn !== this.#link.generation()) this.#send(p);
    }
  }

  /** @internal */
  roomLeft(): void {
    if (this.#left) return;
    this.#joined = false;
    this.#left = true;
    this.#stop(new RoomcastError(ClientErrorCode.Left, `removed from room ${this.id}`));
    this.#events.emit("left", { room: this.id });
    this.#link.forget(this);
  }

  /** @internal */
  message(m: WireMessage): void {
    const offset = offsetOf(m.offset);
    if (offset <= this.#position && this.#hasPosition) return; // already delivered
    this.#position = offset;
    this.#hasPosition = true;
    const message: RoomMessage = {
      room: this.id,
      offset,
      content: m.content ?? "",
      messageId: m.message_id ?? "",
      senderId: m.sender_id ?? "",
      userId: m.user_id === "" ? undefined : m.user_id,
      sentAt: m.sent_at,
      own: m.sender_id !== undefined && m.sender_id === this.#link.memberId(),
    };
    this.#events.emit("message", message);
  }

  /** @internal The server's ack of one of our publishes. */
  published(messageId: string, offset: bigint, duplicate: boolean): boolean {
    const p = this.#pending.get(messageId);
    if (p === undefined) return false;
    this.#pending.delete(messageId);
    clearTimeout(p.timer);
    p.resolve({ offset, messageId, duplicate });
    return true;
  }

  /** @internal An error frame whose ref is one of our message_ids or this room; false if not ours. */
  refused(code: string, text: string, ref: string, retryAfterMs: number | undefined): boolean {
    const p = this.#pending.get(ref);
    if (p !== undefined) {
      if (retryable.has(code)) {
        // The same message_id again after the wait: a normal publish then.
        p.timer = setTimeout(() => this.#joined && this.#send(p), retryAfterMs ?? 1000);
        return true;
      }
      this.#pending.delete(ref);
      p.reject(new RoomcastError(code, text, { ref }));
      return true;
    }
    if (ref !== this.id || this.#joined) return false;
    if (code === "rate_limited" || code === "unavailable") {
      this.#retryJoin = setTimeout(() => this.#link.send(this.joinFrame()), retryAfterMs ?? 1000);
    } else if (code === "offset_out_of_range") {
      // Our position is past the room's head: its history is not the one we
      // read. Join at the head and say what may be missing.
      this.#hasPosition = false;
      this.#events.emit("gap", { after: this.#position, head: 0n, epochChanged: true });
      this.#link.send(this.joinFrame());
    } else {
      // A refused join (forbidden, invalid_room, too_many_rooms): what waits
      // to be published here never will be.
      const err = new RoomcastError(code, text, { ref });
      this.#stop(err);
      this.#events.emit("error", err);
    }
    return true;
  }

  /** @internal The cumulative ack to send, if anything was delivered since the last one. */
  takeAck(): WireEnvelope | undefined {
    if (!this.#joined || this.#position <= this.#acked) return undefined;
    this.#acked = this.#position;
    return { ack: { room_id: this.id, offset: this.#position.toString() } };
  }

  /** @internal */
  presenceState(members: readonly WirePresenceMember[]): void {
    const before = new Map(this.#presence);
    this.#presence.clear();
    for (const m of members.map(presenceMember)) this.#presence.set(m.memberId, m);
    const joined = [...this.#presence.values()].filter((m) => !before.has(m.memberId));
    const left = [...before.values()].filter((m) => !this.#presence.has(m.memberId));
    this.#events.emit("presence", { members: this.presence, joined, left });
  }

  /** @internal */
  presenceDiff(
    joinedWire: readonly WirePresenceMember[],
    leftWire: readonly WirePresenceMember[],
  ): void {
    const left = leftWire.map(presenceMember);
    const joined = joinedWire.map(presenceMember);
    for (const m of left) this.#presence.delete(m.memberId);
    for (const m of joined) this.#presence.set(m.memberId, m);
    this.#events.emit("presence", { members: this.presence, joined, left });
  }

  /** @internal The client stopped for good. */
  closed(err: RoomcastError): void {
    this.#joined = false;
    this.#stop(err);
  }

  #send(p: Pending): void {
    clearTimeout(p.timer);
    const sent = this.#link.send({
      message: { target: this.id, content: p.content, message_id: p.messageId },
    });
    if (sent) p.sentOn = this.#link.generation();
  }

  #stop(err: RoomcastError): void {
    clearTimeout(this.#retryJoin);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }
}

function presenceMember(m: WirePresenceMember): PresenceMember {
  return { memberId: m.member_id ?? "", userId: m.user_id === "" ? undefined : m.user_id };
}
