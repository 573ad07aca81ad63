// Broker over Redis pub/sub. Two connections per node: one publishes, one sits
// in subscriber mode (Redis allows nothing else on it). Classic PUBLISH /
// SUBSCRIBE by default; sharded SPUBLISH / SSUBSCRIBE (Redis 7+) with
// `sharded`, which spreads channels over a Redis Cluster's shards instead of
// broadcasting every message to every node of the cluster. Channel names are
// the same as the NATS subjects: <prefix>.room.<encoded id>, <prefix>.control.
//
// With `cluster`, both connections are ioredis Cluster clients seeded from the
// comma-separated URLs: they follow slot moves and failovers by themselves.
// A Cluster always uses sharded pub/sub: ioredis sends a keyless PUBLISH to a
// random node each time, and the cluster bus then forwards it, so two
// publishes of one room could arrive out of order (the contract suite saw it);
// SPUBLISH goes to the shard that owns the channel, where SSUBSCRIBE listens
// (ioredis `shardedSubscribers`: one subscriber connection per shard), and
// keeps each room's traffic on that shard instead of every node.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import type { BrokerCapabilities } from "../../ports/broker.js";
import { silentLogger, type Logger } from "../../observability/logging.js";
import { BrokerBase, type Detach } from "./broker-base.js";
import { BrokerError, BrokerErrorCode } from "./broker-error.js";

export interface RedisBrokerOptions {
  /** Server URL, e.g. redis://127.0.0.1:6379; with `cluster`, seed nodes comma-separated. */
  readonly url: string;
  /** Talk to a Redis Cluster (ioredis.Cluster, always sharded pub/sub) instead of one server. Default false. */
  readonly cluster?: boolean;
  /** Channel prefix. Default "roomcast". */
  readonly prefix?: string;
  /** Use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+). Default false. */
  readonly sharded?: boolean;
  readonly log?: Logger;
  /** First reconnect wait; doubles per failed attempt, with jitter. Default 100 ms. */
  readonly reconnectMinMs?: number;
  /** Longest reconnect wait. Default 5000 ms. */
  readonly reconnectMaxMs?: number;
}

type Connection = Redis | Cluster;

/** Seed nodes of a Cluster: host and port of each comma-separated redis:// URL. */
function clusterSeeds(urls: string): { host: string; port: number }[] {
  return urls
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u.length > 0)
    .map((u) => {
      const url = new URL(u);
      return { host: url.hostname, port: Number(url.port === "" ? 6379 : url.port) };
    });
}

export class RedisBroker extends BrokerBase {
  readonly capabilities: BrokerCapabilities = { distributed: true };
  readonly #options: RedisBrokerOptions;
  readonly #sharded: boolean;
  #pub: Connection | undefined;
  #sub: Connection | undefined;

  constructor(options: RedisBrokerOptions) {
    super({
      name: "Redis",
      prefix: options.prefix,
      log: (options.log ?? silentLogger()).child({ component: "broker", broker: "redis" }),
      connected: false,
    });
    this.#options = options;
    this.#sharded = (options.sharded ?? false) || options.cluster === true;
  }

