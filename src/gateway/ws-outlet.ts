// An Outlet over one `ws` WebSocket. Frames are built once per payload and
// shared: a room sends the same payload to every member, so a small cache
// turns N framings into one. Writes are coalesced per event-loop turn: frames
// queue per socket and leave in one write after the turn (copied into one
// buffer when small, else one corked writev).
// Except a cold socket's: one that was sent nothing in the previous turn
// gets what it is sent while the current callback runs (a publish's ack and
// its delivery, say) written as soon as that callback's work is done
// (process.nextTick), not after the whole turn. Holding it would save no
// write (a socket that receives one burst per turn costs one write either
// way) but would make it wait for the rest of the turn: in many small rooms
// a turn that reads a burst of publishes held every delivery until the last
// was handled, through any garbage-collection step in between, and the
// queues that lived through the turn were promoted to the old generation.
// A hot socket (frames in the previous turn too, as every member of a busy
// room) keeps one write per turn, so fanout coalesces as before. Measured
// (many rooms, 11 runs of each build, docs/benchmarks.md): median p99 at
// half load 14.0 against 30.9 ms, at 30,000 msg/s 24.3 against 64.2; CPU
// per message the same at saturation, 9 % more at half load.
// Frames go straight to the TCP socket; that is safe because `ws` writes its
// own frames (pings, close) synchronously and whole (no compression here),
// so frames never interleave mid-frame.
//
// A slow consumer is one that does not drain, not one that got a burst: a
// room can hand every member a few MiB in one turn (a group commit of large
// messages), which a healthy reader drains in milliseconds. So a socket is
// closed with 4000 only when its backlog stays above the limit for longer
// than the grace period, or grows past the hard cap (HARD_CAP_FACTOR times
// the limit) at once.
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import type { Codec } from "../protocol/codec.js";
import { CloseCode, closeReasons } from "../protocol/errors.js";
import type { Outlet } from "../core/outlet.js";
import type { Logger } from "../observability/logging.js";
import { Opcode, buildFrame } from "./frame.js";

/** How long a closing socket may take to finish its close handshake. */
const CLOSE_GRACE_MS = 5000;
/** A turn's frames for one socket up to this size are copied into one write. */
const COPY_BELOW_BYTES = 16 * 1024;
/** The hard cap on one socket's backlog, as a multiple of MAX_BUFFERED_BYTES. */
export const HARD_CAP_FACTOR = 16;

export interface OutletLimits {
  /** Backlog above which the socket counts as backlogged (MAX_BUFFERED_BYTES). */
  readonly maxBufferedBytes: number;
  /** How long it may stay backlogged before it is a slow consumer. */
  readonly slowConsumerGraceMs: number;
  /** Hears each slow-consumer close ("hard cap" or "not draining"), for metrics. */
  readonly onSlowConsumer?: (why: string) => void;
}

const toFlush: WsOutlet[] = [];
let flushScheduled = false;
/** Counts the turns that sent something; a socket is cold when it sat out the last one. */
let turn = 0;

function flushAll(): void {
  flushScheduled = false;
  turn++;
  const list = toFlush.splice(0);
  for (const outlet of list) outlet.flush();
}

/** Cold sockets sent something in the current callback: written when it is done. */
const toWriteEarly: WsOutlet[] = [];
let earlyScheduled = false;

