// An in-process TCP proxy for fault injection: a free 127.0.0.1 port in front
// of one target (a store, a broker), through which a test adds latency, drops
// connections, refuses new ones, or hangs the link like a SIGSTOPped server.
// A stopped server is setMode("down") plus resetAll(): "down" alone leaves
// open connections working. "hang" holds bytes (nothing is lost) and passes
// them on at "up", as a SIGCONT would.
//
// Hand-written on node:net rather than Toxiproxy: the faults needed here are
// four, this is one file with no process to start, and a test switches modes
// synchronously between two of its own steps.
import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** Adds this much delay (ms) to every chunk in both directions (0: none); optional jitter. */
  setLatency(ms: number, jitterMs?: number): void;
  /** Drops (destroys) every open connection now. */
  resetAll(): void;
  /** "down": new connections are refused/reset at once; "hang": connections are accepted and existing ones kept, but no bytes pass (a SIGSTOP-like hang); "up": normal. */
  setMode(mode: "up" | "down" | "hang"): void;
  close(): Promise<void>;
}

export type ProxyMode = "up" | "down" | "hang";

/** Queued bytes per direction past which the proxy stops reading from the sender. */
const HIGH_WATER = 1 << 20;

/**
 * Ends `socket` with a TCP reset, or with a plain close when a reset is unsafe
 * or pointless. libuv refuses a reset while a shutdown is pending (EINVAL),
 * and Node 20's TCPWrap::Reset then marks the handle closing without ever
 * closing it: the handle stays in Node's handle queue, and the process, once
 * its loop is empty, spins in its exit cleanup (Environment::CleanupHandles)
 * waiting for it. So: a plain close once the socket has ended its writable
 * side, and also while it is still connecting (Node would defer the reset to
 * the connect, leaving the socket neither connected nor destroyed; nothing has
 * reached the peer yet, so there is nothing to reset).
 */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded || socket.connecting || socket.pending) socket.destroy();
  else socket.resetAndDestroy();
}

interface Timing {
  readonly latencyMs: number;
  readonly jitterMs: number;
  readonly flowing: boolean;
}

/**
 * One direction of one connection: chunks read from `from` wait until their
 * due time, first in first out (so jitter never reorders the byte stream),
 * then go to `to`. While the link hangs nothing is read or written:
 * the bytes wait in the kernel's buffers, as they would for a stopped process.
 */
class Pipe {
  readonly #from: Socket;
  readonly #to: Socket;
  readonly #timing: () => Timing;
  /** A null chunk is the sender's half-close, passed on after the bytes before it. */
  readonly #queue: { chunk: Buffer | null; due: number }[] = [];
  #queued = 0;
  #lastDue = 0;
  #timer: NodeJS.Timeout | undefined;
  #blocked = false;

