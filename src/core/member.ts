// One member per connection. Its inbound frames are handled one at a time in
// the order they arrived, so one publisher's messages get increasing offsets
// in its sending order.
import { create } from "@bufbuild/protobuf";
import { DecodeError, envelope } from "../protocol/codec.js";
import { CloseCode, ErrorCode, WireError } from "../protocol/errors.js";
import { ErrorSchema, type Envelope } from "../protocol/gen/roomcast/v1/envelope_pb.js";
import type { Logger } from "../observability/logging.js";
import type { Outlet } from "./outlet.js";
import type { Membership } from "./room.js";

/** What the member asks of its node; implemented by the Router. */
export interface MemberHost {
  handle(member: Member, env: Envelope): Promise<void>;
}

export interface MemberOptions {
  readonly badFrameLimit: number;
  readonly badFrameWindowMs: number;
  readonly log: Logger;
}

type Task = () => Promise<void>;

export class Member {
  readonly id: string;
  readonly userId: string;
  readonly outlet: Outlet;
  /** Joined rooms (including ones still catching up). */
  readonly rooms = new Map<string, Membership>();
  readonly #host: MemberHost;
  readonly #opts: MemberOptions;
  // Allocated on first use: most members are idle most of the time, and
  // per-connection memory is what limits how many a node holds.
  #tasks: Task[] | undefined;
  #running = false;
  #closed = false;
  #badFrames: number[] | undefined;

  constructor(id: string, userId: string, outlet: Outlet, host: MemberHost, opts: MemberOptions) {
    this.id = id;
    this.userId = userId;
    this.outlet = outlet;
    this.#host = host;
    this.#opts = opts;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Marks the member gone: queued frames are dropped. */
  markClosed(): void {
    this.#closed = true;
    this.#tasks = undefined;
  }

  send(env: Envelope): void {
    if (!this.#closed) this.outlet.send(this.outlet.codec.encode(env));
  }

  sendError(err: WireError): void {
    const value = create(ErrorSchema, { code: err.code, message: err.message });
    if (err.ref !== undefined) value.ref = err.ref;
    if (err.retryAfterMs !== undefined) value.retryAfterMs = err.retryAfterMs;
    this.send(envelope({ case: "error", value }));
  }

  /** Queues one inbound frame. */
  receive(frame: Uint8Array): void {
    this.enqueue(() => this.#handleFrame(frame));
  }

  /** Runs `task` after every frame and task queued before it. */
  enqueue(task: Task): void {
    if (this.#closed) return;
    (this.#tasks ??= []).push(task);
    if (!this.#running) void this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      for (let task = this.#tasks?.shift(); task !== undefined; task = this.#tasks?.shift()) {
        try {
          await task();
        } catch (err) {
          this.#fail(err);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #handleFrame(frame: Uint8Array): Promise<void> {
    let envelopes: Iterable<Envelope>;
    try {
      envelopes = this.outlet.codec.decode(frame);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.#fail(new WireError(ErrorCode.BadRequest, err.message));
      return;
    }
    for (const env of envelopes) {
      if (this.#closed) return;
      try {
        await this.#host.handle(this, env);
      } catch (err) {
        this.#fail(err);
      }
    }
  }

  #fail(err: unknown): void {
    if (this.#closed) return;
    if (!(err instanceof WireError)) {
      this.#opts.log.error({ err, member: this.id }, "unexpected error handling a frame");
      this.sendError(new WireError(ErrorCode.Internal));
      return;
    }
    this.sendError(err);
    if (isBadFrame(err.code)) this.#countBadFrame();
  }

  /** Repeated malformed frames close the socket with a policy violation. */
  #countBadFrame(): void {
    const now = Date.now();
    const since = now - this.#opts.badFrameWindowMs;
    this.#badFrames = (this.#badFrames ?? []).filter((t) => t > since);
    this.#badFrames.push(now);
    if (this.#badFrames.length >= this.#opts.badFrameLimit) {
      this.#opts.log.warn({ member: this.id }, "closing after repeated bad frames");
      this.outlet.close(CloseCode.PolicyViolation);
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
