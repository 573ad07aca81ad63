// A three-node Roomcast cluster for chaos runs: real server processes on one
// broker (its private server from the harness) and a private PostgreSQL, each
// node in a slot that keeps its name across kills and restarts. A node may
// reach its broker and its store through something in between (`via`: a TCP
// proxy per node and dependency), so a nemesis can slow down or cut one
// node's links without touching the others.
import type { BrokerServer } from "../helpers/brokers.js";
import type { PostgresServer } from "../helpers/postgres.js";
import { RATE_LIMITS_OFF, startServer, type ServerProcess } from "../helpers/server.js";
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
  /**
   * Where node `slot` connects to reach `dependency` at `target`; called once
   * per slot and dependency. Absent: directly.
   */
  readonly via?: (slot: string, dependency: Dependency, target: Endpoint) => Promise<Endpoint>;
}

export interface Slot {
  readonly label: string;
  server: ServerProcess | undefined;
  /** What this slot's node dials for each dependency. */
  readonly links: Map<Dependency, Endpoint>;
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
        const label = `n${i}`;
        const links = new Map<Dependency, Endpoint>();
        for (const dep of ["broker", "store"] as const) {
          links.set(
            dep,
            opts.via === undefined ? targets[dep] : await opts.via(label, dep, targets[dep]),
          );
        }
        slots.push({ label, server: undefined, links });
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
