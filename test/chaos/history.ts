// What a chaos run records, in the shape the checker reads: every publish
// attempt with its outcome, every room stream as one connection saw it, and
// the rooms' stored history read back from the store afterwards. Chaos peers
// fill it in; the checker's unit test crafts it by hand.

/** How one publish attempt (one `message` frame sent) ended. */
export type Outcome =
  | { readonly type: "acked"; readonly offset: number; readonly duplicate: boolean }
  /** An `error` frame whose ref is the message_id. */
  | { readonly type: "refused"; readonly code: string }
  /** The connection was lost before any answer. */
  | { readonly type: "unknown" };

export interface PublishOp {
  readonly peer: string;
  /** The peer's n-th connection, from 0. */
  readonly connection: number;
  readonly room: string;
  readonly messageId: string;
  /** Undefined while the answer is awaited. */
  outcome: Outcome | undefined;
}

/** One frame of one room on one connection, in arrival order. */
export type StreamEvent =
  | {
      readonly kind: "joined";
      readonly offset: number;
      readonly recovered: boolean;
      readonly epoch: string;
    }
  | { readonly kind: "message"; readonly offset: number; readonly messageId: string };

/** One room as one connection saw it. */
export interface Stream {
  readonly peer: string;
  readonly connection: number;
  readonly node: string;
  readonly room: string;
  /** The `session` frame's `resumed` (undefined when it never arrived). */
  readonly resumed: boolean | undefined;
  /** The highest offset of the room the peer had received before this connection. */
  readonly had: number | undefined;
  readonly events: readonly StreamEvent[];
  /**
   * The connection was still open when the run settled (every fault healed,
   * a last message published into each room): it must have reached the
   * room's head.
   */
  readonly settled: boolean;
}

export interface StoredRow {
  readonly offset: number;
  readonly messageId: string;
}

export interface History {
  readonly ops: readonly PublishOp[];
  readonly streams: readonly Stream[];
  /** Each room's stored messages in offset order, with its head. */
  readonly store: ReadonlyMap<
    string,
    { readonly head: number; readonly rows: readonly StoredRow[] }
  >;
}
