// The Router: one per node. It ties the node's parts together (rooms,
// sessions, the control channel) and dispatches a member's requests: join,
// leave, ack and publish. Publishing has one path for every caller:
// validate → store.append (dedup + offset) → local room + other nodes → result.
import { randomUUID } from "node:crypto";
import { envelope } from "../protocol/codec.js";
import { CloseCode, ErrorCode, WireError } from "../protocol/errors.js";
import { type Envelope, type Message } from "../protocol/gen/roomcast/v1/envelope_pb.js";
import { checkRoomId, validateMessage } from "../protocol/validate.js";
import type { Logger } from "../observability/logging.js";
import type { Broker } from "../ports/broker.js";
import type { HistoryPage, NewMessage, Store } from "../ports/store.js";
import { CredentialError, Grants, type Credentials, type Identity } from "./access.js";
import { noTelemetry, type Telemetry, type TraceFields } from "../ports/telemetry.js";
import { Delivery } from "./delivery.js";
import { Member, type InFlight, type MemberHost, type MemberOptions } from "./member.js";
import { NodeControl } from "./node-control.js";
import type { Quota, RateLimits } from "./rate-limits.js";
import type { Outlet } from "./outlet.js";
import {
  Presence,
  defaultPresenceOptions,
  type PresenceOptions,
  type PresentMember,
} from "./presence.js";
import type { Position, Seat } from "./room.js";
import { Rooms } from "./rooms.js";
import { Sessions, type SessionGrant } from "./sessions.js";
import { RETRY_AFTER_MS, unavailable } from "./store-failure.js";

export type { SessionGrant } from "./sessions.js";
export type { PresentMember } from "./presence.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The largest offset a store holds (int64); larger wire offsets are past any head. */
const MAX_STORE_OFFSET = 2n ** 63n - 1n;

export interface RouterOptions {
  readonly gapWaitMs: number;
  readonly replayLimit: number;
  /** HEAD_ANNOUNCE_AFTER in ms; default 1 s, 0 = off (see broker-fanout.ts). */
  readonly headAnnounceAfterMs?: number | undefined;
  readonly maxRoomsPerMember: number;
  readonly sessionTtlMs: number;
  readonly ackFlushIntervalMs: number;
  readonly badFrameLimit: number;
  readonly badFrameWindowMs: number;
  /** Metrics and tracing; none when absent. */
  readonly telemetry?: Telemetry;
  /** Presence timing; defaults to defaultPresenceOptions. */
  readonly presence?: PresenceOptions | undefined;
}

/** Who publishes: a member (with its user and grants) or the server itself. */
export interface Publisher {
  readonly senderId: string;
  readonly userId?: string | undefined;
  /** Omitted for the server, which may publish anywhere. */
  readonly grants?: Grants | undefined;
  /** Whose RATE_LIMIT_MESSAGES quota it spends; omitted for the server (room limit only). */
  readonly quota?: Quota;
}

export interface JoinOptions {
  /** Watch the room's presence (presence_state, then presence_diff). */
  readonly presence?: boolean | undefined;
  /** A client's join_room (counted by RATE_LIMIT_JOINS), not a resume's rejoin. */
  readonly requested?: boolean | undefined;
}

/** The outcome of a publish that was stored (or found stored). */
export interface Published {
  readonly messageId: string;
  readonly offset: bigint;
  readonly duplicate: boolean;
}

export class Router implements MemberHost {
  readonly #store: Store;
  readonly #opts: RouterOptions;
  readonly #rooms: Rooms;
  readonly #sessions: Sessions;
  readonly #control: NodeControl;
  readonly #presence: Presence;
  /** Shared by every member (one object per node, not per connection). */
  readonly #memberOptions: MemberOptions;
  /** Verifies `refresh` tokens; undefined when authentication is off. */
  readonly #credentials: Credentials | undefined;
  readonly #telemetry: Telemetry;
  /** RATE_LIMIT_*; undefined: no limits. */
  readonly #limits: RateLimits | undefined;

