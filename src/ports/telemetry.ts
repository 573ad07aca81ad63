// The Telemetry port: what the core reports about itself (metrics) and how it
// runs a message inside a trace. src/observability/ implements it over
// prom-client and OpenTelemetry; `noTelemetry` does nothing, so the core (and
// its unit tests) never need either library.
//
// Guarantees an implementation keeps:
// - Every call is synchronous bookkeeping: no I/O, never throws.
// - `delivered` is called once per emitted message with the number of frames
//   written, never once per member: the fanout loop only adds to a local
//   integer (counting cost is measured in docs/benchmarks.md).
// - No call takes a room, user or member id for a metric label.
// - With tracing off, `publish` hands `fn` the message's own trace fields
//   unchanged and `deliver` just runs `fn`.
// - `publish` calls `fn` before it returns (not in a later turn), so the
//   store sees appends in the order publishes were made.

import type { IncomingMessage, ServerResponse } from "node:http";

/** How a resume attempt ended: the session came back, or its token was unknown or expired. */
/**
 * `resumed`; `expired`: the token resumes nothing (unknown, used, expired, or
 * another user's) and the client got a fresh session; `error`: the store
 * failed, so the handshake was refused (503) — the one a server owns.
 */
export type ResumeResult = "resumed" | "expired" | "error";

/** The W3C trace context a message carries. */
export interface TraceFields {
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

export interface CoreMetrics {
  /** A message was stored by this node (duplicates are not counted). */
  published(): void;
  /** `frames` message frames were written to sockets (live or replayed). */
  delivered(frames: number): void;
  /** A wire error with this code was sent to a client. */
  error(code: string): void;
  resume(result: ResumeResult): void;
  /** A join with `since` replayed this many messages. */
  replayed(messages: number): void;
  /** A room got its first local member (+1) or lost its last (-1). */
  rooms(delta: number): void;
  /** Starts timing one publish, frame in → ack out; call the result when the ack goes out. */
  publishTimer(): () => void;
}

export interface MessageTracing {
  /**
   * Runs one publish inside its span: a child of `msg.traceparent`, or a new
   * root. `fn` gets the trace fields to store and deliver with the message:
   * the publish span's traceparent and the original tracestate (with tracing
   * off, `msg`'s own fields). Store and broker calls made inside `fn` are
   * children of the span.
   */
  publish<T>(room: string, msg: TraceFields, fn: (trace: TraceFields) => Promise<T>): Promise<T>;
  /** Runs the local delivery of one message inside a span in the message's trace. */
  deliver(room: string, msg: TraceFields, remote: boolean, fn: () => void): void;
}

export interface Telemetry {
  readonly metrics: CoreMetrics;
  readonly tracing: MessageTracing;
}

/** Why an upgrade was shed: too many handshakes in progress, or the event loop late. */
export const ShedReason = {
  Pending: "handshakes",
  Lag: "event_loop_lag",
} as const;
export type ShedReason = (typeof ShedReason)[keyof typeof ShedReason];

/** What the gateway reports; one call per event, no logic at the call site. */
export interface GatewayTelemetry {
  /** Answers a request it owns (the metrics path, when not on its own port); false leaves it to the gateway. */
  serve(req: IncomingMessage, res: ServerResponse): boolean;
  /** Runs one upgrade (an HTTP server span when tracing is on); `status` says what it answered. */
  upgrade(
    req: IncomingMessage,
    run: () => Promise<void>,
    status: () => number | undefined,
  ): Promise<void>;
  connected(): void;
  /** A WebSocket closed with `code` (as the close event reports it). */
  disconnected(code: number): void;
  /** The outlet closed a slow consumer; `why` is "hard cap" or "not draining". */
  slowConsumer(why: string): void;
  /** An upgrade was shed (503 with Retry-After, gateway/shedding.ts). */
  shed(reason: ShedReason): void;
}

function nothing(): void {}

export const noMetrics: CoreMetrics = {
  published: nothing,
  delivered: nothing,
  error: nothing,
  resume: nothing,
  replayed: nothing,
  rooms: nothing,
  publishTimer: () => nothing,
};

export const noTracing: MessageTracing = {
  publish: (_room, msg, fn) => fn(msg),
  deliver: (_room, _msg, _remote, fn) => fn(),
};

export const noTelemetry: Telemetry = { metrics: noMetrics, tracing: noTracing };

export const noGatewayTelemetry: GatewayTelemetry = {
  serve: () => false,
  upgrade: (_req, run) => run(),
  connected: nothing,
  disconnected: nothing,
  slowConsumer: nothing,
  shed: nothing,
};
