// The store behind one durable run, fresh for that run so no history or state
// of an earlier run is in the way: a database on the shared PostgreSQL, a temp
// SQLite file, or a private redis-server (AOF on, appendfsync everysec, as the
// tests and docs/operations.md run it) or Spanner emulator, started with the
// tests' own starters (tools/). The private ones float over both cores like
// the shared PostgreSQL does; their CPU is not the server's (only Roomcast's
// process is measured) and shows as "other processes" in the noise figure.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REDIS_AOF_EVERYSEC, startRedisServer } from "../../tools/redis-server.js";
import { startSpannerEmulator } from "../../tools/spanner-emulator.js";
import { createFreshDatabase } from "./fresh-database.js";

export const STORES = ["postgres", "sqlite", "redis", "spanner", "memory"] as const;
export type StoreName = (typeof STORES)[number];

export const POSTGRES_URL =
  process.env["BENCH_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

/** taskset's list for the private backends: both cores, as an unpinned PostgreSQL gets. */
const BACKEND_CPUS = "0,1";

export interface StoreBackend {
  /** The node settings for this store. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startStore(store: StoreName): Promise<StoreBackend> {
  switch (store) {
    case "memory":
      return { env: { STORE: "memory" }, stop: () => Promise.resolve() };
    case "sqlite": {
      const dir = mkdtempSync(join(tmpdir(), "roomcast-bench-"));
      return {
        env: { STORE: "sqlite", SQLITE_PATH: join(dir, "bench.db") },
        stop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
      };
    }
    case "postgres": {
      const database = await createFreshDatabase(POSTGRES_URL);
      return {
        env: { STORE: "postgres", POSTGRES_URL: database.url },
        stop: () => database.drop(),
      };
    }
    case "redis": {
      const redis = await startRedisServer({ args: REDIS_AOF_EVERYSEC, cpus: BACKEND_CPUS });
      return { env: { STORE: "redis", STORE_REDIS_URL: redis.url }, stop: () => redis.close() };
    }
    case "spanner": {
      const emulator = await startSpannerEmulator({ cpus: BACKEND_CPUS });
      // STORE_TIMEOUT as in the tests: the emulator runs one read-write
      // transaction at a time and retries the others after a back-off.
      return {
        env: { ...emulator.env(emulator.databaseId("bench")), STORE_TIMEOUT: "20s" },
        stop: () => emulator.close(),
      };
    }
  }
}