  async open(): Promise<void> {
    this.checkFirstOpen();
    const min = this.#options.reconnectMinMs ?? 100;
    const max = this.#options.reconnectMaxMs ?? 5000;
    const common: RedisOptions = {
      lazyConnect: true,
      // Reconnect forever with capped exponential backoff and jitter, so a
      // fleet of nodes does not hammer a restarting Redis in lockstep.
      retryStrategy: (attempt) => {
        const cap = Math.min(max, min * 2 ** Math.min(attempt - 1, 20));
        return Math.round(cap / 2 + (Math.random() * cap) / 2);
      },
    };
    // At most once: a publish fails fast while disconnected and is never
    // re-sent after a reconnect (a re-send could deliver it twice).
    const pubOptions: RedisOptions = {
      ...common,
      connectionName: "roomcast-pub",
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    };
    // Subscriptions outlive reconnects: ioredis re-sends SUBSCRIBE and
    // SSUBSCRIBE for every channel on reconnect (5.x does both), and a
    // subscribe issued while disconnected waits for the connection.
    const subOptions: RedisOptions = {
      ...common,
      connectionName: "roomcast-sub",
      autoResubscribe: true,
      maxRetriesPerRequest: null,
    };
    const pub = this.#connect(pubOptions, false);
    const sub = this.#connect(subOptions, true);
    this.#pub = pub;
    this.#sub = sub;
    for (const [role, conn] of [
      ["pub", pub],
      ["sub", sub],
    ] as const) {
      // A Cluster also reports each node's own failures; the Cluster's state is what counts.
      conn.on("node error", (err: Error) =>
        this.log.debug({ err, role }, "Redis Cluster node error"),
      );
      // Every failed reconnect attempt emits an error; the state change itself is logged once.
      conn.on("error", (err: Error) => this.log.debug({ err, role }, "Redis connection error"));
      for (const event of ["ready", "close", "end", "reconnecting"]) {
        conn.on(event, () => this.#refresh());
      }
    }
    sub.on(this.#sharded ? "smessageBuffer" : "messageBuffer", (channel: Buffer, message: Buffer) =>
      this.deliver(channel.toString("latin1"), message),
    );
    try {
      await Promise.all([pub.connect(), sub.connect()]);
    } catch (err) {
      this.#pub = undefined;
      this.#sub = undefined;
      pub.disconnect();
      sub.disconnect();
      throw new BrokerError(BrokerErrorCode.ConnectFailed, "cannot connect to Redis", {
        cause: err,
      });
    }
    // Nothing is subscribed yet, so there is nothing to wait for.
    this.setConnected(pub.status === "ready" && sub.status === "ready");
  }

  /** From the start of open(): a subscribe made while connecting waits for the connection. */
  protected get opened(): boolean {
    return this.#pub !== undefined && this.#sub !== undefined;
  }

  protected async send(subject: string, payload: Uint8Array): Promise<void> {
    const pub = this.#connections().pub;
    // A Buffer view of the caller's bytes, no copy: ioredis writes it to the socket before resolving.
    const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    if (this.#sharded) await pub.spublish(subject, bytes);
    else await pub.publish(subject, bytes);
  }

  protected async release(): Promise<void> {
    const conns = [this.#pub, this.#sub].filter((c): c is Connection => c !== undefined);
    this.#pub = undefined;
    this.#sub = undefined;
    await Promise.all(conns.map(closeConnection));
  }

  protected async attach(subject: string): Promise<Detach> {
    const sub = this.#connections().sub;
    // The reply to (S)SUBSCRIBE means the server has registered the interest.
    if (this.#sharded) await sub.ssubscribe(subject);
    else await sub.subscribe(subject);
    return async () => {
      const unsubscribed = this.#sharded ? sub.sunsubscribe(subject) : sub.unsubscribe(subject);
      if (sub.status !== "ready") {
        // Disconnected: the server holds no interest now, and ioredis sends the
        // queued unsubscribe after its resubscribe on reconnect, so the end
        // state is right without waiting for the reconnect here.
        unsubscribed.catch((err: unknown) =>
          this.log.debug({ err, subject }, "queued Redis unsubscribe failed"),
        );
        return;
      }
      await unsubscribed;
    };
  }

  /** One server, or a Cluster seeded from the comma-separated URLs. */
  #connect(options: RedisOptions, subscriber: boolean): Connection {
    if (this.#options.cluster !== true) return new Redis(this.#options.url, options);
    const { retryStrategy, lazyConnect, maxRetriesPerRequest, ...rest } = options;
    // The offline queue stays on for a Cluster, publisher included: with it
    // off, ioredis.Cluster re-routes the publishes that reach a shard whose
    // connection is still opening, and they overtake later ones (seen here:
    // a few inversions in 2000 back-to-back publishes). At most once still
    // holds: BrokerBase refuses publishes while the broker is disconnected,
    // and a late one is dropped by offset at the receiver.
    const node: RedisOptions = { ...rest, enableOfflineQueue: true };
    const cluster: ClusterOptions = {
      lazyConnect,
      enableOfflineQueue: true,
      redisOptions: node,
      clusterRetryStrategy: (attempt) => retryStrategy?.(attempt) ?? null,
      ...(maxRetriesPerRequest !== undefined && { maxRetriesPerRequest }),
      // ssubscribe goes to a subscriber connection on the shard owning the channel.
      ...(subscriber && this.#sharded && { shardedSubscribers: true }),
    };
    return new Cluster(clusterSeeds(this.#options.url), cluster);
  }

  #connections(): { pub: Connection; sub: Connection } {
    if (this.#pub === undefined || this.#sub === undefined) {
      throw new BrokerError(BrokerErrorCode.NotOpen, "broker is not open");
    }
    return { pub: this.#pub, sub: this.#sub };
  }

  #refresh(): void {
    if (this.closed || this.#pub === undefined || this.#sub === undefined) return;
    const { pub, sub } = { pub: this.#pub, sub: this.#sub };
    const ready = () => pub.status === "ready" && sub.status === "ready";
    if (!ready()) {
      if (this.connected) this.log.warn("Redis disconnected; reconnecting");
      this.setConnected(false);
      return;
    }
    if (this.connected) return;
    // ioredis emits "ready" just before it re-sends the subscriptions. A PING
    // queued behind them (next turn) is answered only once Redis has them, so
    // "connected" means new publishes reach us and the router's catch-up
    // misses nothing.
    setImmediate(() => {
      sub.ping().then(
        () => this.setConnected(ready()),
        (err: unknown) => this.log.debug({ err }, "Redis ping after reconnect failed"),
      );
    });
  }
}

/** Ends a connection cleanly when it is up (QUIT), at once when it is not. */
async function closeConnection(conn: Connection): Promise<void> {
  if (conn.status === "end") return;
  const ended = new Promise<void>((resolve) => conn.once("end", () => resolve()));
  if (conn.status === "ready") {
    try {
      await conn.quit();
    } catch {
      conn.disconnect();
    }
  } else {
    conn.disconnect();
  }
  await ended;
}
