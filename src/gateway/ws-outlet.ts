// An Outlet over one `ws` WebSocket. Frames are built once per payload and
// shared: a room sends the same payload to every member, so a small cache
// turns N framings into one. Writes are coalesced per event-loop turn: frames
// queue per socket and leave in one corked writev after the turn.
// Frames go straight to the TCP socket; that is safe because `ws` writes its
// own frames (pings, close) synchronously and whole (no compression here),
// so frames never interleave mid-frame.
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import type { Codec } from "../protocol/codec.js";
import { CloseCode, closeReasons } from "../protocol/errors.js";
import type { Outlet } from "../core/outlet.js";
import type { Logger } from "../observability/logging.js";
import { Opcode, buildFrame } from "./frame.js";

/** How long a closing socket may take to finish its close handshake. */
const CLOSE_GRACE_MS = 5000;

const pending: WsOutlet[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  const list = pending.splice(0);
  for (const outlet of list) outlet.flush();
}

/** The last payload framed per opcode: a room's fanout hits it for every member after the first. */
const lastFramed: { payload: Uint8Array | undefined; frame: Buffer }[] = [
  { payload: undefined, frame: Buffer.alloc(0) },
  { payload: undefined, frame: Buffer.alloc(0) },
];

function frameOf(binary: boolean, payload: Uint8Array): Buffer {
  const slot = lastFramed[binary ? 1 : 0]!;
  if (slot.payload !== payload) {
    slot.frame = buildFrame(binary ? Opcode.Binary : Opcode.Text, payload);
    slot.payload = payload;
  }
  return slot.frame;
}

export class WsOutlet implements Outlet {
  readonly codec: Codec;
  readonly #ws: WebSocket;
  readonly #raw: Duplex;
  readonly #maxBuffered: number;
  readonly #log: Logger;
  readonly #memberId: string;
  #queued: Buffer[] | undefined;
  #queuedBytes = 0;
  #scheduled = false;
  #closing = false;

  constructor(
    ws: WebSocket,
    raw: Duplex,
    codec: Codec,
    maxBuffered: number,
    log: Logger,
    memberId: string,
  ) {
    this.#ws = ws;
    this.#raw = raw;
    this.codec = codec;
    this.#maxBuffered = maxBuffered;
    this.#log = log;
    this.#memberId = memberId;
  }

  send(payload: Uint8Array): boolean {
    // readyState leaves OPEN as soon as the peer's close frame arrives.
    if (this.#closing || this.#ws.readyState !== this.#ws.OPEN) return false;
    const frame = frameOf(this.codec.binary, payload);
    if (this.#ws.bufferedAmount + this.#queuedBytes + frame.length > this.#maxBuffered) {
      // A reader that cannot keep up is cut off instead of slowing its rooms.
      this.#log.info({ member: this.#memberId }, "closing slow consumer");
      this.close(CloseCode.SlowConsumer);
      return false;
    }
    (this.#queued ??= []).push(frame);
    this.#queuedBytes += frame.length;
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

  /** Writes what this turn queued, in one syscall where the kernel allows. */
  flush(): void {
    this.#scheduled = false;
    const queued = this.#queued;
    if (queued === undefined || queued.length === 0) return;
    this.#queued = undefined;
    this.#queuedBytes = 0;
    if (this.#raw.destroyed) return;
    if (queued.length === 1) {
      this.#raw.write(queued[0]!);
      return;
    }
    this.#raw.cork();
    for (const frame of queued) this.#raw.write(frame);
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
