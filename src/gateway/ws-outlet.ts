// An Outlet over one `ws` WebSocket. Writes are coalesced per event-loop turn:
// the raw TCP socket is corked on the first send and uncorked once after the
// turn, so a burst of frames leaves in one writev; on the binary subprotocol
// the envelopes of one turn share one frame (PROTOCOL.md allows several).
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import type { Codec } from "../protocol/codec.js";
import { CloseCode, closeReasons } from "../protocol/errors.js";
import type { Outlet } from "../core/outlet.js";

/** How long a closing socket may take to finish its close handshake. */
const CLOSE_GRACE_MS = 5000;

const pending: WsOutlet[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  const list = pending.splice(0);
  for (const outlet of list) outlet.flush();
}

export class WsOutlet implements Outlet {
  readonly codec: Codec;
  readonly #ws: WebSocket;
  readonly #raw: Duplex;
  readonly #maxBuffered: number;
  readonly #onSlow: () => void;
  #queued: Uint8Array[] = [];
  #queuedBytes = 0;
  #scheduled = false;
  #closing = false;

  constructor(ws: WebSocket, raw: Duplex, codec: Codec, maxBuffered: number, onSlow: () => void) {
    this.#ws = ws;
    this.#raw = raw;
    this.codec = codec;
    this.#maxBuffered = maxBuffered;
    this.#onSlow = onSlow;
  }

  get closing(): boolean {
    return this.#closing;
  }

  send(payload: Uint8Array): boolean {
    // readyState leaves OPEN as soon as the peer's close frame arrives.
    if (this.#closing || this.#ws.readyState !== this.#ws.OPEN) return false;
    if (this.#ws.bufferedAmount + this.#queuedBytes + payload.byteLength > this.#maxBuffered) {
      // A reader that cannot keep up is cut off instead of slowing its rooms.
      this.#onSlow();
      this.close(CloseCode.SlowConsumer);
      return false;
    }
    this.#queued.push(payload);
    this.#queuedBytes += payload.byteLength;
    if (!this.#scheduled) {
      this.#scheduled = true;
      pending.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
    }
    return true;
  }

  /** Writes what this turn queued. */
  flush(): void {
    this.#scheduled = false;
    const queued = this.#queued;
    if (queued.length === 0) return;
    this.#queued = [];
    this.#queuedBytes = 0;
    if (this.#closing || this.#ws.readyState !== this.#ws.OPEN) return;
    if (this.codec.binary) {
      this.#ws.send(queued.length === 1 ? queued[0]! : Buffer.concat(queued), { binary: true });
      return;
    }
    // ws writes each frame synchronously (no compression), so the corked
    // socket collects them and uncork sends them in one writev.
    this.#raw.cork();
    for (const payload of queued) this.#ws.send(payload, { binary: false });
    this.#raw.uncork();
  }

  close(code: CloseCode): void {
    if (this.#closing) return;
    this.flush();
    this.#closing = true;
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) {
      this.#ws.close(code, closeReasons[code]);
    }
    // A peer that never reads would hold the socket (and its buffer) until
    // ws's own 30 s close timeout; cut it sooner.
    setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS).unref();
  }
}
