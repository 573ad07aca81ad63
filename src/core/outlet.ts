// The core's view of one connection. The gateway implements it over a
// WebSocket; the core never sees sockets, limits or close handshakes.
import type { Codec } from "../protocol/codec.js";
import type { CloseCode } from "../protocol/errors.js";

export interface Outlet {
  readonly codec: Codec;
  /**
   * Queues one encoded envelope (the codec's own output, possibly a buffer
   * shared by every member of a room). Never throws; does nothing once the
   * outlet is closing. Enforces the outbound buffer limit itself.
   */
  send(payload: Uint8Array): void;
  /** Starts closing the connection with a registered close code. */
  close(code: CloseCode): void;
}
