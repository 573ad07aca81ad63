// One member per connection. Its inbound frames are handled one at a time in
// the order they arrived, so one publisher's messages get increasing offsets
// in its sending order.
//
// Two rules keep one connection from hurting the node:
// - Once the connection is closing (a policy close, a slow consumer, a
//   takeover, or the peer), nothing more of what it sent is decoded or
//   applied: not the rest of the current frame, not the queued frames.
// - Its requests are processed only as fast as its replies drain: while its
//   outbound buffer is over the limit the member waits, and while frames
//   queue up it stops reading the socket. A pipelining client is slowed, not
//   dropped as a slow consumer for the replies to its own burst.
//
// Publishes are pipelined: the host checks a publish and hands it to the
// store in order (the store keeps its call order per room, ports/store.ts),
// then the member goes on with the next frame while the append commits, up
// to MAX_PIPELINED at once. A publisher waiting for each commit in turn
// capped a durable store at one append in flight per connection (3,754
// msg/s on PostgreSQL with 32 publishers, docs/benchmarks.md). Any other
// request (join, leave, refresh, a queued task) waits for the publishes
// before it, so it sees them as if they were handled one at a time; acks
// do not need to. Replies keep the order of the requests: the store settles
// appends in call order, and an error waits for the publishes before it.
import { create } from "@bufbuild/protobuf";
import { DecodeError, FrameTooLargeError, envelope } from "../protocol/codec.js";
import { CloseCode, ErrorCode, WireError } from "../protocol/errors.js";
import { ErrorSchema, type Envelope } from "../protocol/gen/roomcast/v1/envelope_pb.js";
import type { Logger } from "../observability/logging.js";
import { Grants, type Identity } from "./access.js";
import type { CoreMetrics } from "../ports/telemetry.js";
import type { Outlet } from "./outlet.js";
import { Seats } from "./seats.js";

/** A request the host started and that completes later (a publish being stored). */
export interface InFlight {
  /** Settles once the request is complete (the ack sent); rejects like `handle` would. */
  readonly done: Promise<void>;
}

/** What the member asks of its node; implemented by the Router. */
export interface MemberHost {
  /**
   * Handles one request. It may resolve with an InFlight once the request's
   * order is fixed (a publish handed to the store) but before it completes:
   * the member then handles later frames meanwhile.
   */
  handle(member: Member, env: Envelope): Promise<InFlight | undefined | void>;
}

export interface MemberOptions {
  readonly badFrameLimit: number;
  readonly badFrameWindowMs: number;
  /** rate_limited refusals within a minute that close with 1008 (RATE_LIMIT_CLOSE_AFTER); 0 = never. */
  readonly rateLimitCloseAfter: number;
  readonly log: Logger;
  readonly metrics?: CoreMetrics;
}

type Task = () => Promise<void>;

/**
 * Queued frames (or bytes) beyond which the member stops reading its socket.
 * Not lower: pausing and resuming the socket for every small burst of a busy
 * publisher cost the many-rooms benchmark up to 3x CPU per message in some
 * runs (16 frames); the byte bound keeps a hostile client's queue small.
 */
