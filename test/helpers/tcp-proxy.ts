// An in-process TCP proxy for fault injection: a free 127.0.0.1 port in front
// of one target (a store, a broker), through which a test adds latency, drops
// connections, refuses new ones, or hangs the link like a SIGSTOPped server.
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

  #accept(client: Socket): void {
    if (this.#mode === "down") {
      client.on("error", () => {});
      client.resetAndDestroy();
      return;
    }
    // Both sides stay paused until their pipe lets them flow.
    const upstream = connect({
      host: this.#target.host,
      port: this.#target.port,
      allowHalfOpen: true,
    });
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
        client.resetAndDestroy();
        upstream.resetAndDestroy();
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

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.resetAll();
    await closed;
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
