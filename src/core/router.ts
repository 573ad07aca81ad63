// The Router: one per node. It owns this node's rooms and members, turns
// member requests into store and broker calls, and keeps sessions saved.
// Publish path: validate → store.append (dedup + offset) → local room →
// broker (other nodes) → ack.
import { create } from "@bufbuild/protobuf";
import { envelope } from "../protocol/codec.js";
import { CloseCode, ErrorCode, WireError } from "../protocol/errors.js";
import {
  AckSchema,
  MessageSchema,
  RoomJoinedSchema,
  type Envelope,
  type Message,
} from "../protocol/gen/roomcast/v1/envelope_pb.js";
import { isValidRoomId } from "../protocol/room-id.js";
import type { Logger } from "../observability/logging.js";
import type { Broker, Subscription } from "../ports/broker.js";
import type { NewMessage, SessionRoom, Store } from "../ports/store.js";
import { BrokerFanout } from "./broker-fanout.js";
import { Delivery } from "./delivery.js";
import { StoreError } from "../ports/store-error.js";
import { Member, type MemberHost, type MemberOptions } from "./member.js";
import type { Outlet } from "./outlet.js";
import { Membership, Room } from "./room.js";
import { decodeControl, encodeControl, type ControlMessage } from "./node-control.js";
import { hashToken, newMemberId, newToken } from "./sessions.js";
import { randomUUID } from "node:crypto";

export interface RouterOptions {
  readonly gapWaitMs: number;
  readonly replayLimit: number;
  readonly maxRoomsPerMember: number;
  readonly sessionTtlMs: number;
  readonly ackFlushIntervalMs: number;
  readonly badFrameLimit: number;
  readonly badFrameWindowMs: number;
}

/** What the gateway gets before the upgrade: a fresh or resumed session. */
export interface SessionGrant {
  readonly memberId: string;
  readonly userId: string;
  /** The new resume token, handed to the client in the `session` frame. */
  readonly token: string;
  readonly rooms: readonly SessionRoom[];
  readonly resumed: boolean;
}

interface RoomEntry {
  readonly room: Room;
  readonly ready: Promise<void>;
  /** Memberships plus joins in progress; the room closes at zero. */
  users: number;
  subscription: Subscription | undefined;
}

const RETRY_AFTER_MS = 1000;
const MAX_MESSAGE_ID = 128;
const MAX_TRACE_FIELD = 512;

export class Router implements MemberHost {
  readonly #store: Store;
  readonly #broker: Broker;
  readonly #opts: RouterOptions;
  readonly #log: Logger;
  readonly #rooms = new Map<string, RoomEntry>();
  readonly #members = new Map<string, Member>();
  /** Members whose acks or rooms changed since their session was last saved. */
  readonly #dirty = new Set<Member>();
  readonly #saving = new Map<string, Promise<void>>();
  readonly #flushTimer: NodeJS.Timeout;
  readonly #refreshTimer: NodeJS.Timeout;
  /** Shared by every member (one object per node, not per connection). */
  readonly #memberOptions: MemberOptions;
  /** Names this node on the control channel. */
  readonly nodeId = randomUUID();
  #control: Subscription | undefined;
  /** Publishes to other nodes; absent for the in-process broker (one node). */
  readonly #fanout: BrokerFanout | undefined;

