// A private three-master Redis Cluster for tests: redis-server with
// --cluster-enabled on three free ports (the harness's restartable servers,
// so each keeps its port and its nodes.conf across a restart), joined with
// `redis-cli --cluster create … --cluster-yes` (no replicas), ready once every
// node reports cluster_state:ok.
import { spawnSync } from "node:child_process";
import { Redis } from "ioredis";
import { waitFor } from "../../tools/process-harness.js";
import { hasBinary } from "../../tools/process-harness.js";
import { requireBinary } from "./require-binary.js";
import { redisServerAvailable, startRedisServer, type RedisServer } from "./redis.js";

export interface RedisCluster {
  readonly servers: readonly RedisServer[];
  /** Every node's URL, comma-separated, as REDIS_URL takes them with REDIS_CLUSTER=true. */
  readonly url: string;
  /** Stops every node (SIGKILL: no persistence is configured anyway). */
  stop(): Promise<void>;
  /** Starts every node again, on the same ports and cluster config; resolves when the cluster is ok. */
  start(): Promise<void>;
  /** A command's replies from every node (e.g. PUBSUB NUMSUB over the whole cluster). */
  onEveryNode(...args: string[]): Promise<unknown[]>;
  close(): Promise<void>;
}

/** Whether redis-server and redis-cli exist; throws under CI=true when missing. */
export function redisClusterAvailable(): boolean {
  return redisServerAvailable() && requireBinary(hasBinary("redis-cli"), "redis-cli");
}

export async function startRedisCluster(size = 3): Promise<RedisCluster> {
  const servers: RedisServer[] = [];
  const clients: Redis[] = [];
  const closeAll = async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(servers.map((s) => s.close()));
  };
  try {
    for (let i = 0; i < size; i++) {
      servers.push(
        await startRedisServer({
          args: ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
        }),
      );
    }
    const created = spawnSync(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...servers.map((s) => `127.0.0.1:${s.port}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    if (created.status !== 0) {
      throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    }
    for (const s of servers) {
      const c = new Redis(s.url, { lazyConnect: true, maxRetriesPerRequest: null });
      c.on("error", () => undefined); // reconnects by itself across restarts
      await c.connect();
      clients.push(c);
    }
    await clusterOk(clients);
  } catch (err) {
    await closeAll();
    throw err;
  }
  return {
    servers,
    url: servers.map((s) => s.url).join(","),
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop("SIGKILL")));
    },
    start: async () => {
      await Promise.all(servers.map((s) => s.start()));
      await clusterOk(clients);
    },
    onEveryNode: (...args) => Promise.all(clients.map((c) => c.call(args[0]!, ...args.slice(1)))),
    close: closeAll,
  };
}

async function clusterOk(clients: readonly Redis[]): Promise<void> {
  await waitFor(
    async () => {
      for (const c of clients) {
        const info = String(await c.call("CLUSTER", "INFO"));
        if (!info.includes("cluster_state:ok")) return false;
      }
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
}
