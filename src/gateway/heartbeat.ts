// One sweep for all connections instead of timers per socket: pings every
// `pingIntervalMs`, closes a socket whose pong is `pongTimeoutMs` late, and
// one that sent no frame within `firstFrameTimeoutMs` (0 disables). It walks
// the gateway's own set of connections rather than a second set of them:
// one entry less per connection (docs/benchmarks.md, "The heap per idle
// connection, by kind"); a connection already closing is skipped.
//
// Its clock is monotonic (milliseconds since the process started): a step of
// the wall clock (NTP, a suspended VM) would otherwise make every outstanding
// ping look overdue at once and close every connection in one sweep, or hold
// off the pings. Whole milliseconds also keep a connection's times small
// integers, which V8 keeps in the object; `Date.now()` values are boxed, 16
// bytes of heap per field per connection.
import { CloseCode } from "../protocol/errors.js";

/** The heartbeat's clock: whole milliseconds since the process started. */
export function monotonicMs(): number {
  return Math.floor(performance.now());
}

export interface Beating {
  /** When the last ping went out (0 = none outstanding), on `monotonicMs()`. */
  pingSentAt: number;
  lastPingAt: number;
  readonly openedAt: number;
  sawFrame: boolean;
  /** Closing or closed: neither pinged nor closed again. */
  readonly closed: boolean;
  ping(): void;
  close(code: CloseCode): void;
}

export interface HeartbeatOptions {
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  readonly firstFrameTimeoutMs: number;
  /** Uniform in [0, 1); Math.random unless a test fixes it. */
  readonly random?: () => number;
}

export class Heartbeat {
  readonly #opts: HeartbeatOptions;
  readonly #conns: Iterable<Beating>;
  readonly #timer: NodeJS.Timeout;

  /** `conns`: the open connections, kept by the caller (add() each one as it opens). */
  constructor(opts: HeartbeatOptions, conns: Iterable<Beating>) {
    this.#opts = opts;
    this.#conns = conns;
    const smallest = Math.min(
      opts.pingIntervalMs,
      opts.pongTimeoutMs,
      opts.firstFrameTimeoutMs > 0 ? opts.firstFrameTimeoutMs : Infinity,
    );
    const tick = Math.max(20, Math.min(1000, Math.floor(smallest / 4)));
    this.#timer = setInterval(() => this.sweep(), tick);
    this.#timer.unref();
  }

  /**
   * Starts beating for `conn`, which the caller has put in its set. Its
   * first ping comes at a random point of the first interval, not a whole
   * interval after it opened: connections opened together (a reconnect storm
   * after a deploy, a load test) would otherwise be pinged in the same sweep
   * every interval, thousands of pings and pongs in one event-loop turn
   * (measured: delays up to ~100 ms with 10,000 sockets).
   */
  add(conn: Beating): void {
    const random = this.#opts.random ?? Math.random;
    conn.lastPingAt = monotonicMs() - Math.floor(random() * this.#opts.pingIntervalMs);
  }

  /** Pings, and closes the silent; the timer calls it every tick (public for tests). */
  sweep(now = monotonicMs()): void {
    const { pingIntervalMs, pongTimeoutMs, firstFrameTimeoutMs } = this.#opts;
    for (const c of this.#conns) {
      if (c.closed) continue;
      if (c.pingSentAt > 0 && now - c.pingSentAt >= pongTimeoutMs) {
        c.close(CloseCode.HeartbeatTimeout);
      } else if (
        firstFrameTimeoutMs > 0 &&
        !c.sawFrame &&
        now - c.openedAt >= firstFrameTimeoutMs
      ) {
        c.close(CloseCode.FirstFrameTimeout);
      } else if (c.pingSentAt === 0 && now - c.lastPingAt >= pingIntervalMs) {
        c.pingSentAt = now;
        c.lastPingAt = now;
        c.ping();
      }
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