  constructor(
    store: Store,
    broker: Broker,
    opts: RouterOptions,
    log: Logger,
    credentials?: Credentials,
    limits?: RateLimits,
  ) {
    this.#store = store;
    this.#opts = opts;
    this.#credentials = credentials;
    this.#telemetry = opts.telemetry ?? noTelemetry;
    this.#limits = limits;
    this.#memberOptions = {
      badFrameLimit: opts.badFrameLimit,
      badFrameWindowMs: opts.badFrameWindowMs,
      rateLimitCloseAfter: limits?.settings.closeAfter ?? 0,
      log,
      metrics: this.#telemetry.metrics,
    };
    this.#rooms = new Rooms(store, broker, opts, log);
    this.#sessions = new Sessions(store, opts, (member) => this.#leaveAll(member), log);
    this.#control = new NodeControl(broker, this.#sessions, log);
    this.#presence = new Presence(
      broker,
      this.#control.nodeId,
      opts.presence ?? defaultPresenceOptions,
      log,
    );
  }

  /** Subscribes to the node-control channel. */
  start(): Promise<void> {
    return this.#control.start();
  }

  /** Closes every socket of a user on every node (used when access is revoked). */
  closeUser(userId: string, code: CloseCode): Promise<void> {
    return this.#control.closeUser(userId, code);
  }

  // ---- sessions -----------------------------------------------------------

  /**
   * Resumes the session behind `token` (rotating it) or creates a fresh one;
   * a holder on this node or another is closed with 4001. Rejects with
   * StoreError when the store is down (the gateway answers 503).
   */
  async openSession(token: string | undefined, identity?: Identity): Promise<SessionGrant> {
    const grant = await this.#sessions.open(token, identity?.userId ?? "");
    if (grant.resumed && grant.remote) await this.#control.announceTakeover(grant.memberId);
    if (identity === undefined) return grant;
    // A resume rejoins only the rooms the current token grants.
    const rooms = grant.rooms.filter((r) => identity.grants.canJoin(r.room));
    return {
      memberId: grant.memberId,
      userId: grant.userId,
      token: grant.token,
      rooms,
      resumed: grant.resumed,
      remote: grant.remote,
      identity,
    };
  }

  /** Creates the member for an upgraded connection and sends `session` (and, on resume, its rooms). */
  attach(grant: SessionGrant, outlet: Outlet): Member {
    const member = new Member(
      grant.memberId,
      grant.userId,
      outlet,
      this,
      this.#memberOptions,
      grant.identity,
    );
    if (grant.identity !== undefined) {
      member.authenticate(grant.identity, this.#credentials?.clockSkewMs ?? 0);
    }
    this.#sessions.add(member);
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
          ...(grant.identity !== undefined && {
            userId: grant.identity.userId,
            expiresAt: new Date(grant.identity.expiresAt).toISOString(),
          }),
        },
      }),
    );
    // Rejoining runs first in the member's queue, so frames the client sends
    // meanwhile wait for it.
    for (const r of grant.rooms) {
      member.enqueue(async () => {
        try {
          await this.join(
            member,
            r.room,
            { offset: r.offset, epoch: r.epoch },
            { presence: r.presence ?? false },
          );
        } catch (err) {
          if (!(err instanceof WireError)) throw err;
          member.sendError(err);
        }
      });
    }
    return member;
  }

  /** The connection closed: leave rooms locally and save the session for resume. */
  detach(member: Member): void {
    this.#sessions.detach(member);
  }

  #leaveAll(member: Member): void {
    for (const seat of member.rooms.values()) this.#leaveSeat(member, seat);
    member.rooms.clear();
  }

  #leaveSeat(member: Member, seat: Seat): void {
    seat.room.leave(seat);
    this.#presence.exit(seat.room.id, member.id);
    this.#rooms.release(seat.room.id);
  }

  /** Saves every connected member's session (used when draining). */
  flushAll(): Promise<void> {
    return this.#sessions.flushAll();
  }

  // ---- requests -------------------------------------------------------------

  async handle(member: Member, env: Envelope): Promise<InFlight | undefined> {
    switch (env.kind.case) {
      case "joinRoom": {
        const since = env.kind.value.since;
        await this.join(
          member,
          env.kind.value.roomId,
          since && { offset: since.offset, epoch: since.epoch },
          { presence: env.kind.value.presence, requested: true },
        );
        return;
      }
      case "leaveRoom":
        this.leave(member, env.kind.value.roomId);
        return;
      case "message":
        return this.#publishFrom(member, env.kind.value);
      case "ack":
        this.ack(member, env.kind.value.roomId, env.kind.value.offset);
        return;
      case "refresh":
        await this.#refresh(member, env.kind.value.token);
        return;
      case undefined:
        throw new WireError(ErrorCode.UnknownType);
      default:
        throw new WireError(ErrorCode.BadRequest, `${env.kind.case} is sent by the server only`);
    }
  }

  /**
   * A new token for the same user: its expiry and grants apply from now on,
   * and rooms it no longer grants are left. A bad token, or one for another
   * user, changes nothing.
   */
  async #refresh(member: Member, token: string): Promise<void> {
    if (this.#credentials === undefined) {
      throw new WireError(
        ErrorCode.BadRequest,
        "token refresh needs authentication, which is not configured",
      );
    }
    let identity: Identity;
    try {
      identity = await this.#credentials.verify(token);
    } catch (err) {
      if (!(err instanceof CredentialError)) throw err;
      throw new WireError(ErrorCode.Unauthorized, undefined, undefined, undefined, { cause: err });
    }
    if (identity.userId !== member.userId) {
      throw new WireError(ErrorCode.Unauthorized, "the token is for another user");
    }
    if (!member.active) return;
    member.authenticate(identity, this.#credentials.clockSkewMs);
    member.send(
      envelope({
        case: "refreshed",
        value: {
          $typeName: "roomcast.v1.Refreshed",
          expiresAt: new Date(identity.expiresAt).toISOString(),
        },
      }),
    );
    for (const roomId of member.rooms.ids()) {
      if (!identity.grants.canJoin(roomId)) this.leave(member, roomId);
    }
  }

  /**
   * Joins `roomId`; with `presence` the member also watches who is in it
   * (presence_state right after room_joined, then presence_diff).
   * `requested`: a client's join_room, which RATE_LIMIT_JOINS counts (a
   * resume's rejoins do not); a join refused for another reason first
   * (forbidden, too_many_rooms, already joined) does not count.
   */
  async join(
    member: Member,
    roomId: string,
    since?: Position,
    { presence = false, requested = false }: JoinOptions = {},
  ): Promise<void> {
    checkRoomId(roomId);
    if (!member.grants.canJoin(roomId)) {
      throw new WireError(ErrorCode.Forbidden, undefined, roomId);
    }
    const existing = member.rooms.get(roomId);
    if (existing !== undefined) {
      // Idempotent: one membership; answer with where the room stands.
      if (presence && !existing.presence) {
        await this.#presence.prepare(roomId, true);
        try {
          if (member.rooms.get(roomId) !== existing || !member.active) return;
          existing.presence = true;
          existing.room.rejoined(existing);
          this.#presence.watch(roomId, member.id, member.outlet);
          this.#sessions.touch(member);
        } finally {
          this.#presence.release(roomId);
        }
        return;
      }
      existing.room.rejoined(existing);
      return;
    }
    if (member.rooms.size >= this.#opts.maxRoomsPerMember) {
      throw new WireError(ErrorCode.TooManyRooms, undefined, roomId);
    }
    if (requested && this.#limits !== undefined) {
      const wait = await this.#limits.join(member.id);
      if (wait > 0) throw new WireError(ErrorCode.RateLimited, undefined, roomId, wait);
    }
    const room = await this.#rooms.acquire(roomId);
    if (!member.active) {
      this.#rooms.release(roomId);
      return;
    }
    let seated: Seat | undefined;
    let seat: Seat | undefined;
    let present = false;
    try {
      // A watcher's presence_state must include the other nodes' members.
      if (presence) await this.#presence.prepare(roomId, true);
      seat = await room.join(member.outlet, since, {
        seated: (s) => {
          seated = s;
          s.presence = presence;
          member.rooms.set(s);
        },
        joined: () => {
          present = true;
          this.#presence.enter(
            roomId,
            member.id,
            member.userId,
            presence ? member.outlet : undefined,
          );
        },
        // The membership is durable before the client hears of it.
        persist: () =>
          this.#sessions.save(member).catch((err: unknown) => {
            throw unavailable(err, roomId);
          }),
      });
    } finally {
      if (presence) this.#presence.release(roomId);
      // Failed or abandoned: undo, unless detaching already left the room.
      if (seat === undefined && seated !== undefined && member.rooms.get(roomId) === seated) {
        member.rooms.delete(roomId);
        if (present) this.#presence.exit(roomId, member.id);
        this.#rooms.release(roomId);
      }
    }
  }

  leave(member: Member, roomId: string): void {
    checkRoomId(roomId);
    const seat = member.rooms.get(roomId);
    if (seat === undefined) throw new WireError(ErrorCode.NotJoined, undefined, roomId);
    member.rooms.delete(roomId);
    this.#leaveSeat(member, seat);
    this.#sessions.saveQuietly(member);
    member.send(
      envelope({ case: "roomLeft", value: { $typeName: "roomcast.v1.RoomLeft", roomId } }),
    );
  }

  ack(member: Member, roomId: string, offset: bigint): void {
    checkRoomId(roomId);
    const seat = member.rooms.get(roomId);
    if (seat === undefined) throw new WireError(ErrorCode.NotJoined, undefined, roomId);
    if (seat.ack(offset)) this.#sessions.touch(member);
  }

  /**
   * Checks a member's publish and hands it to the store; resolves once the
   * store has it (in order, so the member may go on with its next frame) with
   * what completes it: the commit, the delivery and the ack.
   */
  async #publishFrom(member: Member, msg: Message): Promise<InFlight> {
    checkRoomId(msg.target);
    if (!member.rooms.has(msg.target)) {
      throw new WireError(ErrorCode.NotJoined, undefined, msg.messageId ?? msg.target);
    }
    const acked = this.#telemetry.metrics.publishTimer();
    const from: Publisher = {
      senderId: member.id,
      userId: member.identity?.userId,
      grants: member.grants,
      quota:
        member.identity === undefined
          ? { connection: member.id }
          : { user: member.identity.userId },
    };
    const messageId = await this.#admit(msg.target, msg, from);
    const done = this.#commit(msg.target, msg, messageId, from).then((result) => {
      acked();
      member.send(
        envelope({
          case: "ack",
          value: {
            $typeName: "roomcast.v1.Ack",
            roomId: msg.target,
            messageId: result.messageId,
            offset: result.offset,
            duplicate: result.duplicate,
          },
        }),
      );
    });
    return { done };
  }

  /**
   * Publishes `msg` into `roomId` as `senderId`: the one path every publisher
   * takes (WebSocket members and, later, the server API), so validation,
   * grants, de-duplication and offsets hold the same for all. Resolves once
   * the message is stored; throws WireError (bad_request, invalid_room,
   * forbidden, rate_limited, unavailable, internal). Every publish that gets
   * past validation and grants counts against the rate limits (a duplicate
   * too); a refused one is not stored, delivered or acked.
   */
  async publish(roomId: string, msg: Message, from: Publisher): Promise<Published> {
    const messageId = await this.#admit(roomId, msg, from);
    return this.#commit(roomId, msg, messageId, from);
  }

  /** Validation, grants and rate limits of one publish; resolves with its message id. */
  async #admit(roomId: string, msg: Message, from: Publisher): Promise<string> {
    checkRoomId(roomId);
    validateMessage(msg);
    const messageId = msg.messageId ?? randomUUID();
    if (from.grants !== undefined && !from.grants.canPublish(roomId)) {
      throw new WireError(ErrorCode.Forbidden, undefined, messageId);
    }
    if (this.#limits !== undefined) {
      const wait = await this.#limits.publish(roomId, from.quota);
      if (wait > 0) throw new WireError(ErrorCode.RateLimited, undefined, messageId, wait);
    }
    return messageId;
  }

  /**
   * Stores an admitted publish, then delivers it. The append is called
   * before this returns (tracing runs `fn` at once, and #publish calls the
   * store before its first await), so appends reach the store in the order
   * of these calls: what lets a member pipeline its publishes.
   */
  #commit(roomId: string, msg: Message, messageId: string, from: Publisher): Promise<Published> {
    return this.#telemetry.tracing.publish(roomId, msg, (trace) =>
      this.#publish(roomId, msg, messageId, from, trace),
    );
  }

  async #publish(
    roomId: string,
    msg: Message,
    messageId: string,
    from: Publisher,
    trace: TraceFields,
  ): Promise<Published> {
    // Optional fields set one by one, not spread: conditional spreads cost a
    // visible share of the many-rooms profile (one publish per 10 deliveries).
    const stored: Mutable<NewMessage> = {
      messageId,
      senderId: from.senderId,
      sentAt: msg.sentAt ?? new Date().toISOString(),
      content: msg.content,
    };
    if (trace.traceparent !== undefined) stored.traceparent = trace.traceparent;
    if (trace.tracestate !== undefined) stored.tracestate = trace.tracestate;
    if (from.userId !== undefined) stored.userId = from.userId;
    let result;
    try {
      result = await this.#store.append(roomId, stored);
    } catch (err) {
      throw unavailable(err, stored.messageId);
    }
    if (result.duplicate) {
      void this.#rooms.announce(roomId, result.offset);
    } else {
      this.#telemetry.metrics.published();
      // A literal, as create(MessageSchema, ...) would build it: one per publish.
      const message: Message = {
        $typeName: "roomcast.v1.Message",
        target: roomId,
        content: stored.content,
        messageId: stored.messageId,
        sentAt: stored.sentAt,
        senderId: stored.senderId,
        offset: result.offset,
      };
      if (stored.traceparent !== undefined) message.traceparent = stored.traceparent;
      if (stored.tracestate !== undefined) message.tracestate = stored.tracestate;
      if (stored.userId !== undefined) message.userId = stored.userId;
      this.#rooms.deliver(roomId, Delivery.fromMessage(message));
    }
    return { messageId: stored.messageId, offset: result.offset, duplicate: result.duplicate };
  }

  // ---- server API (src/gateway/api.ts) -------------------------------------

  /**
   * A page of a room's history: messages after `since`, at most `limit`,
   * with the head and epoch. Throws WireError invalid_room,
   * offset_out_of_range (since beyond the head), unavailable.
   */
  async history(roomId: string, since: bigint, limit: number): Promise<HistoryPage> {
    checkRoomId(roomId);
    let page: HistoryPage;
    try {
      page = await this.#store.read(
        roomId,
        since > MAX_STORE_OFFSET ? MAX_STORE_OFFSET : since,
        limit,
      );
    } catch (err) {
      throw unavailable(err, roomId);
    }
    if (since > page.head) {
      throw new WireError(
        ErrorCode.OffsetOutOfRange,
        `since ${since} is beyond the head ${page.head}`,
        roomId,
      );
    }
    return page;
  }

  /** The members connected and joined to `roomId` now, on every node. Throws invalid_room. */
  presence(roomId: string): Promise<PresentMember[]> {
    checkRoomId(roomId);
    return this.#presence.query(roomId);
  }

  /**
   * Ends a user's sessions (none can be resumed any more), then closes its
   * sockets on every node with 4502. Throws WireError unavailable when the
   * store or the broker is down (the request can be repeated).
   */
  async disconnectUser(userId: string): Promise<void> {
    try {
      await this.#store.revokeUserSessions(userId);
    } catch (err) {
      throw unavailable(err, userId);
    }
    try {
      await this.#control.closeUser(userId, CloseCode.DisconnectedByServer);
    } catch (err) {
      throw new WireError(ErrorCode.Unavailable, "the broker is down", userId, RETRY_AFTER_MS, {
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    this.#presence.close();
    await this.#control.close();
    this.#rooms.close();
    await this.#sessions.close();
  }
}
