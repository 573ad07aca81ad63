// Field rules a decoded envelope must meet before the core acts on it. Pure:
// each check throws a WireError carrying the wire code and the `ref`, and the
// core sends it back as an `error` frame.
import { ErrorCode, WireError } from "./errors.js";
import type { Message } from "./gen/roomcast/v1/envelope_pb.js";
import { isValidRoomId } from "./room-id.js";
import { isRfc3339DateTime } from "./timestamp.js";

export const MAX_MESSAGE_ID = 128;
export const MAX_TRACE_FIELD = 512;

/** Throws `invalid_room` (ref: the id, cut to 128 characters) unless `roomId` follows the room id rules. */
export function checkRoomId(roomId: string): void {
  if (!isValidRoomId(roomId)) {
    throw new WireError(ErrorCode.InvalidRoom, undefined, roomId.slice(0, 128));
  }
}

/**
 * Throws `bad_request` when a publish's own fields are unacceptable. The room
 * (`target`) is checked separately with checkRoomId, before membership.
 */
export function validateMessage(msg: Message): void {
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
  if (msg.sentAt !== undefined && !isRfc3339DateTime(msg.sentAt)) {
    throw new WireError(
      ErrorCode.BadRequest,
      "sent_at must be an RFC 3339 date-time with an offset",
      ref,
    );
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
