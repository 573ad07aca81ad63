// One error class for everything the client rejects or reports, with the
// server's stable code (docs/errors.md) or one of the client's own codes.

export const ClientErrorCode = {
  /** The client was closed, or stopped reconnecting (a 4500–4999 close). */
  Closed: "closed",
  /** The room was left before the publish was acknowledged. */
  Left: "left",
  /** A frame from the server could not be decoded. */
  BadFrame: "bad_frame",
  /** getToken threw or rejected. */
  Token: "token",
  /** The WebSocket constructor threw (e.g. a malformed URL). */
  Connect: "connect",
} as const;

export class RoomcastError extends Error {
  override readonly name = "RoomcastError";
  /** A server error code (`forbidden`, `rate_limited`, …) or a ClientErrorCode. */
  readonly code: string;
  /** What the error is about: a message_id or a room id, when known. */
  readonly ref: string | undefined;

  constructor(code: string, message: string, options: { ref?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.ref = options.ref;
  }
}