  constructor(from: Socket, to: Socket, timing: () => Timing) {
    this.#from = from;
    this.#to = to;
    this.#timing = timing;
    from.on("data", (chunk: Buffer) => this.#push(chunk));
    from.on("end", () => this.#push(null));
    to.on("drain", () => {
      this.#blocked = false;
      this.update();
    });
  }

  #push(chunk: Buffer | null): void {
    const { latencyMs, jitterMs } = this.#timing();
    const due = Math.max(this.#lastDue, Date.now() + latencyMs + Math.random() * jitterMs);
    this.#lastDue = due;
    this.#queue.push({ chunk, due });
    this.#queued += chunk?.length ?? 0;
    this.update();
  }

  /** Passes on what is due, then pauses or resumes the sender and arms the timer. */
  update(): void {
    const { flowing } = this.#timing();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#to.destroyed) return;
    const now = Date.now();
    while (flowing && !this.#blocked && this.#queue.length > 0 && this.#queue[0]!.due <= now) {
      const { chunk } = this.#queue.shift()!;
      if (chunk === null) {
        this.#to.end();
      } else {
        this.#queued -= chunk.length;
        this.#blocked = !this.#to.write(chunk);
      }
    }
    if (flowing && !this.#blocked && this.#queued < HIGH_WATER) this.#from.resume();
    else this.#from.pause();
    const head = this.#queue[0];
    if (flowing && !this.#blocked && head !== undefined) {
      this.#timer = setTimeout(() => this.update(), Math.max(0, head.due - now));
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#queue.length = 0;
  }
}

interface Link {
  readonly pipes: Pipe[];
  /** Destroys both sides with a TCP reset. */
  readonly reset: () => void;
}

class Proxy implements TcpProxy {
  readonly host = "127.0.0.1";
  readonly port: number;
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #links = new Set<Link>();
  /** Every socket this proxy opened or accepted and that has not yet emitted "close". */
  readonly #sockets = new Set<Socket>();
  #closing = false;
  #mode: ProxyMode = "up";
  #latencyMs = 0;
  #jitterMs = 0;

  constructor(server: Server, port: number, target: { host: string; port: number }) {
    this.#server = server;
    this.port = port;
    this.#target = target;
    server.on("connection", (client: Socket) => this.#accept(client));
  }

  readonly #timing = (): Timing => ({
    latencyMs: this.#latencyMs,
    jitterMs: this.#jitterMs,
    flowing: this.#mode !== "hang",
  });

  /** Tracks `socket` until its handle is closed, so close() can wait for it. */
  #own(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
  }

  #accept(client: Socket): void {
    this.#own(client);
    if (this.#mode === "down" || this.#closing) {
      client.on("error", () => {});
      resetSocket(client);
      return;
    }
    // Both sides stay paused until their pipe lets them flow.
    const upstream = connect({
      host: this.#target.host,
      port: this.#target.port,
      allowHalfOpen: true,
    });
    this.#own(upstream);
    upstream.pause();
    const pipes: Pipe[] = [];
    const forget = (): boolean => {
      if (!this.#links.delete(link)) return false;
      for (const pipe of pipes) pipe.stop();
      return true;
    };
    const link: Link = {
      pipes,
      reset: () => {
        if (!forget()) return;
        resetSocket(client);
        resetSocket(upstream);
      },
    };
    this.#links.add(link);
    // An error on one side (a reset, a refused upstream) resets the other.
    client.on("error", link.reset);
    upstream.on("error", link.reset);
    // A clean close travels as a half-close through the pipes; the link is
    // done when both sides are closed.
    const closed = () => {
      if (client.destroyed && upstream.destroyed) forget();
    };
    client.on("close", closed);
    upstream.on("close", closed);
    upstream.once("connect", () => {
      if (!this.#links.has(link)) return;
      pipes.push(
        new Pipe(client, upstream, this.#timing),
        new Pipe(upstream, client, this.#timing),
      );
      for (const pipe of pipes) pipe.update();
    });
  }

  setLatency(ms: number, jitterMs = 0): void {
    if (!(ms >= 0 && jitterMs >= 0)) throw new RangeError("latency and jitter must be >= 0");
    this.#latencyMs = ms;
    this.#jitterMs = jitterMs;
  }

  resetAll(): void {
    for (const link of [...this.#links]) link.reset();
  }

  setMode(mode: ProxyMode): void {
    this.#mode = mode;
    for (const link of this.#links) for (const pipe of link.pipes) pipe.update();
  }

  /**
   * Stops listening, resets every connection (held and delayed bytes are
   * dropped, their timers cleared), and resolves once the server and every
   * socket it owns have closed their handles: nothing of the proxy's keeps the
   * process alive, or its exit cleanup waiting, after that.
   */
  async close(): Promise<void> {
    this.#closing = true;
    const listening = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.resetAll();
    const sockets = [...this.#sockets];
    for (const socket of sockets) resetSocket(socket);
    await Promise.all([
      listening,
      ...sockets.map((s) =>
        s.closed ? undefined : new Promise((resolve) => s.once("close", resolve)),
      ),
    ]);
  }
}

/** Starts a proxy on a free port of 127.0.0.1 in front of `target`: mode "up", no latency. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no port");
  return new Proxy(server, address.port, target);
}
