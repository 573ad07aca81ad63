// The connection: one WebSocket at a time, a session on it, reconnects with
// backoff and resume, token refresh, and the batched cumulative acks. What
// happens to each room's messages and publishes is in room.ts.
import {
  backoffDelay,
  closeAction,
  CloseAction,
  defaultBackoff,
  type BackoffOptions,
} from "./backoff.js";
import { codecFor, type Codec } from "./codec.js";
import { Emitter } from "./emitter.js";
import { ClientErrorCode, RoomcastError } from "./errors.js";
import { Room, type RoomLink } from "./room.js";
import type {
  ClientEvents,
  ConnectionState,
  RoomcastOptions,
  RoomOptions,
  SessionInfo,
  StateEvent,
  TokenReason,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";
import { offsetOf, type WireEnvelope } from "./wire.js";

const OPEN = 1;
/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** RoomcastOptions.sessionTimeoutMs's default. */
const SESSION_TIMEOUT_MS = 10_000;

export class Roomcast {
  readonly #url: string;
  readonly #options: RoomcastOptions;
  readonly #WebSocket: WebSocketConstructor;
  readonly #codec: Codec;
  readonly #backoff: BackoffOptions;
  readonly #events = new Emitter<ClientEvents>();
  readonly #rooms = new Map<string, Room>();
  readonly #link: RoomLink;
  #ws: WebSocketLike | undefined;
  #state: ConnectionState = "idle";
  #session: SessionInfo | undefined;
  /** The resume token of the last session (each works once; the server sends a new one). */
  #resumeToken: string | undefined;
  #generation = 0;
  #attempt = 0;
  #nextTokenReason: TokenReason = "connect";
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #sessionTimer: ReturnType<typeof setTimeout> | undefined;
  #ackTimer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param url the server's WebSocket URL, e.g. `ws://localhost:8080/ws`.
   */
  constructor(url: string, options: RoomcastOptions = {}) {
    this.#url = url;
    this.#options = options;
    const WS =
      options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ??
      undefined;
    if (WS === undefined) {
      throw new TypeError("no WebSocket implementation: pass options.WebSocket (e.g. from 'ws')");
    }
    this.#WebSocket = WS;
    this.#codec = codecFor(options.protocol ?? "json");
    this.#backoff = { ...defaultBackoff, ...options.reconnect };
    this.#link = {
      send: (envelope) => this.#send(envelope),
      generation: () => this.#generation,
      memberId: () => this.#session?.memberId,
      stopped: () => this.#state === "closed",
      forget: (room) => {
        if (this.#rooms.get(room.id) === room) this.#rooms.delete(room.id);
      },
    };
    if (options.autoConnect !== false) this.connect();
  }

  on<K extends keyof ClientEvents>(
    type: K,
    listener: (event: ClientEvents[K]) => void,
  ): () => void {
    return this.#events.on(type, listener);
  }

  off<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): void {
    this.#events.off(type, listener);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The current session; undefined until the server's first `session` frame. */
  get session(): SessionInfo | undefined {
    return this.#session;
  }

  /**
   * The room `id`, joined now or as soon as a session is open, and rejoined
   * after every reconnect. Calling it again returns the same Room.
   */
  room(id: string, options: RoomOptions = {}): Room {
    let room = this.#rooms.get(id);
    if (room === undefined) {
      room = new Room(id, options, this.#link);
      this.#rooms.set(id, room);
      if (this.#session !== undefined) this.#send(room.joinFrame());
    }
    return room;
  }

  /** Starts connecting (only needed with `autoConnect: false`, or after `close()`). */
  connect(): void {
    if (this.#state !== "idle" && this.#state !== "closed") return; // already on it
    this.#attempt = 0;
    void this.#open("connecting");
  }

  /** Closes for good: no reconnect; pending publishes are rejected with `closed`. */
  close(): void {
    this.#flushAcks();
    this.#stop(1000, "client closed");
  }

  async #open(state: ConnectionState): Promise<void> {
    this.#setState({ state });
    let url = this.#url;
    const params: string[] = [];
    if (this.#options.getToken !== undefined) {
      const reason = this.#nextTokenReason;
      let token: string;
      try {
        token = await this.#options.getToken({ reason });
      } catch (cause) {
        this.#events.emit(
          "error",
          new RoomcastError(ClientErrorCode.Token, "getToken failed", { cause }),
        );
        this.#scheduleReconnect(0, "getToken failed");
        return;
      }
      if (this.#state !== state) return; // closed meanwhile
      params.push(`token=${encodeURIComponent(token)}`);
      this.#nextTokenReason = "connect";
    }
    if (this.#resumeToken !== undefined) {
      params.push(`session=${encodeURIComponent(this.#resumeToken)}`);
    }
    if (params.length > 0) url += (url.includes("?") ? "&" : "?") + params.join("&");

    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(url, [this.#codec.subprotocol]);
    } catch (cause) {
      this.#events.emit(
        "error",
        new RoomcastError(ClientErrorCode.Connect, "cannot open a WebSocket", { cause }),
      );
      this.#scheduleReconnect(1006, "cannot open");
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    ws.onmessage = (event) => {
      if (this.#ws === ws) this.#receive(event.data);
    };
    ws.onclose = (event) => {
      if (this.#ws === ws) this.#closed(event.code, event.reason);
    };
    // The close event follows every error; nothing to do here.
    ws.onerror = () => {};
    this.#armSessionTimeout(ws);
  }

  /**
   * A server that accepts the connection but never answers the upgrade, or
   * upgrades and never sends `session`, would otherwise hold the client in
   * `connecting` for good: the attempt is dropped and retried with backoff.
   */
  #armSessionTimeout(ws: WebSocketLike): void {
    const timeoutMs = this.#options.sessionTimeoutMs ?? SESSION_TIMEOUT_MS;
    clearTimeout(this.#sessionTimer);
    if (timeoutMs <= 0) return;
    this.#sessionTimer = setTimeout(() => {
      if (this.#ws !== ws || this.#session !== undefined) return;
      this.#events.emit(
        "error",
        new RoomcastError(ClientErrorCode.Connect, `no session frame within ${timeoutMs} ms`),
      );
      this.#ws = undefined; // what the abandoned socket does next is ignored
      try {
        ws.close();
      } catch {
        // Closing a socket that never opened may throw in some implementations.
      }
      this.#closed(1006, "session timeout");
    }, timeoutMs);
  }

  #receive(data: unknown): void {
    let envelopes: WireEnvelope[];
    try {
      envelopes = this.#codec.decode(data);
    } catch (cause) {
      this.#events.emit(
        "error",
        new RoomcastError(ClientErrorCode.BadFrame, "undecodable frame", { cause }),
      );
      return;
    }
    for (const envelope of envelopes) this.#dispatch(envelope);
  }

  #dispatch(e: WireEnvelope): void {
    if (e.message !== undefined) {
      this.#rooms.get(e.message.target ?? "")?.message(e.message);
    } else if (e.ack !== undefined) {
      const room = this.#rooms.get(e.ack.room_id ?? "");
      room?.published(e.ack.message_id ?? "", offsetOf(e.ack.offset), e.ack.duplicate === true);
    } else if (e.session !== undefined) {
      this.#sessionOpened(e.session);
    } else if (e.room_joined !== undefined) {
      this.#rooms.get(e.room_joined.room_id ?? "")?.roomJoined(e.room_joined);
    } else if (e.room_left !== undefined) {
      this.#rooms.get(e.room_left.room_id ?? "")?.roomLeft();
    } else if (e.presence_state !== undefined) {
      this.#rooms
        .get(e.presence_state.room_id ?? "")
        ?.presenceState(e.presence_state.members ?? []);
    } else if (e.presence_diff !== undefined) {
      const d = e.presence_diff;
      this.#rooms.get(d.room_id ?? "")?.presenceDiff(d.joined ?? [], d.left ?? []);
    } else if (e.refreshed !== undefined) {
      const expiresAt = dateOf(e.refreshed.expires_at);
      if (expiresAt !== undefined) {
        if (this.#session !== undefined) this.#session = { ...this.#session, expiresAt };
        this.#scheduleRefresh(expiresAt);
        this.#events.emit("refreshed", { expiresAt });
      }
    } else if (e.error !== undefined) {
      const { code = "internal", message = "", ref, retry_after_ms } = e.error;
      if (ref !== undefined && ref !== "") {
        for (const room of this.#rooms.values()) {
          if (room.refused(code, message, ref, retry_after_ms)) return;
        }
      }
      this.#events.emit(
        "error",
        new RoomcastError(code, message, ref === undefined ? {} : { ref }),
      );
    }
  }

  #sessionOpened(s: NonNullable<WireEnvelope["session"]>): void {
    clearTimeout(this.#sessionTimer);
    this.#generation++;
    this.#resumeToken = s.token;
    this.#attempt = 0;
    const resumed = s.resumed === true;
    this.#session = {
      memberId: s.member_id ?? "",
      userId: s.user_id === "" ? undefined : s.user_id,
      resumed,
      expiresAt: dateOf(s.expires_at),
    };
    const serverRooms = new Set(resumed ? (s.rooms ?? []) : []);
    this.#setState({ state: "open" });
    this.#events.emit("session", this.#session);
    // A resumed session's rooms are rejoined by the server (room_joined, then
    // the replay); the others are joined again from where we are.
    for (const room of this.#rooms.values()) {
      if (!serverRooms.has(room.id)) this.#send(room.joinFrame());
    }
    for (const id of serverRooms) {
      if (!this.#rooms.has(id)) this.#send({ leave_room: { room_id: id } });
    }
    if (this.#session.expiresAt !== undefined) this.#scheduleRefresh(this.#session.expiresAt);
    clearInterval(this.#ackTimer);
    this.#ackTimer = setInterval(() => this.#flushAcks(), this.#options.ackIntervalMs ?? 250);
  }

  #closed(code: number, reason: string): void {
    this.#ws = undefined;
    this.#session = undefined;
    this.#clearTimers();
    for (const room of this.#rooms.values()) room.disconnected();
    const action = closeAction(code);
    if (action === CloseAction.Stop) {
      this.#stop(code, reason);
    } else if (action === CloseAction.NewToken) {
      this.#nextTokenReason = "expired";
      this.#scheduleReconnect(code, reason, 0);
    } else {
      this.#scheduleReconnect(code, reason);
    }
  }

  #scheduleReconnect(code: number, reason: string, delayMs?: number): void {
    if (this.#state === "closed") return;
    const delay = delayMs ?? backoffDelay(this.#attempt++, this.#backoff, this.#options.random);
    this.#setState({ state: "reconnecting", code, reason, delayMs: delay });
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => void this.#open("reconnecting"), delay);
  }

  #scheduleRefresh(expiresAt: Date): void {
    const getToken = this.#options.getToken;
    if (getToken === undefined) return;
    clearTimeout(this.#refreshTimer);
    const remaining = expiresAt.getTime() - Date.now();
    const margin = Math.min(this.#options.refreshMarginMs ?? 30_000, remaining / 2);
    const delay = Math.max(0, remaining - margin);
    if (delay > MAX_TIMER_MS) {
      // setTimeout fires at once past 2^31-1 ms: wait in steps instead.
      this.#refreshTimer = setTimeout(() => this.#scheduleRefresh(expiresAt), MAX_TIMER_MS);
      return;
    }
    const generation = this.#generation;
    this.#refreshTimer = setTimeout(() => {
      void (async () => {
        let token: string;
        try {
          token = await getToken({ reason: "refresh" });
        } catch (cause) {
          this.#events.emit(
            "error",
            new RoomcastError(ClientErrorCode.Token, "getToken failed", { cause }),
          );
          return; // the server closes with 4501 at expiry; we get a token then
        }
        if (generation === this.#generation) this.#send({ refresh: { token } });
      })();
    }, delay);
  }

  #flushAcks(): void {
    if (this.#session === undefined) return;
    for (const room of this.#rooms.values()) {
      const ack = room.takeAck();
      if (ack !== undefined) this.#send(ack);
    }
  }

  #send(envelope: WireEnvelope): boolean {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== OPEN || this.#session === undefined) return false;
    ws.send(this.#codec.encode(envelope));
    return true;
  }

  #stop(code: number, reason: string): void {
    this.#clearTimers();
    clearTimeout(this.#reconnectTimer);
    const ws = this.#ws;
    this.#ws = undefined;
    this.#session = undefined;
    if (ws !== undefined && ws.readyState <= OPEN) ws.close(1000, "client closed");
    const err = new RoomcastError(ClientErrorCode.Closed, `closed (${code} ${reason})`);
    for (const room of this.#rooms.values()) room.closed(err);
    this.#setState({ state: "closed", code, reason });
  }

  #clearTimers(): void {
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#sessionTimer);
    clearInterval(this.#ackTimer);
    this.#ackTimer = undefined;
  }

  #setState(event: StateEvent): void {
    this.#state = event.state;
    this.#events.emit("state", event);
  }
}

function dateOf(text: string | undefined): Date | undefined {
  if (text === undefined || text === "") return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
