// @roomcast/client: the Roomcast client SDK for browsers and Node ≥ 20.
export { Roomcast } from "./client.js";
export { Room } from "./room.js";
export { RoomcastError, ClientErrorCode } from "./errors.js";
export { backoffDelay, closeAction, CloseAction, type BackoffOptions } from "./backoff.js";
export { Subprotocol, type Protocol } from "./codec.js";
export type * from "./types.js";
