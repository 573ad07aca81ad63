// The core's view of one connection. The gateway implements it over a
// WebSocket; the core never sees sockets, limits or close handshakes.
import type { Codec } from "../protocol/codec.js";
import type { CloseCode } from "../protocol/errors.js";

export interface Outlet {
  readonly codec: Codec;
  /**
   * Queues one encoded envelope (the codec's own output, possibly a buffer
   * shared by every member of a room). Never throws. Returns false when the
   * payload was dropped: the connection is closing (either side) or went past
   * its hard outbound limit.
   */
  send(payload: Uint8Array): boolean;
  /** Starts closing the connection with a registered close code. */
  close(code: CloseCode): void;
  /** Closing or closed, by either side: nothing more is sent, and nothing it sent is applied. */
  readonly closed: boolean;
  /** More is queued for the peer than the outbound buffer limit. */
  readonly backlogged: boolean;
  /** Resolves once the backlog has drained (or the connection closed); at once when not backlogged. */
  drained(): Promise<void>;
  /** Stops (and resumes) reading the peer's frames: the connection's own backpressure. */
  pauseReading(): void;
  resumeReading(): void;
}
