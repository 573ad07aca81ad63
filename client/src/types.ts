// The SDK's public contracts: options, events and what they carry.
import type { BackoffOptions } from "./backoff.js";
import type { Protocol } from "./codec.js";
import type { RoomcastError } from "./errors.js";

/**
 * An event handler property. Declared as a method so that implementations
 * whose handlers take a richer event (the DOM's MessageEvent, ws's) fit.
 */
type Handler<E> = { bivariant(event: E): void }["bivariant"] | null;

/** The part of the WHATWG WebSocket the client uses (browsers, `ws`, undici). */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<never>;
  onmessage: Handler<{ readonly data: unknown }>;
  onclose: Handler<{ readonly code: number; readonly reason: string }>;
  onerror: Handler<never>;
}

export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

/** Why the client asks for a token. */
export type TokenReason =
  /** Before a connection attempt (every attempt: return a cached token while it is valid). */
  | "connect"
  /** Before the current token's `expires_at`: a new one is sent with `refresh`. */
  | "refresh"
  /** The server closed with 4501 (token expired): the next token must be new. */
  | "expired";

export interface RoomcastOptions {
  /** The WebSocket implementation; default `globalThis.WebSocket` (browsers, Node ≥ 22). */
  readonly WebSocket?: WebSocketConstructor;
  /** Returns a JWT when the server has authentication on; sent as `?token=`. */
  readonly getToken?: (context: { reason: TokenReason }) => string | Promise<string>;
  /** Subprotocol: `json` (default) or `protobuf`. */
  readonly protocol?: Protocol;
  /** Reconnect backoff (full jitter). Default 500 ms initial cap, 30 s maximum. */
  readonly reconnect?: Partial<BackoffOptions>;
  /** How often delivered offsets are acked, one cumulative ack per room. Default 250 ms. */
  readonly ackIntervalMs?: number;
  /** How long before `expires_at` the token is refreshed. Default 30 s (half the remaining time when shorter). */
  readonly refreshMarginMs?: number;
  /**
   * How long one connection attempt may take to bring the server's `session`
   * frame (TCP connect and upgrade included) before it is abandoned and
   * retried with backoff, as after a 1006. Default 10 s; 0 waits forever.
   */
  readonly sessionTimeoutMs?: number;
  /** Connect in the constructor (default true); else call `connect()`. */
  readonly autoConnect?: boolean;
  /** Random source in [0, 1) for the backoff jitter; tests pass their own. */
  readonly random?: () => number;
}

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface StateEvent {
  readonly state: ConnectionState;
  /** The close code that caused a reconnect or the stop. */
  readonly code?: number;
  readonly reason?: string;
  /** For `reconnecting`: the delay before the next attempt. */
  readonly delayMs?: number;
}

export interface SessionInfo {
  readonly memberId: string;
  /** The authenticated user, undefined on anonymous connections. */
  readonly userId: string | undefined;
  /** True when the previous session was resumed (same member, rooms kept). */
  readonly resumed: boolean;
  readonly expiresAt: Date | undefined;
}

export interface ClientEvents {
  state: StateEvent;
  session: SessionInfo;
  refreshed: { readonly expiresAt: Date };
  /** Server errors not tied to a publish or a join, and client-side failures. */
  error: RoomcastError;
}

export interface RoomOptions {
  /** Subscribe to the room's presence (presence_state, then presence_diff). */
  readonly presence?: boolean;
}

export interface RoomMessage {
  readonly room: string;
  readonly offset: bigint;
  readonly content: string;
  readonly messageId: string;
  readonly senderId: string;
  readonly userId: string | undefined;
  readonly sentAt: string | undefined;
  /** True when this client published it. */
  readonly own: boolean;
}

export interface JoinedEvent {
  readonly epoch: string;
  /** The room's head offset at the join. */
  readonly offset: bigint;
  /** False when the server could not replay everything missed (see `gap`). */
  readonly recovered: boolean;
}

/** Messages after `after` may be missing: they could not be replayed. */
export interface GapEvent {
  readonly after: bigint;
  readonly head: bigint;
  /** The room's history was lost and restarted (offsets start again). */
  readonly epochChanged: boolean;
}

export interface PresenceMember {
  readonly memberId: string;
  readonly userId: string | undefined;
}

export interface PresenceEvent {
  /** Everyone present now. */
  readonly members: readonly PresenceMember[];
  readonly joined: readonly PresenceMember[];
  readonly left: readonly PresenceMember[];
}

export interface RoomEvents {
  message: RoomMessage;
  joined: JoinedEvent;
  gap: GapEvent;
  presence: PresenceEvent;
  /** The server removed the membership (e.g. a refreshed token no longer grants the room). */
  left: { readonly room: string };
  /** A join refused (`forbidden`, `invalid_room`, …): the room stays unjoined. */
  error: RoomcastError;
}

export interface PublishResult {
  readonly offset: bigint;
  readonly messageId: string;
  /** True when the server had already stored this message_id (a retry). */
  readonly duplicate: boolean;
}
