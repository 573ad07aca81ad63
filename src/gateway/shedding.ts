// Handshake shedding: when a node dies, its clients all reconnect to the
// others at once. Each handshake costs a token check and a session read from
// the store, so a few thousand arriving together would queue behind each
// other until they time out, starve the sockets already open, and come back
// again — a storm that feeds itself. Past a point the node says "not now,
// come back in N s" instead, cheaply (a few hundred bytes, no session read):
// HTTP 503 with `Retry-After`, before the upgrade, as every other refusal
// (HTTP.md: "503 draining, node full or store down").
// Two signals, both per node:
// - HANDSHAKE_MAX_PENDING: handshakes being handled at once (from the
//   upgrade request until the socket is open or refused). The store round
//   trip is the slow part; this caps the work in flight.
// - HANDSHAKE_MAX_LAG: event-loop lag. When the loop is already late, every
//   socket's traffic is; new ones wait.
// Retry-After is a random whole number of seconds in [1, HANDSHAKE_RETRY_AFTER],
// so the refused part of a storm comes back spread out, not as a second wave.

import { ShedReason } from "../ports/telemetry.js";

export interface SheddingOptions {
  /** HANDSHAKE_MAX_PENDING; 0 = unlimited. */
  readonly maxPending: number;
  /** HANDSHAKE_MAX_LAG in ms; 0 = not checked. */
  readonly maxLagMs: number;
  /** HANDSHAKE_RETRY_AFTER in ms: the largest Retry-After given. */
  readonly retryAfterMs: number;
  /** For tests; Math.random by default. */
  readonly random?: () => number;
}

export interface Shed {
  readonly reason: ShedReason;
  /** Whole seconds, at least 1. */
  readonly retryAfterS: number;
}

/** How often the lag is sampled. */
const LAG_TICK_MS = 50;

export class HandshakeShedding {
  readonly #opts: SheddingOptions;
  #pending = 0;
  readonly #sampler: NodeJS.Timeout | undefined;
  /** When the sampler last ran (performance.now()). */
  #lastTick = performance.now();
  /** How late the sampler's last tick was, in ms. */
  #lagMs = 0;

  constructor(opts: SheddingOptions) {
    this.#opts = opts;
    if (opts.maxLagMs > 0) {
      // A timer's lateness is the loop's lag. (perf_hooks'
      // monitorEventLoopDelay would do, but its histogram does not show a
      // stall still in progress, which is when a burst of upgrades arrives.)
      this.#sampler = setInterval(() => this.#sample(), LAG_TICK_MS);
      this.#sampler.unref();
    }
  }

  /** Handshakes being handled now. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Says whether one more handshake may start. When it may, the caller must
   * call `done` once it ended (upgraded or refused); otherwise the answer is
   * the refusal to send.
   */
  enter(): Shed | undefined {
    const { maxPending, maxLagMs } = this.#opts;
    if (maxPending > 0 && this.#pending >= maxPending) return this.#shed(ShedReason.Pending);
    if (maxLagMs > 0 && this.#currentLagMs() > maxLagMs) return this.#shed(ShedReason.Lag);
    this.#pending++;
    return undefined;
  }

  done(): void {
    this.#pending--;
  }

  close(): void {
    clearInterval(this.#sampler);
  }

  #shed(reason: ShedReason): Shed {
    const maxS = Math.max(1, Math.ceil(this.#opts.retryAfterMs / 1000));
    const random = this.#opts.random ?? Math.random;
    return { reason, retryAfterS: 1 + Math.floor(random() * maxS) };
  }

  #sample(): void {
    const now = performance.now();
    this.#lagMs = Math.max(0, now - this.#lastTick - LAG_TICK_MS);
    this.#lastTick = now;
  }

  /**
   * The worse of the last tick's lateness and the current turn's: a burst
   * of upgrades handled in one long turn sees the lag grow as it goes.
   */
  #currentLagMs(): number {
    const running = performance.now() - this.#lastTick - LAG_TICK_MS;
    return Math.max(this.#lagMs, running);
  }
}