  constructor(store: Store, broker: Broker, opts: RouterOptions, log: Logger) {
    this.#store = store;
    this.#broker = broker;
    this.#opts = opts;
    this.#log = log;
    this.#memberOptions = {
      badFrameLimit: opts.badFrameLimit,
      badFrameWindowMs: opts.badFrameWindowMs,
      log,
    };
    this.#flushTimer = setInterval(() => this.#flushDirty(), opts.ackFlushIntervalMs);
    this.#flushTimer.unref();
    // Connected sessions must not expire: refresh them well within the TTL.
    this.#refreshTimer = setInterval(
      () => {
        for (const m of this.#members.values()) this.#dirty.add(m);
      },
      Math.max(1000, Math.floor(opts.sessionTtlMs / 3)),
    );
    this.#refreshTimer.unref();
    broker.onStatus((connected) => {
      if (connected) this.#catchUpAll();
    });
    this.#fanout = broker.capabilities.distributed ? new BrokerFanout(broker, log) : undefined;
  }

  /** Subscribes to the node-control channel. */
  async start(): Promise<void> {
    this.#control = await this.#broker.subscribeControl((payload) => {
      const msg = decodeControl(payload);
      if (msg === undefined) {
        this.#log.warn("unknown control message dropped");
        return;
      }
      this.#onControl(msg);
    });
  }

  #onControl(msg: ControlMessage): void {
    switch (msg.type) {
      case "takeover": {
        if (msg.from === this.nodeId) return;
        const live = this.#members.get(msg.memberId);
        if (live !== undefined) {
          // The new node already read the stored position; saving ours now
          // could overwrite what it saves next.
          this.detach(live, false);
          live.outlet.close(CloseCode.SessionTakenOver);
        }
        return;
      }
      case "close_user": {
        for (const member of [...this.#members.values()]) {
          if (member.userId === msg.userId) member.outlet.close(msg.code as CloseCode);
        }
        return;
      }
    }
  }

  /** Closes every socket of a user on every node (used when access is revoked). */
  async closeUser(userId: string, code: CloseCode): Promise<void> {
    await this.#broker.publishControl(encodeControl({ type: "close_user", userId, code }));
  }

  // ---- sessions -----------------------------------------------------------

  /**
   * Resumes the session behind `token` (rotating it) or creates a fresh one.
   * A live local member with that session is taken over. Throws
   * StoreError when the store is down (the gateway answers 503).
   */
  async openSession(token: string | undefined, userId: string): Promise<SessionGrant> {
    const fresh = newToken();
    const expiresAt = Date.now() + this.#opts.sessionTtlMs;
    if (token !== undefined && token !== "") {
      const record = await this.#store.resumeSession(hashToken(token), hashToken(fresh), expiresAt);
      if (record !== undefined && record.userId === userId) {
        const live = this.#members.get(record.memberId);
        const rooms = live !== undefined ? this.#takeOver(live) : record.rooms;
        if (live === undefined && this.#broker.capabilities.distributed) {
          // It may still be connected to another node: that node closes it.
          await this.#broker
            .publishControl(
              encodeControl({ type: "takeover", memberId: record.memberId, from: this.nodeId }),
            )
            .catch((err: unknown) => this.#log.warn({ err }, "takeover notice not sent"));
        }
        return { memberId: record.memberId, userId, token: fresh, rooms, resumed: true };
      }
    }
    const memberId = newMemberId();
    await this.#store.createSession({ memberId, userId, rooms: [] }, hashToken(fresh), expiresAt);
    return { memberId, userId, token: fresh, rooms: [], resumed: false };
  }

  /** Creates the member for an upgraded connection and sends `session` (and, on resume, its rooms). */
  attach(grant: SessionGrant, outlet: Outlet): Member {
    const member = new Member(grant.memberId, grant.userId, outlet, this, this.#memberOptions);
    this.#members.set(member.id, member);
    member.send(
      envelope({
        case: "session",
        value: {
          $typeName: "roomcast.v1.Session",
          token: grant.token,
          memberId: grant.memberId,
          rooms: grant.rooms.map((r) => r.room),
          resumed: grant.resumed,
          protocol: "roomcast.v1",
        },
      }),
    );
    // Rejoining runs first in the member's queue, so frames the client sends
    // meanwhile wait for it.
    for (const r of grant.rooms) {
      member.enqueue(() =>
        this.#joinOrReport(member, r.room, { offset: r.offset, epoch: r.epoch }),
      );
    }
    return member;
  }

  /** The connection closed: leave rooms locally and save the session for resume. */
  detach(member: Member, save = true): void {
    if (member.closed) return;
    const positions = this.#positions(member);
    member.markClosed();
    for (const m of member.rooms.values()) this.#leaveRoom(m);
    member.rooms.clear();
    this.#dirty.delete(member);
    if (this.#members.get(member.id) === member) this.#members.delete(member.id);
    if (save) this.#saveQuietly(member.id, positions);
  }

  #takeOver(live: Member): SessionRoom[] {
    const positions = this.#positions(live);
    this.detach(live, false);
    live.outlet.close(CloseCode.SessionTakenOver);
    return positions;
  }

  /** Where the member stands in each room: its ack, or else what was sent. */
  #positions(member: Member): SessionRoom[] {
    const out: SessionRoom[] = [];
    for (const m of member.rooms.values()) {
      const epoch = this.#rooms.get(m.roomId)?.room.epoch ?? "";
      out.push({ room: m.roomId, offset: m.acked ?? m.sentUpTo, epoch });
    }
    return out;
  }

  /**
   * Saves a member's session. Saves of one member are chained so a late one
   * never overwrites a newer one. Rejects when the store fails.
   */
  #save(memberId: string, rooms: readonly SessionRoom[]): Promise<void> {
    const previous = this.#saving.get(memberId) ?? Promise.resolve();
    const next = previous.then(() =>
      this.#store.saveSession(memberId, rooms, Date.now() + this.#opts.sessionTtlMs),
    );
    const settled: Promise<void> = next
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        if (this.#saving.get(memberId) === settled) this.#saving.delete(memberId);
      });
    this.#saving.set(memberId, settled);
    return next;
  }

  #saveQuietly(memberId: string, rooms: readonly SessionRoom[]): void {
    this.#save(memberId, rooms).catch((err: unknown) =>
      this.#log.warn({ err, member: memberId }, "saving session failed"),
    );
  }

  #flushDirty(): void {
    for (const member of this.#dirty) this.#saveQuietly(member.id, this.#positions(member));
    this.#dirty.clear();
  }

  /** Saves every connected member's session (used when draining). */
  async flushAll(): Promise<void> {
    for (const member of this.#members.values()) this.#dirty.add(member);
    this.#flushDirty();
    await Promise.all(this.#saving.values());
  }

  // ---- frames ---------------------------------------------------------------

  async handle(member: Member, env: Envelope): Promise<void> {
    switch (env.kind.case) {
      case "joinRoom": {
        const since = env.kind.value.since;
        await this.join(
          member,
          env.kind.value.roomId,
          since && { offset: since.offset, epoch: since.epoch },
        );
        return;
      }
      case "leaveRoom":
        this.leave(member, env.kind.value.roomId);
        return;
      case "message":
        await this.publish(member, env.kind.value);
        return;
      case "ack":
        this.ack(member, env.kind.value.roomId, env.kind.value.offset);
        return;
      case "refresh":
        throw new WireError(
          ErrorCode.BadRequest,
          "token refresh needs authentication, which is not configured",
        );
      case undefined:
        throw new WireError(ErrorCode.UnknownType);
      default:
        throw new WireError(ErrorCode.BadRequest, `${env.kind.case} is sent by the server only`);
    }
  }

  async #joinOrReport(
    member: Member,
    roomId: string,
    since: { offset: bigint; epoch: string },
  ): Promise<void> {
    try {
      await this.join(member, roomId, since);
    } catch (err) {
      if (err instanceof WireError) member.sendError(err);
      else throw err;
    }
  }

  async join(
    member: Member,
    roomId: string,
    since?: { offset: bigint; epoch: string },
  ): Promise<void> {
    if (!isValidRoomId(roomId))
      throw new WireError(ErrorCode.InvalidRoom, undefined, roomId.slice(0, 128));
    const existing = member.rooms.get(roomId);
    if (existing !== undefined) {
      // Idempotent: one membership; answer with where the room stands.
      const room = this.#rooms.get(roomId)?.room;
      this.#sendJoined(member, roomId, room?.epoch ?? "", room?.delivered ?? 0n, false);
      return;
    }
    if (member.rooms.size >= this.#opts.maxRoomsPerMember) {
      throw new WireError(ErrorCode.TooManyRooms, undefined, roomId);
    }
    const room = await this.#acquire(roomId);
    if (member.closed) {
      this.#release(roomId);
      return;
    }
    const m = new Membership(member.outlet, roomId);
    const liveFrom = room.delivered;
    // Until it goes live, the member stands where it asked to start.
    m.sentUpTo = since?.offset ?? liveFrom;
    member.rooms.set(roomId, m);
    room.add(m);

    let joinedAt = liveFrom;
    let recovered = false;
    let replay: Delivery[] = [];
    if (since !== undefined) {
      let page;
      try {
        page = await this.#store.read(roomId, since.offset, this.#opts.replayLimit + 1);
      } catch (err) {
        this.#leaveRoom(m);
        member.rooms.delete(roomId);
        throw unavailable(err, roomId);
      }
      if (member.closed) return;
      const sameEpoch = since.epoch === "" || since.epoch === page.epoch;
      if (sameEpoch && since.offset > page.head) {
        this.#leaveRoom(m);
        member.rooms.delete(roomId);
        throw new WireError(
          ErrorCode.OffsetOutOfRange,
          `offset ${since.offset} is beyond the head ${page.head}`,
          roomId,
        );
      }
      const missed = page.head - since.offset;
      recovered =
        sameEpoch &&
        missed <= BigInt(this.#opts.replayLimit) &&
        page.oldest <= since.offset + 1n &&
        BigInt(page.messages.length) >= missed;
      if (recovered) {
        joinedAt = page.head;
        replay = page.messages
          .filter((msg) => msg.offset <= page.head)
          .map((msg) => Delivery.fromStored(msg));
      }
    }
    // The membership is durable before the client hears of it; its position
    // is where the client stands before the replay.
    m.sentUpTo = recovered && since !== undefined ? since.offset : joinedAt;
    try {
      await this.#save(member.id, this.#positions(member));
    } catch (err) {
      this.#leaveRoom(m);
      member.rooms.delete(roomId);
      throw unavailable(err, roomId);
    }
    if (member.closed) return;
    // All-or-nothing: recovered → room_joined at the head, every missed
    // message, then live; not recovered → room_joined at the point live
    // delivery starts, and no replay.
    this.#sendJoined(member, roomId, room.epoch, joinedAt, recovered);
    const codec = member.outlet.codec;
    for (const d of [...replay, ...(m.buffer ?? [])]) {
      if (d.offset > m.sentUpTo && member.outlet.send(d.encoded(codec))) m.sentUpTo = d.offset;
    }
    m.buffer = undefined;
    m.live = true;
  }

  #sendJoined(
    member: Member,
    roomId: string,
    epoch: string,
    offset: bigint,
    recovered: boolean,
  ): void {
    member.send(
      envelope({
        case: "roomJoined",
        value: create(RoomJoinedSchema, { roomId, epoch, offset, recovered }),
      }),
    );
  }

  leave(member: Member, roomId: string): void {
    if (!isValidRoomId(roomId))
      throw new WireError(ErrorCode.InvalidRoom, undefined, roomId.slice(0, 128));
    const m = member.rooms.get(roomId);
    if (m === undefined) throw new WireError(ErrorCode.NotJoined, undefined, roomId);
    member.rooms.delete(roomId);
    this.#leaveRoom(m);
    this.#saveQuietly(member.id, this.#positions(member));
    member.send(
      envelope({ case: "roomLeft", value: { $typeName: "roomcast.v1.RoomLeft", roomId } }),
    );
  }

  ack(member: Member, roomId: string, offset: bigint): void {
    if (!isValidRoomId(roomId))
      throw new WireError(ErrorCode.InvalidRoom, undefined, roomId.slice(0, 128));
    const m = member.rooms.get(roomId);
    if (m === undefined) throw new WireError(ErrorCode.NotJoined, undefined, roomId);
    // An ack can't reach past what this member was sent (a bogus ack would
    // otherwise make its next resume fail with offset_out_of_range).
    const clamped = offset < m.sentUpTo ? offset : m.sentUpTo;
    if (m.acked === undefined || clamped > m.acked) {
      m.acked = clamped;
      this.#dirty.add(member);
    }
  }

  async publish(member: Member, msg: Message): Promise<void> {
    const roomId = msg.target;
    if (!isValidRoomId(roomId))
      throw new WireError(ErrorCode.InvalidRoom, undefined, roomId.slice(0, 128));
    const ref = msg.messageId ?? roomId;
    if (!member.rooms.has(roomId)) throw new WireError(ErrorCode.NotJoined, undefined, ref);
    const entry = this.#rooms.get(roomId);
    if (entry === undefined) throw new WireError(ErrorCode.NotJoined, undefined, ref);
    validateMessage(msg);

    const stored: NewMessage = {
      messageId: msg.messageId ?? randomUUID(),
      senderId: member.id,
      sentAt: msg.sentAt ?? new Date().toISOString(),
      content: msg.content,
      ...(msg.traceparent !== undefined && { traceparent: msg.traceparent }),
      ...(msg.tracestate !== undefined && { tracestate: msg.tracestate }),
    };
    let result;
    try {
      result = await this.#store.append(roomId, stored);
    } catch (err) {
      throw unavailable(err, stored.messageId);
    }
    if (!result.duplicate) {
      const delivery = Delivery.fromMessage(
        create(MessageSchema, { ...stored, target: roomId, offset: result.offset }),
      );
      entry.room.offer(delivery);
      this.#fanout?.publish(roomId, delivery);
    }
    member.send(
      envelope({
        case: "ack",
        value: create(AckSchema, {
          roomId,
          messageId: stored.messageId,
          offset: result.offset,
          duplicate: result.duplicate,
        }),
      }),
    );
  }

  // ---- rooms ----------------------------------------------------------------

  async #acquire(roomId: string): Promise<Room> {
    let entry = this.#rooms.get(roomId);
    if (entry === undefined) {
      const room = new Room(roomId, {
        store: this.#store,
        gapWaitMs: this.#opts.gapWaitMs,
        log: this.#log,
      });
      const created: RoomEntry = {
        room,
        ready: Promise.resolve(),
        users: 0,
        subscription: undefined,
      };
      (created as { ready: Promise<void> }).ready = this.#openRoom(created);
      this.#rooms.set(roomId, created);
      entry = created;
    }
    entry.users++;
    try {
      await entry.ready;
    } catch (err) {
      this.#release(roomId);
      // Store or broker down: the join can be retried once they are back.
      throw new WireError(ErrorCode.Unavailable, undefined, roomId, RETRY_AFTER_MS, { cause: err });
    }
    return entry.room;
  }

  async #openRoom(entry: RoomEntry): Promise<void> {
    const { room } = entry;
    // Subscribe before reading the head, so nothing published in between is missed.
    if (this.#broker.capabilities.distributed) {
      entry.subscription = await this.#broker.subscribe(room.id, (payload) => {
        let d;
        try {
          d = Delivery.fromEnvelopeBytes(payload);
        } catch (err) {
          this.#log.warn({ err, room: room.id }, "undecodable broker payload dropped");
          return;
        }
        if (d !== undefined) room.offer(d);
      });
    }
    const page = await this.#store.read(room.id, 0n, 0);
    room.start(page.head, page.epoch);
  }

  #leaveRoom(m: Membership): void {
    const entry = this.#rooms.get(m.roomId);
    if (entry === undefined) return;
    entry.room.remove(m);
    this.#release(m.roomId);
  }

  #release(roomId: string): void {
    const entry = this.#rooms.get(roomId);
    if (entry === undefined) return;
    entry.users--;
    if (entry.users > 0) return;
    this.#rooms.delete(roomId);
    entry.room.close();
    // The subscription may still be opening; drop it once it exists.
    entry.ready
      .then(() => entry.subscription?.unsubscribe())
      .catch((err: unknown) =>
        this.#log.debug({ err, room: roomId }, "unsubscribe after close failed"),
      );
  }

  #catchUpAll(): void {
    for (const entry of this.#rooms.values()) {
      void entry.ready.then(() => entry.room.catchUp()).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.#control?.unsubscribe().catch(() => undefined);
    clearInterval(this.#flushTimer);
    clearInterval(this.#refreshTimer);
    this.#fanout?.close();
    await this.flushAll();
  }
}

function unavailable(err: unknown, ref: string): WireError {
  if (err instanceof WireError) return err;
  if (err instanceof StoreError) {
    return new WireError(ErrorCode.Unavailable, undefined, ref, RETRY_AFTER_MS, { cause: err });
  }
  return new WireError(ErrorCode.Internal, undefined, ref, undefined, { cause: err });
}

function validateMessage(msg: Message): void {
  const ref = msg.messageId ?? msg.target;
  if (
    msg.messageId !== undefined &&
    (msg.messageId.length === 0 || msg.messageId.length > MAX_MESSAGE_ID)
  ) {
    throw new WireError(
      ErrorCode.BadRequest,
      `message_id must be 1-${MAX_MESSAGE_ID} characters`,
      msg.target,
    );
  }
  // U+0000 cannot be stored in PostgreSQL text; refusing it for every store
  // keeps the protocol the same everywhere, and keeps a client's bad input
  // from counting as a store failure (which would open the store's breaker).
  for (const text of [msg.content, msg.messageId, msg.sentAt, msg.traceparent, msg.tracestate]) {
    if (text?.includes("\u0000")) {
      throw new WireError(ErrorCode.BadRequest, "text fields may not contain U+0000", ref);
    }
  }
  if (msg.sentAt !== undefined && Number.isNaN(Date.parse(msg.sentAt))) {
    throw new WireError(ErrorCode.BadRequest, "sent_at must be an RFC 3339 timestamp", ref);
  }
  if (
    (msg.traceparent?.length ?? 0) > MAX_TRACE_FIELD ||
    (msg.tracestate?.length ?? 0) > MAX_TRACE_FIELD
  ) {
    throw new WireError(
      ErrorCode.BadRequest,
      `traceparent and tracestate are limited to ${MAX_TRACE_FIELD} characters`,
      ref,
    );
  }
}
