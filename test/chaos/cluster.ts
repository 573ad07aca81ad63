// A three-node Roomcast cluster for chaos runs: real server processes on one
// broker (its private server from the harness) and a private PostgreSQL, each
// node in a slot that keeps its name across kills and restarts. With
// `proxied`, each node reaches its broker and its store through a TCP proxy
// of its own (test/helpers/tcp-proxy.ts), so a nemesis can slow down, cut or
// hang one node's links without touching the others.
import type { BrokerServer } from "../helpers/brokers.js";
import type { PostgresServer } from "../helpers/postgres.js";
import { RATE_LIMITS_OFF, startServer, type ServerProcess } from "../helpers/server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import type { LiveNode } from "./chaos-peer.js";

export interface BrokerKind {
  readonly name: string;
  start(): Promise<BrokerServer>;
  env(url: string): Record<string, string>;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export type Dependency = "broker" | "store";

export interface ClusterOptions {
  readonly broker: BrokerKind;
  readonly postgres: PostgresServer;
  /** Goes into the database's name. */
  readonly name: string;
  readonly nodes?: number;
  /** Extra node settings. */
  readonly env?: Readonly<Record<string, string>>;
  /** Each node dials its dependencies through proxies of its own (else directly). */
  readonly proxied?: boolean;
}

export interface Slot {
  readonly label: string;
  server: ServerProcess | undefined;
  /** What this slot's node dials for each dependency. */
  readonly links: ReadonlyMap<Dependency, Endpoint>;
  /** The proxies in front of its dependencies (none when not proxied); they outlive restarts. */
  readonly proxies: ReadonlyMap<Dependency, TcpProxy>;
}

/** Node settings every chaos run uses (besides the broker's and the store's). */
const NODE_ENV: Readonly<Record<string, string>> = {
  ...RATE_LIMITS_OFF,
  STORE: "postgres",
  POSTGRES_POOL_SIZE: "4",
  // Positions saved often, so a resume after a kill repeats little.
  ACK_FLUSH_INTERVAL: "100ms",
  SESSION_REPLAY_LIMIT: "10000",
  HISTORY_SIZE: "1000000",
};

export class ChaosCluster {
  readonly broker: BrokerServer;
  readonly postgres: PostgresServer;
  readonly slots: readonly Slot[];
  readonly #kind: BrokerKind;
  readonly #storeUrl: string;
  readonly #env: Readonly<Record<string, string>>;

  private constructor(
    kind: BrokerKind,
    broker: BrokerServer,
    postgres: PostgresServer,
    storeUrl: string,
    slots: Slot[],
    env: Readonly<Record<string, string>>,
  ) {
    this.#kind = kind;
    this.broker = broker;
    this.postgres = postgres;
    this.#storeUrl = storeUrl;
    this.slots = slots;
    this.#env = env;
  }

  static async start(opts: ClusterOptions): Promise<ChaosCluster> {
    const broker = await opts.broker.start();
    let cluster: ChaosCluster | undefined;
    try {
      const storeUrl = await opts.postgres.createDatabase(`chaos_${opts.name}`);
      const targets: Record<Dependency, Endpoint> = {
        broker: endpointOf(broker.url),
        store: endpointOf(storeUrl),
      };
      const slots: Slot[] = [];
      for (let i = 0; i < (opts.nodes ?? 3); i++) {
        const links = new Map<Dependency, Endpoint>();
        const proxies = new Map<Dependency, TcpProxy>();
        slots.push({ label: `n${i}`, server: undefined, links, proxies });
        for (const dep of ["broker", "store"] as const) {
          if (opts.proxied === true) {
            const proxy = await startTcpProxy(targets[dep]);
            proxies.set(dep, proxy);
            links.set(dep, { host: proxy.host, port: proxy.port });
          } else {
            links.set(dep, targets[dep]);
          }
        }
      }
      cluster = new ChaosCluster(
        opts.broker,
        broker,
        opts.postgres,
        storeUrl,
        slots,
        opts.env ?? {},
      );
      // One at a time: the first applies the schema, the others find it done.
      for (const slot of slots) await cluster.restart(slot);
      return cluster;
    } catch (err) {
      await cluster?.close();
      await broker.close();
      throw err;
    }
  }

  get brokerName(): string {
    return this.#kind.name;
  }

  /** The store's URL, for reading it directly (not through a proxy). */
  get storeUrl(): string {
    return this.#storeUrl;
  }

  /** The nodes up now, for peers choosing where to (re)connect. */
  readonly liveNodes = (): LiveNode[] =>
    this.slots.flatMap((s) =>
      s.server === undefined ? [] : [{ label: s.label, wsUrl: s.server.wsUrl }],
    );

  /** SIGKILL: no drain, no session saved. */
  async kill(slot: Slot): Promise<void> {
    const server = slot.server;
    slot.server = undefined;
    await server?.kill9();
  }

  /** Starts the slot's node (again), on a new port. */
  async restart(slot: Slot): Promise<void> {
    if (slot.server !== undefined) return;
    slot.server = await startServer(
      {
        ...NODE_ENV,
        ...this.#kind.env(withEndpoint(this.broker.url, slot.links.get("broker")!)),
        POSTGRES_URL: withEndpoint(this.#storeUrl, slot.links.get("store")!),
        ...this.#env,
      },
      30_000,
    );
  }

  async close(): Promise<void> {
    for (const slot of this.slots) await this.kill(slot);
    for (const slot of this.slots) for (const proxy of slot.proxies.values()) await proxy.close();
    await this.broker.close();
  }
}

function endpointOf(url: string): Endpoint {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

function withEndpoint(url: string, at: Endpoint): string {
  const u = new URL(url);
  u.hostname = at.host;
  u.port = String(at.port);
  return u.toString().replace(/\/$/, "");
}
