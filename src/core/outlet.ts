// The core's view of one connection. The gateway implements it over a
// WebSocket; the core never sees sockets, limits or close handshakes.
import type { Codec } from "../protocol/codec.js";
import type { CloseCode } from "../protocol/errors.js";

export interface Outlet {
  readonly codec: Codec;
  /**
   * Queues one encoded envelope (the codec's own output, possibly a buffer
   * shared by every member of a room). Never throws. Returns false when the
   * payload was dropped: the connection is closing (either side) or just
   * overflowed its outbound buffer limit, which the outlet enforces itself.
   */
  send(payload: Uint8Array): boolean;
  /** Starts closing the connection with a registered close code. */
  close(code: CloseCode): void;
}
