// The one registry of wire error codes and close codes. docs/errors.md lists
// every entry and test/unit/errors-doc.test.ts fails when the two disagree.
// Only the gateway turns a close reason into a socket close.

/** Stable error codes carried in `error.code`. Errors never close the socket. */
export const ErrorCode = {
  BadRequest: "bad_request",
  UnknownType: "unknown_type",
  InvalidRoom: "invalid_room",
  NotJoined: "not_joined",
  Forbidden: "forbidden",
  Unauthorized: "unauthorized",
  TooManyRooms: "too_many_rooms",
  RateLimited: "rate_limited",
  Unavailable: "unavailable",
  OffsetOutOfRange: "offset_out_of_range",
  Internal: "internal",
  TooLarge: "too_large",
  NotFound: "not_found",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What each code means, for docs and for the default `error.message`. */
export const errorDescriptions: Record<ErrorCode, string> = {
  bad_request: "The frame could not be decoded or a field has the wrong type or value.",
  unknown_type: "The envelope names no kind this server knows.",
  invalid_room: "The room id is not 1-128 characters of A-Z a-z 0-9 _ - . : @.",
  not_joined: "The member published to, acked or left a room it has not joined.",
  forbidden: "The caller's grants do not allow this room (join, or publish to a read-only room).",
  unauthorized: "The token is missing, invalid, expired or for another user.",
  too_many_rooms: "Joining would exceed MAX_ROOMS_PER_MEMBER.",
  rate_limited: "Too many requests; retry after retry_after_ms.",
  unavailable:
    "A dependency (the store) is down or timed out; retry after retry_after_ms with the same message_id.",
  offset_out_of_range: "since.offset is beyond the room's head; the join is refused.",
  internal: "An unexpected server fault; the request may be retried.",
  too_large: "The request body is larger than the server accepts (HTTP API, 413).",
  not_found: "No such path, or the server API is off (HTTP, 404).",
};

/**
 * Close codes. 4000-4499 mean "reconnect and resume"; 4500-4999 mean "do not
 * reconnect automatically". RFC 6455 codes where they fit.
 */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  UnsupportedData: 1003,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  SlowConsumer: 4000,
  SessionTakenOver: 4001,
  HeartbeatTimeout: 4002,
  FirstFrameTimeout: 4003,
  TokenExpired: 4501,
  DisconnectedByServer: 4502,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** The reason string sent with each close code (at most 123 bytes). */
export const closeReasons: Record<CloseCode, string> = {
  1000: "normal closure",
  1001: "going away",
  1003: "binary frame on the JSON subprotocol",
  1007: "invalid UTF-8 in a text frame",
  1008: "policy violation",
  1009: "message too big",
  1011: "internal error",
  1012: "server restarting; reconnect and resume",
  1013: "try again later",
  4000: "slow consumer: outbound buffer full; reconnect and resume",
  4001: "session taken over by a newer connection",
  4002: "heartbeat timeout: no pong; reconnect and resume",
  4003: "no frame within the first-frame timeout; reconnect and resume",
  4501: "token expired: get a new token, then reconnect",
  4502: "disconnected by the server: do not reconnect automatically",
};

/** True for codes after which a client should reconnect and resume. */
export function isReconnectCode(code: number): boolean {
  return (code >= 4000 && code <= 4499) || code === 1001 || code === 1012 || code === 1013;
}

/** An internal failure that maps to one wire error code. */
export class WireError extends Error {
  override readonly name = "WireError";
  constructor(
    readonly code: ErrorCode,
    message: string = errorDescriptions[code],
    readonly ref?: string,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