function writeEarly(): void {
  earlyScheduled = false;
  const list = toWriteEarly.splice(0);
  for (const outlet of list) outlet.writeQueued();
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

interface Backlog {
  readonly timer: NodeJS.Timeout;
  readonly drained: Promise<void>;
  readonly resolve: () => void;
}

export class WsOutlet implements Outlet {
  readonly codec: Codec;
  readonly #ws: WebSocket;
  readonly #raw: Duplex;
  readonly #limits: OutletLimits;
  readonly #log: Logger;
  readonly #memberId: string;
  #queued: Buffer[] | undefined;
  #queuedBytes = 0;
  #scheduled = false;
  /** The turn this socket was last sent a frame in. */
  #lastTurn = -2;
  #closing = false;
  /** While backlogged: the grace timer and whoever waits for the drain. */
  #backlog: Backlog | undefined;

  constructor(
    ws: WebSocket,
    raw: Duplex,
    codec: Codec,
    limits: OutletLimits,
    log: Logger,
    memberId: string,
  ) {
    this.#ws = ws;
    this.#raw = raw;
    this.codec = codec;
    this.#limits = limits;
    this.#log = log;
    this.#memberId = memberId;
  }

  get closed(): boolean {
    // readyState leaves OPEN as soon as the peer's close frame arrives.
    return this.#closing || this.#ws.readyState !== this.#ws.OPEN;
  }

  #pendingBytes(): number {
    return this.#raw.writableLength + this.#queuedBytes;
  }

  get backlogged(): boolean {
    return this.#pendingBytes() > this.#limits.maxBufferedBytes;
  }

  drained(): Promise<void> {
    if (this.closed || !this.backlogged) return Promise.resolve();
    return this.#watchBacklog().drained;
  }

  pauseReading(): void {
    this.#ws.pause();
  }

  resumeReading(): void {
    this.#ws.resume();
  }

  send(payload: Uint8Array): boolean {
    if (this.closed) return false;
    const frame = frameOf(this.codec.binary, payload);
    const pending = this.#pendingBytes() + frame.length;
    if (pending > this.#limits.maxBufferedBytes) {
      if (pending > this.#limits.maxBufferedBytes * HARD_CAP_FACTOR) {
        this.#slowConsumer("hard cap");
        return false;
      }
      this.#watchBacklog();
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      toFlush.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
      const cold = this.#lastTurn < turn - 1;
      this.#lastTurn = turn;
      if (cold && this.#mayWriteEarly()) {
        toWriteEarly.push(this);
        if (!earlyScheduled) {
          earlyScheduled = true;
          process.nextTick(writeEarly);
        }
      }
    }
    (this.#queued ??= []).push(frame);
    this.#queuedBytes += frame.length;
    return true;
  }

  /** Whether a cold socket's frames may go out early: nothing waits before them in Node. */
  #mayWriteEarly(): boolean {
    // A socket that ends meanwhile is skipped by writeQueued, as by flush.
    return this.#raw.writableLength === 0 && this.#backlog === undefined;
  }

  /** Arms the grace timer (once per backlog) and the drain watch. */
  #watchBacklog(): Backlog {
    if (this.#backlog !== undefined) return this.#backlog;
    let resolve!: () => void;
    const drained = new Promise<void>((r) => (resolve = r));
    const timer = setTimeout(() => {
      if (this.backlogged) this.#slowConsumer("not draining");
      else this.#endBacklog();
    }, this.#limits.slowConsumerGraceMs);
    timer.unref();
    this.#backlog = { timer, drained, resolve };
    // 'drain' fires once the socket's buffer is empty again.
    this.#raw.once("drain", () => this.#endBacklog());
    return this.#backlog;
  }

  #endBacklog(): void {
    const backlog = this.#backlog;
    if (backlog === undefined) return;
    if (this.backlogged && !this.closed) {
      // Refilled before the drain was seen: keep waiting, same grace.
      this.#raw.once("drain", () => this.#endBacklog());
      return;
    }
    this.#backlog = undefined;
    clearTimeout(backlog.timer);
    backlog.resolve();
  }

  #slowConsumer(why: string): void {
    // A reader that cannot keep up is cut off instead of slowing its rooms.
    this.#log.info({ member: this.#memberId, why }, "closing slow consumer");
    this.#limits.onSlowConsumer?.(why);
    this.close(CloseCode.SlowConsumer);
  }

  /** Writes what this turn queued, in one syscall where the kernel allows. */
  flush(): void {
    this.#scheduled = false;
    this.writeQueued();
  }

  /** Writes what is queued now; the socket stays scheduled for the end of the turn. */
  writeQueued(): void {
    const queued = this.#queued;
    if (queued === undefined || queued.length === 0) return;
    const bytes = this.#queuedBytes;
    this.#queued = undefined;
    this.#queuedBytes = 0;
    // Once `ws` has sent a close frame (its own 1007/1009, or answering the
    // peer's), nothing may follow it on the wire: the peer would see data
    // after the close and drop the connection (1006) instead of the close.
    if (this.#raw.destroyed || this.#raw.writableEnded) return;
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    if (queued.length === 1) {
      this.#raw.write(queued[0]!);
    } else if (bytes <= COPY_BELOW_BYTES) {
      // A few small frames cost less copied into one buffer than as a writev.
      this.#raw.write(Buffer.concat(queued, bytes));
    } else {
      this.#raw.cork();
      for (const frame of queued) this.#raw.write(frame);
      this.#raw.uncork();
    }
    // Below the socket's own high-water mark no 'drain' follows.
    if (this.#backlog !== undefined && !this.backlogged) this.#endBacklog();
  }

  close(code: CloseCode): void {
    if (this.#closing) return;
    this.flush();
    this.#closing = true;
    if (this.#backlog !== undefined) {
      clearTimeout(this.#backlog.timer);
      this.#backlog.resolve();
      this.#backlog = undefined;
    }
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) {
      this.#ws.close(code, closeReasons[code]);
    }
    // A peer that never reads would hold the socket (and its buffer) until
    // ws's own 30 s close timeout; cut it sooner.
    setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS).unref();
  }
}