export const MAX_QUEUED_FRAMES = 256;
export const MAX_QUEUED_BYTES = 1024 * 1024;
/** Publishes of one connection being stored at once; the next frame waits for the oldest. */
export const MAX_PIPELINED = 32;
/** The window of RATE_LIMIT_CLOSE_AFTER. */
const RATE_LIMIT_WINDOW_MS = 60_000;
/** setTimeout's longest delay (about 24.8 days); a later expiry re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Member {
  readonly id: string;
  readonly userId: string;
  readonly outlet: Outlet;
  /** Joined rooms (including ones still catching up). */
  readonly rooms = new Seats();
  readonly #host: MemberHost;
  readonly #opts: MemberOptions;
  // Allocated on first use: most members are idle most of the time, and
  // per-connection memory is what limits how many a node holds.
  #tasks: Task[] | undefined;
  #running = false;
  #paused = false;
  #queuedBytes = 0;
  #detached = false;
  #badFrames: number[] | undefined;
  #refusals: number[] | undefined;
  /** The verified credential; undefined on anonymous connections. */
  #identity: Identity | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  /** Requests started but not complete (InFlight), and who waits for fewer. */
  #inFlight = 0;
  #waiter: { readonly below: number; readonly resolve: () => void } | undefined;

  constructor(
    id: string,
    userId: string,
    outlet: Outlet,
    host: MemberHost,
    opts: MemberOptions,
    identity?: Identity,
  ) {
    this.id = id;
    this.userId = userId;
    this.outlet = outlet;
    this.#host = host;
    this.#opts = opts;
    this.#identity = identity;
  }

  get identity(): Identity | undefined {
    return this.#identity;
  }

  /** What this connection may join and publish to (everything when anonymous). */
  get grants(): Grants {
    return this.#identity?.grants ?? Grants.all;
  }

  /**
   * Takes a (refreshed) credential and closes the connection with 4501 when
   * it expires, `skewMs` after its `exp`: one timer per connection.
   */
  authenticate(identity: Identity, skewMs: number): void {
    this.#identity = identity;
    clearTimeout(this.#expiryTimer);
    const arm = () => {
      const left = identity.expiresAt + skewMs - Date.now();
      if (left <= 0) {
        this.condemn(CloseCode.TokenExpired);
        return;
      }
      this.#expiryTimer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      this.#expiryTimer.unref();
    };
    arm();
  }

  /** Left its node: its rooms are left and its session saved (or handed over). */
  get detached(): boolean {
    return this.#detached;
  }

  /** Marks the member gone: queued frames are dropped. */
  markDetached(): void {
    this.#detached = true;
    this.#tasks = undefined;
    clearTimeout(this.#expiryTimer);
  }

  /** Neither detached nor closing: its frames are still applied. */
  get active(): boolean {
    return !this.#detached && !this.outlet.closed;
  }

  send(env: Envelope): void {
    if (!this.#detached) this.outlet.send(this.outlet.codec.encode(env));
  }

  sendError(err: WireError): void {
    const value = create(ErrorSchema, { code: err.code, message: err.message });
    if (err.ref !== undefined) value.ref = err.ref;
    if (err.retryAfterMs !== undefined) value.retryAfterMs = err.retryAfterMs;
    this.#opts.metrics?.error(err.code);
    this.send(envelope({ case: "error", value }));
  }

  /** Closes the connection; nothing it sent is applied any more. */
  condemn(code: CloseCode): void {
    this.#tasks = undefined;
    this.outlet.close(code);
  }

  /** Queues one inbound frame. */
  receive(frame: Uint8Array): void {
    this.#queuedBytes += frame.byteLength;
    this.#push(() => {
      this.#queuedBytes -= frame.byteLength;
      return this.#handleFrame(frame);
    });
    const queued = this.#tasks?.length ?? 0;
    if (
      !this.#paused &&
      queued > 0 &&
      (queued > MAX_QUEUED_FRAMES || this.#queuedBytes > MAX_QUEUED_BYTES)
    ) {
      this.#paused = true;
      this.outlet.pauseReading();
    }
  }

  /** Runs `task` after every frame and task queued before it (and their publishes). */
  enqueue(task: Task): void {
    this.#push(async () => {
      const wait = this.#settled(0);
      if (wait !== undefined) await wait;
      if (this.active) await task();
    });
  }

  #push(task: Task): void {
    if (!this.active) return;
    (this.#tasks ??= []).push(task);
    if (!this.#running) void this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      for (let task = this.#next(); task !== undefined; task = this.#next()) {
        try {
          await task();
        } catch (err) {
          this.#fail(err);
        }
      }
    } finally {
      this.#running = false;
      if (this.#paused) {
        this.#paused = false;
        if (this.active) this.outlet.resumeReading();
      }
    }
  }

  #next(): Task | undefined {
    if (!this.active) {
      this.#tasks = undefined;
      return undefined;
    }
    const tasks = this.#tasks;
    const task = tasks?.shift();
    // An idle member holds no queue: a burst grows the array, and thousands
    // of idle connections would each keep that capacity.
    if (tasks !== undefined && tasks.length === 0) this.#tasks = undefined;
    if (this.#paused && (this.#tasks?.length ?? 0) === 0) {
      this.#paused = false;
      this.outlet.resumeReading();
    }
    return task;
  }

  async #handleFrame(frame: Uint8Array): Promise<void> {
    try {
      for (const env of this.outlet.codec.decode(frame)) {
        if (this.outlet.backlogged) await this.outlet.drained();
        // A publish waits only for room in the pipeline, an ack for nothing,
        // anything else for every publish before it.
        const kind = env.kind.case;
        if (kind !== "ack") {
          const wait = this.#settled(kind === "message" ? MAX_PIPELINED - 1 : 0);
          if (wait !== undefined) await wait;
        }
        if (!this.active) return;
        try {
          const started = await this.#host.handle(this, env);
          if (started !== undefined) this.#track(started.done);
        } catch (err) {
          await this.#settled(0);
          this.#fail(err);
        }
        if (!this.active) return;
      }
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        // Only a hostile client packs that many envelopes into one frame.
        this.#opts.log.warn({ member: this.id }, "closing: too many envelopes in one frame");
        this.condemn(CloseCode.PolicyViolation);
        return;
      }
      if (!(err instanceof DecodeError)) throw err;
      // A malformed frame (or the malformed rest of one): what came before it
      // in the frame was applied; the rest is dropped.
      await this.#settled(0);
      this.#fail(new WireError(ErrorCode.BadRequest, err.message));
    }
  }

  #track(done: Promise<void>): void {
    this.#inFlight++;
    done.then(
      () => this.#complete(),
      (err: unknown) => {
        this.#fail(err);
        this.#complete();
      },
    );
  }

  #complete(): void {
    this.#inFlight--;
    const waiter = this.#waiter;
    if (waiter !== undefined && this.#inFlight <= waiter.below) {
      this.#waiter = undefined;
      waiter.resolve();
    }
  }

  /** Resolves once at most `most` requests are in flight (at once when already so). */
  #settled(most: number): Promise<void> | undefined {
    if (this.#inFlight <= most) return undefined;
    return new Promise((resolve) => (this.#waiter = { below: most, resolve }));
  }

  #fail(err: unknown): void {
    if (!this.active) return;
    if (!(err instanceof WireError)) {
      this.#opts.log.error({ err, member: this.id }, "unexpected error handling a frame");
      this.sendError(new WireError(ErrorCode.Internal));
      return;
    }
    this.sendError(err);
    if (isBadFrame(err.code)) this.#countBadFrame();
    else if (err.code === ErrorCode.RateLimited) this.#countRefusal();
  }

  /** A client that keeps flooding after being told is closed with 1008. */
  #countRefusal(): void {
    const limit = this.#opts.rateLimitCloseAfter;
    if (limit === 0) return;
    const now = Date.now();
    // At most `limit` entries: the close below ends the counting.
    const recent = (this.#refusals ?? []).filter((t) => t > now - RATE_LIMIT_WINDOW_MS);
    recent.push(now);
    this.#refusals = recent;
    if (recent.length >= limit) {
      this.#opts.log.warn({ member: this.id }, "closing: kept exceeding rate limits");
      this.condemn(CloseCode.PolicyViolation);
    }
  }

  /** Repeated malformed frames close the socket with a policy violation. */
  #countBadFrame(): void {
    const now = Date.now();
    const since = now - this.#opts.badFrameWindowMs;
    // At most `badFrameLimit` entries: the close below ends the counting.
    const recent = (this.#badFrames ?? []).filter((t) => t > since);
    recent.push(now);
    this.#badFrames = recent;
    if (recent.length >= this.#opts.badFrameLimit) {
      this.#opts.log.warn({ member: this.id }, "closing after repeated bad frames");
      this.condemn(CloseCode.PolicyViolation);
    }
  }
}

function isBadFrame(code: ErrorCode): boolean {
  return (
    code === ErrorCode.BadRequest ||
    code === ErrorCode.UnknownType ||
    code === ErrorCode.InvalidRoom
  );
}
