// An Outlet that records what the core sends, for tests that drive the core
// with the in-memory store and broker and no sockets. Frames are decoded with
// the outlet's codec so tests assert on envelopes, not on text.
import type { Outlet } from "../../src/core/outlet.js";
import { jsonCodec, type Codec } from "../../src/protocol/codec.js";
import type { CloseCode } from "../../src/protocol/errors.js";
import type { Envelope } from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";

export class RecordingOutlet implements Outlet {
  readonly codec: Codec;
  readonly envelopes: Envelope[] = [];
  closedWith: CloseCode | undefined;
  /** Set by a test to simulate a peer that does not read; `drain()` clears it. */
  backlogged = false;
  readingPaused = false;
  #waiters: (() => void)[] = [];

  constructor(codec: Codec = jsonCodec) {
    this.codec = codec;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  send(payload: Uint8Array): boolean {
    if (this.closed) return false;
    this.envelopes.push(...this.codec.decode(payload));
    return true;
  }

  close(code: CloseCode): void {
    this.closedWith ??= code;
    this.drain();
  }

  drained(): Promise<void> {
    if (!this.backlogged || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Ends a simulated backlog, releasing whoever waits for it. */
  drain(): void {
    this.backlogged = false;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  pauseReading(): void {
    this.readingPaused = true;
  }

  resumeReading(): void {
    this.readingPaused = false;
  }

  /** The envelopes of one kind, in order. */
  kinds<K extends Kind>(kind: K): KindValue<K>[] {
    const out: KindValue<K>[] = [];
    for (const env of this.envelopes) {
      if (env.kind.case === kind) out.push(env.kind.value as KindValue<K>);
    }
    return out;
  }
}

type Kind = NonNullable<Envelope["kind"]["case"]>;
type KindValue<K extends Kind> =
  Extract<Envelope["kind"], { case: K }> extends { value: infer V } ? V : never;
